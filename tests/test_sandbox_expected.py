"""The oracle (`expected`): the rules of docs/records.md, on hand-made payloads and on the world,
and its HTTP and CLI forms."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from dialfire_sandbox import Sandbox
from dialfire_sandbox.expected import contact_rows, inbound_row
from tests.support.sandbox import SandboxHTTP

FIELDS = [
    {"type": "field", "fieldType": "number", "name": "Anzahl Mitarbeiter", "deleted": False},
    {"type": "field", "fieldType": "text", "name": "Geburtstag vom GF/Inhaber", "deleted": False},
    {"type": "field", "fieldType": "text", "name": "Alt", "deleted": True},
    {"type": "label", "name": "Hinweis"},
]


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _tx(fired: str, seq: Any, **extra: Any) -> dict[str, Any]:
    return {"id": "C1", "type": "update", "task": "fc_a", "status_detail": "$none",
            "user": "u@x", "fired": fired, "sequence_nr": seq, "connections": [], **extra}


def _contact(*transactions: dict[str, Any], **values: Any) -> dict[str, Any]:
    return {"$id": "CONTACT234567892", "$md5": "m", "$created_date": "2026-01-01T10:00:00Z",
            **values, "$task_log": [{"transactions": list(transactions)}]}


def test_same_fired_rule_keeps_the_first_id_and_suffixes_later_ones() -> None:
    fired = "2026-02-01T10:00:00.000Z"
    rows = contact_rows(_contact(_tx(fired, 1), _tx(fired, 2), _tx(fired, ""),
                                 _tx("2026-02-01T11:00:00.000Z", 4)), FIELDS)
    ids = [r["id"] for r in rows["transactions"]]
    cid = "CONTACT234567892"
    assert ids == [md5(cid + fired), md5(f"{cid}{fired}#2"), md5(f"{cid}{fired}#3"),
                   md5(cid + "2026-02-01T11:00:00.000Z")]
    assert [r["transaction_index"] for r in rows["transactions"]] == [0, 1, 2, 3]
    assert all(r["contact_id"] == cid for r in rows["transactions"])


def test_connection_parents_and_recording_ids() -> None:
    third = {"id": "T1", "technology": "sip", "isThirdPartyConnection": True,
             "recordings": [{"location": None, "started": "2026-02-01T10:00:05.000Z"}]}
    connections = [
        {"id": "A", "technology": "sip", "third_party_connections": [third],
         "recordings": [{"location": "https://r/1.mp3", "started": "2026-02-01T10:00:00.000Z"}]},
        {"id": "B", "technology": "transfer"},
        {"id": "C", "technology": "transfer", "isThirdPartyConnection": ""},
    ]
    rows = contact_rows(_contact(_tx("2026-02-01T10:00:00.000Z", 1, connections=connections)),
                        FIELDS)
    parents = {r["id"]: r["parent_connection_id"] for r in rows["connections"]}
    assert parents == {"A": None, "T1": "A", "B": "A", "C": "B"}
    third_party = {r["id"]: r["isThirdPartyConnection"] for r in rows["connections"]}
    assert third_party == {"A": False, "T1": True, "B": False, "C": False}
    tx_id = rows["transactions"][0]["id"]
    assert {r["transaction_id"] for r in rows["connections"]} == {tx_id}
    recordings = {r["connection_id"]: r["id"] for r in rows["recordings"]}
    assert recordings == {"A": md5("Ahttps://r/1.mp3"), "T1": md5("T12026-02-01T10:00:05.000Z")}


def test_values_empty_to_null_timestamps_coercion_and_extra() -> None:
    payload = _contact(
        _tx("2026-02-01T10:00:00.5+01:00", "7", isHI="TRUE", pause_time_sec="12",
            edit_time_sec="zwölf", hi_task="x"),
        **{"Anzahl Mitarbeiter": "ca. 50", "Geburtstag vom GF/Inhaber": 1965, "$ref": "",
           "$$fc_a_status": "", "Alt": "K-1", "$entry_date": "2026-01-02"},
    )
    rows = contact_rows(payload, FIELDS)
    contact = rows["contacts"][0]
    assert contact["$ref"] is None and contact["$owner"] is None
    assert contact["$created_date"] == "2026-01-01T10:00:00.000Z"
    assert contact["Anzahl Mitarbeiter"] is None
    assert contact["Geburtstag vom GF/Inhaber"] == "1965"
    assert contact["$entry_date"] is None
    assert contact["$extra"] == {"Anzahl Mitarbeiter": "ca. 50", "$$fc_a_status": None,
                                 "Alt": "K-1", "$entry_date": "2026-01-02"}
    assert "Hinweis" not in contact and "$task_log" not in contact
    tx = rows["transactions"][0]
    assert tx["fired"] == "2026-02-01T09:00:00.500Z"
    assert tx["id"] == md5("CONTACT234567892" + "2026-02-01T10:00:00.5+01:00")
    assert (tx["isHI"], tx["pause_time_sec"], tx["edit_time_sec"], tx["sequence_nr"]) == (
        True, 12, None, 7)
    assert tx["$extra"] == {"edit_time_sec": "zwölf", "hi_task": "x"}


def test_filters_keep_contacts_but_drop_children() -> None:
    connection = [{"id": "K", "technology": "sip"}]
    txs = [
        _tx("2026-02-01T10:00:00.000Z", 1, type="create", user=None),
        _tx("2026-02-01T10:01:00.000Z", 2, status_detail="$assigned", connections=connection),
        _tx("2026-02-01T10:02:00.000Z", 3, task="qc_b"),
        _tx("2026-02-01T10:03:00.000Z", 4, user=""),
    ]
    payload = _contact(*txs)

    def kept(mode: str, prefixes: tuple[str, ...] = ()) -> list[int]:
        rows = contact_rows(payload, FIELDS, mode, prefixes)
        assert len(rows["contacts"]) == 1
        return [r["sequence_nr"] for r in rows["transactions"]]

    assert kept("all") == [1, 2, 3, 4]
    assert kept("updates_only") == [2, 3, 4]
    assert kept("hi_updates_only") == [3]
    assert kept("all", ("qc_",)) == [3]
    assert not contact_rows(payload, FIELDS, "hi_updates_only")["connections"]


def test_inbound_call_renames() -> None:
    row = inbound_row({"id": "I", "calling_number": "+49", "called_number": "+30",
                       "call_time": "2026-01-01T10:00:00Z", "connect_time": "",
                       "hangup_time": "2026-01-01T10:01:00.123456Z", "dispatch_error": "false",
                       "surprise": 1})
    assert (row["remote_number"], row["line_number"], row["started"], row["connected"],
            row["disconnected"], row["dispatch_error"]) == (
        "+49", "+30", "2026-01-01T10:00:00.000Z", None, "2026-01-01T10:01:00.123Z", False)
    assert row["$extra"] == {"surprise": 1}
    assert "calling_number" not in row


def test_world_exercises_every_rule(sandbox: Sandbox) -> None:
    rows = sandbox.expected()
    contacts, txs, conns, recs = (rows[s] for s in ("contacts", "transactions", "connections",
                                                    "recordings"))
    assert len({r["contact_id"] for r in txs}) < len(contacts)  # contacts without transactions
    assert any(r["id"] != md5(r["contact_id"] + r["fired"]) for r in txs)  # same-fired pairs
    assert any(r["technology"] == "transfer" and r["parent_connection_id"] for r in conns)
    assert any(r["isThirdPartyConnection"] and r["parent_connection_id"] for r in conns)
    assert any(r["disconnected"] is None for r in conns)  # calls in progress
    assert any(r["location"] is None for r in recs) and any(r["location"] for r in recs)
    assert any(r["user"] is None for r in txs)
    assert any(r["status_detail"] == "$assigned" and r["user"] for r in txs)
    assert all(r["$extra"] and any(k.startswith("$$") for k in r["$extra"]) for r in contacts
               if r["$task"])
    assert any("Alte Kundennummer" in (r["$extra"] or {}) for r in contacts)
    assert any((r["$extra"] or {}).get("Anzahl Mitarbeiter") == "ca. 50" for r in contacts)
    assert any(isinstance(r["Umsatz (Mio.)"], float) for r in contacts)
    assert any(isinstance(r["Anzahl Mitarbeiter"], int) for r in contacts)
    keys = [r["id"] for r in txs]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for stream in ("connections", "recordings", "inbound_calls"):
        ids = [r["id"] for r in rows[stream]]
        assert len(set(ids)) == len(ids), stream


def test_filter_modes_on_the_world(sandbox: Sandbox) -> None:
    everything = sandbox.expected()
    updates = sandbox.expected(filter_mode="updates_only")
    human = sandbox.expected(filter_mode="hi_updates_only", task_prefixes=("fc_",))
    assert len(everything["contacts"]) == len(updates["contacts"]) == len(human["contacts"])
    assert len(human["transactions"]) < len(updates["transactions"]) < len(
        everything["transactions"])
    assert all(r["type"] == "update" for r in updates["transactions"])
    assert all(r["task"].startswith("fc_") and r["user"] and r["status_detail"] != "$assigned"
               for r in human["transactions"])
    kept = {r["id"] for r in human["transactions"]}
    assert all(r["transaction_id"] in kept for r in human["connections"])
    with pytest.raises(ValueError):
        sandbox.expected(filter_mode="some")


def test_since_restricts_by_changed_day(sandbox: Sandbox) -> None:
    summary = sandbox.advance(minutes=5, new_transactions=4, attach_call_data=0,
                              new_contacts=1, new_inbound_calls=2)
    since = datetime.fromisoformat(summary["from"].replace("Z", "+00:00"))
    rows = sandbox.expected(since=since)
    world = sandbox.world
    today = {world.contact_id(i) for i in range(world.total_contacts)
             if world.contact_changed_ms(i) // 86_400_000 >= world.now_ms() // 86_400_000}
    assert {r["$id"] for r in rows["contacts"]} == today
    assert {t["contact_id"] for t in summary["new_transactions"]} <= today
    assert {r["id"] for r in rows["inbound_calls"]} == set(summary["new_inbound_calls"])
    assert all(r["contact_id"] in today for r in rows["transactions"])


def test_expected_over_http_matches_python(sandbox: Sandbox, sandbox_http: SandboxHTTP) -> None:
    sandbox.advance()
    over_http = sandbox_http.control("GET", "expected?filter_mode=updates_only&task_prefixes=fc_")
    assert over_http == sandbox.expected(filter_mode="updates_only", task_prefixes=("fc_",))
    since = sandbox_http.control("GET", "expected?since=2026-03-02")
    assert since == sandbox.expected(since=datetime(2026, 3, 2, tzinfo=UTC))


def _cli(*args: str) -> list[Any]:
    done = subprocess.run([sys.executable, "-m", "dialfire_sandbox.cli", *args],
                          capture_output=True, text=True, timeout=120, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_cli_expected_for_a_seed_and_for_a_running_sandbox(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory(seed=9, contacts=25)
    fresh = sb.expected()
    by_seed = _cli("expected", "--seed", "9", "--contacts", "25")
    assert [line["record"] for line in by_seed if line["stream"] == "transactions"] == fresh[
        "transactions"]
    assert len(by_seed) == sum(len(v) for v in fresh.values())
    sb.advance(new_field={"name": "Kündigungsgrund / Notiz", "fieldType": "text"})
    contacts = _cli("expected", "--url", sb.url, "--stream", "contacts",
                    "--filter-mode", "hi_updates_only")
    assert contacts == sb.expected(filter_mode="hi_updates_only")["contacts"]
    assert all("Kündigungsgrund / Notiz" in c for c in contacts)


def test_cli_advance_and_unreachable_sandbox(sandbox: Sandbox) -> None:
    summary = _cli("advance", "--url", sandbox.url, "--minutes", "3", "--new-contacts", "1")[0]
    assert len(summary["new_contacts"]) == 1
    done = subprocess.run([sys.executable, "-m", "dialfire_sandbox.cli", "advance", "--url",
                           "http://127.0.0.1:9"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "cannot reach the sandbox" in done.stderr
