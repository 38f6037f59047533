"""The seeded data looks like Dialfire's: formats, system fields, awkward cases."""

from __future__ import annotations

import re
from typing import Any

from dialfire_sandbox import Sandbox
from tests.support.sandbox import SandboxHTTP

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SYSTEM = ["$id", "$md5", "$ref", "$version", "$campaign_id", "$task_id", "$task", "$status",
          "$status_detail", "$created_date", "$entry_date", "$owner", "$follow_up_date",
          "$phone", "$timezone", "$caller_id", "$source", "$comment", "$error", "$recording",
          "$recording_url", "$call_order", "$trigger"]


def _all_contacts(http: SandboxHTTP) -> list[dict[str, Any]]:
    ids = [i["id"] for p in http.pages("contacts/list") for i in p["results"]]
    contacts = []
    for start in range(0, len(ids), 20):
        contacts += http.post_contacts(ids[start:start + 20]).json()
    return contacts


def _connections(conns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for conn in conns:
        out.append(conn)
        out += _connections(conn["third_party_connections"])
    return out


def test_fields_list_has_every_kind_of_element(sandbox_http: SandboxHTTP) -> None:
    fields = sandbox_http.get("fields/list").json()
    kinds = {f["fieldType"] for f in fields if f["type"] == "field"}
    assert {"text", "date", "calendar", "phone", "radiogroup", "dropdown", "autocomplete",
            "checkbox", "number", "textarea"} <= kinds
    names = {f["name"] for f in fields}
    assert {"Tätigkeit", "Geburtstag vom GF/Inhaber", "Umsatz in €", "Anzahl Mitarbeiter",
            "Umsatz (Mio.)", "Kommentar"} <= names
    assert any(f["deleted"] for f in fields)
    assert any(f["type"] != "field" for f in fields)


def test_contacts_carry_the_documented_shape(sandbox: Sandbox, sandbox_http: SandboxHTTP) -> None:
    contacts = _all_contacts(sandbox_http)
    assert len(contacts) == 60
    for contact in contacts:
        assert all(isinstance(contact[k], str) for k in SYSTEM), contact["$id"]
        assert None not in [contact[k] for k in SYSTEM]
        assert TIMESTAMP.match(contact["$created_date"])
        assert contact["$campaign_id"] == sandbox.campaign_id
        txs = [tx for log in contact["$task_log"] for tx in log["transactions"]]
        assert [tx["sequence_nr"] for tx in txs] == list(range(1, len(txs) + 1))
        for tx in txs:
            assert TIMESTAMP.match(tx["fired"]) and tx["id"] == contact["$id"]
            assert isinstance(tx["data"], dict) and isinstance(tx["isHI"], bool)
            assert all(isinstance(tx[k], int | float) for k in
                       ("pause_time_sec", "edit_time_sec", "wrapup_time_sec"))
            assert f"$${tx['task']}_task" in contact
    assert any(c["$ref"] == "" for c in contacts)  # empty strings, not null
    assert any(len(c["Kommentar"]) > 1000 and "\n" in c["Kommentar"] for c in contacts)
    assert any(not c["$task_log"] for c in contacts)
    assert any(isinstance(c["Anzahl Mitarbeiter"], int) for c in contacts)
    assert any(isinstance(c["Umsatz (Mio.)"], float) for c in contacts)
    assert any("Alte Kundennummer" in c for c in contacts)


def test_transactions_and_calls_cover_the_awkward_cases(sandbox_http: SandboxHTTP) -> None:
    contacts = _all_contacts(sandbox_http)
    txs = [tx for c in contacts for log in c["$task_log"] for tx in log["transactions"]]
    conns = [conn for tx in txs for conn in _connections(tx["connections"])]
    assert any(tx["user"] is None for tx in txs)
    assert any(tx["user"] and tx["status_detail"] == "$assigned" for tx in txs)
    assert any(tx["revoked"] for tx in txs)
    assert {tx["task"] for tx in txs} >= {"fc_erstanruf", "qc_pruefung", "wv_wiedervorlage"}
    same_fired = [c for c in contacts
                  if len({tx["fired"] for log in c["$task_log"] for tx in log["transactions"]})
                  < sum(len(log["transactions"]) for log in c["$task_log"])]
    assert same_fired
    assert any(conn["technology"] == "transfer" for conn in conns)
    assert any(conn["isThirdPartyConnection"] is True for conn in conns)
    assert any("disconnected" not in conn for conn in conns)
    recordings = [r for conn in conns for r in conn["recordings"]]
    assert any(r["location"] is None for r in recordings)
    assert any(r["location"] for r in recordings)
    assert all(TIMESTAMP.match(conn["started"]) for conn in conns)


def test_inbound_calls_have_the_documented_keys(sandbox_http: SandboxHTTP) -> None:
    calls = sandbox_http.get("inbound/calls/", **{"from": ""}).json()["results"]
    keys = {"id", "line_id", "campaign_id", "task_id", "task_name", "contact_id",
            "calling_number", "called_number", "call_time", "connect_time", "hangup_time",
            "user", "state", "connectable_time", "disposition", "dispatch_error"}
    assert all(set(call) == keys for call in calls)
    assert any(call["connect_time"] == "" for call in calls)
    assert all(isinstance(call["dispatch_error"], bool) for call in calls)
