"""Advancing the virtual clock: new transactions, call data attached later, new contacts,
inbound calls and fields, with times inside the jumped interval."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.utils import parsedate_to_datetime

import requests

from dialfire_sandbox import Sandbox
from tests.support.sandbox import SandboxHTTP

EARLY = {"from": "2020-01-01T00:00:00.000"}


def _feed_map(http: SandboxHTTP, **params: str) -> dict[tuple[str, str], str]:
    """(contact id, fired) -> md5 for every feed entry."""
    entries = http.feed(**(params or EARLY))
    return {(e.split("|")[2], e.split("|")[0]): e.split("|")[1] for e in entries}


def test_advance_moves_the_clock_and_the_date_header(sandbox: Sandbox,
                                                     sandbox_http: SandboxHTTP) -> None:
    before = sandbox.now()
    summary = sandbox.advance(minutes=30, new_transactions=0, attach_call_data=0,
                              new_contacts=0, new_inbound_calls=0)
    after = sandbox.now()
    assert timedelta(minutes=30) <= after - before < timedelta(minutes=30, seconds=5)
    assert summary["to"] > summary["from"]
    served = parsedate_to_datetime(sandbox_http.get("fields/list").headers["Date"])
    assert abs((served - after).total_seconds()) < 5
    clock = sandbox_http.control("GET", "clock")["now"]
    assert clock.startswith(after.strftime("%Y-%m-%dT%H:%M"))


def test_new_transactions_land_in_the_jumped_window(sandbox: Sandbox,
                                                    sandbox_http: SandboxHTTP) -> None:
    listed_before = {i["id"]: i["md5"] for p in sandbox_http.pages("contacts/list")
                     for i in p["results"]}
    summary = sandbox.advance(minutes=5, new_transactions=6, attach_call_data=0,
                              new_contacts=0, new_inbound_calls=0)
    window = sandbox_http.feed(**{"from": summary["from"], "to": summary["to"]})
    created = {(t["contact_id"], t["fired"]) for t in summary["new_transactions"]}
    assert len(created) == 6
    assert {(e.split("|")[2], e.split("|")[0]) for e in window} == created
    assert all(summary["from"] <= fired < summary["to"] for _, fired in created)
    today = summary["to"][:10]
    listed_today = {i["id"]: i["md5"] for p in sandbox_http.pages("contacts/list",
                                                                  changedSince=today)
                    for i in p["results"]}
    for contact_id, _ in created:
        assert listed_today[contact_id] != listed_before[contact_id]
    fetched = sandbox_http.post_contacts(sorted({c for c, _ in created})).json()
    for contact in fetched:
        fired = {tx["fired"] for log in contact["$task_log"] for tx in log["transactions"]}
        assert {f for c, f in created if c == contact["$id"]} <= fired
        seqs = [tx["sequence_nr"] for log in contact["$task_log"] for tx in log["transactions"]]
        assert seqs == list(range(1, len(seqs) + 1))


def test_call_data_attached_later_changes_md5_but_not_fired(sandbox: Sandbox,
                                                            sandbox_http: SandboxHTTP) -> None:
    feed_before = _feed_map(sandbox_http)
    in_progress = {}
    for contact in sandbox_http.post_contacts(sorted({c for c, _ in feed_before})[:20]).json():
        for log in contact["$task_log"]:
            for tx in log["transactions"]:
                if tx["connections"] and "disconnected" not in tx["connections"][0]:
                    in_progress[(contact["$id"], tx["fired"])] = contact["$md5"]
    summary = sandbox.advance(minutes=5, new_transactions=0, attach_call_data=3,
                              new_contacts=0, new_inbound_calls=0)
    attached = {(a["contact_id"], a["fired"]) for a in summary["attached_call_data"]}
    assert len(attached) == 3
    assert all(a["what"] == "completed_call" for a in summary["attached_call_data"])
    feed_after = _feed_map(sandbox_http)
    assert set(feed_after) == set(feed_before)  # fired stays: no new entries
    changed = {key for key in feed_before if feed_before[key] != feed_after[key]}
    assert changed == attached
    contacts = {c["$id"]: c for c in sandbox_http.post_contacts(sorted({c for c, _ in attached}))
                .json()}
    for contact_id, fired in attached:
        tx = next(tx for log in contacts[contact_id]["$task_log"] for tx in log["transactions"]
                  if tx["fired"] == fired)
        conn = tx["connections"][0]
        assert conn["disconnected"] and conn["ended"] and isinstance(conn["duration"], int)
        if (contact_id, fired) in in_progress:
            assert contacts[contact_id]["$md5"] != in_progress[(contact_id, fired)]


def test_feed_time_modified_lists_updated_transactions_in_the_new_window(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    by_fired = sandbox_factory(seed=7, contacts=60)
    by_modified = sandbox_factory(seed=7, contacts=60, feed_time="modified")
    results = []
    for sb in (by_fired, by_modified):
        summary = sb.advance(minutes=5, new_transactions=0, attach_call_data=2, new_contacts=0,
                             new_inbound_calls=0)
        window = SandboxHTTP(sb).feed(**{"from": summary["from"], "to": summary["to"]})
        attached = {(a["contact_id"], a["fired"]) for a in summary["attached_call_data"]}
        results.append(({(e.split("|")[2], e.split("|")[0]) for e in window}, attached))
    (fired_window, fired_attached), (modified_window, modified_attached) = results
    assert fired_attached == modified_attached and len(fired_attached) == 2
    assert not fired_window & fired_attached  # fired is before the window
    assert modified_window == modified_attached


def test_new_contacts_inbound_calls_and_field(sandbox: Sandbox, sandbox_http: SandboxHTTP) -> None:
    field = {"name": "Kündigungsgrund / Notiz", "fieldType": "text"}
    calls_before = sandbox_http.get("inbound/calls/").json()["results"]
    summary = sandbox.advance(minutes=10, new_transactions=5, attach_call_data=0,
                              new_contacts=3, new_inbound_calls=4, new_field=field)
    assert summary["new_field"] == field["name"]
    names = [f["name"] for f in sandbox_http.get("fields/list").json()]
    assert field["name"] in names
    listed = {i["id"] for p in sandbox_http.pages("contacts/list") for i in p["results"]}
    assert len(listed) == 63 and set(summary["new_contacts"]) <= listed
    new = sandbox_http.post_contacts(summary["new_contacts"]).json()
    assert len(new) == 3
    assert all(summary["from"] <= c["$created_date"] < summary["to"] for c in new)
    assert all(field["name"] in c for c in new)
    changed = sandbox_http.post_contacts([t["contact_id"] for t in summary["new_transactions"]])
    assert all(field["name"] in c for c in changed.json())
    calls = [c for p in sandbox_http.pages("inbound/calls/", **{"from": summary["from"]})
             for c in p["results"]]
    assert {c["id"] for c in calls} == set(summary["new_inbound_calls"])
    assert all(summary["from"] <= c["call_time"] < summary["to"] for c in calls)
    assert sandbox_http.get("inbound/calls/").json()["results"][:20] == calls_before
    expected = sandbox.expected()
    assert len(expected["contacts"]) == 63 and len(expected["inbound_calls"]) == 24
    assert all(field["name"] in row for row in expected["contacts"])


def test_advance_over_the_control_api(sandbox: Sandbox, sandbox_http: SandboxHTTP) -> None:
    summary = sandbox_http.control("POST", "advance", {"minutes": 2, "new_transactions": 1,
                                                       "attach_call_data": 1,
                                                       "new_contacts": 1,
                                                       "new_inbound_calls": 1})
    assert len(summary["new_transactions"]) == 1 and len(summary["new_contacts"]) == 1
    assert sandbox.world.total_contacts == 61
    bad = requests.post(f"{sandbox.url}/_sandbox/advance", json={"minutes": 1, "bogus": 1},
                        timeout=10)
    assert bad.status_code == 400 and "bogus" in bad.text


def test_attach_falls_back_to_late_recordings_when_no_call_is_running(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory(seed=7, contacts=30)
    sb.advance(minutes=1, new_transactions=0, attach_call_data=10, new_contacts=0,
               new_inbound_calls=0)
    summary = sb.advance(minutes=1, new_transactions=0, attach_call_data=2, new_contacts=0,
                         new_inbound_calls=0)
    assert [a["what"] for a in summary["attached_call_data"]] == ["late_recording"] * 2


def test_listing_day_can_ignore_call_data_the_other_case_of_section_7(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    """With call_data_moves_contact=False only the md5 changes; the changed day stays."""
    results = {}
    for moves in (True, False):
        sb = sandbox_factory(seed=7, contacts=60, now="2026-03-02T23:59:59.500Z",
                             call_data_moves_contact=moves)
        summary = sb.advance(minutes=60, new_transactions=0, attach_call_data=2, new_contacts=0,
                             new_inbound_calls=0)
        assert summary["to"].startswith("2026-03-03")
        attached = {a["contact_id"] for a in summary["attached_call_data"]}
        http = SandboxHTTP(sb)
        next_day = {i["id"] for p in http.pages("contacts/list", changedSince="2026-03-03")
                    for i in p["results"]}
        results[moves] = attached & next_day
        assert len(attached) == 2
    assert len(results[True]) == 2 and not results[False]


def test_legacy_feed_entries_carry_a_fourth_part(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(seed=7, contacts=20, legacy_feed_entries=True)
    http = SandboxHTTP(sb)
    entries = http.feed(**EARLY)
    assert entries and all(len(e.split("|")) == 4 for e in entries)
    contacts = {c["$id"]: c for c in http.post_contacts(
        sorted({e.split("|")[2] for e in entries})[:20]).json()}
    for entry in entries:
        fired, _md5, cid, position = entry.split("|")
        if cid in contacts:
            log_index, tx_index = map(int, position.split(","))
            assert contacts[cid]["$task_log"][log_index]["transactions"][tx_index]["fired"] == fired


def test_paging_merges_seeded_and_changed_transactions_in_order(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    for feed_time in ("fired", "modified"):
        sb = sandbox_factory(seed=8, contacts=60, feed_time=feed_time)
        for _ in range(3):
            sb.advance(minutes=3, new_transactions=8, attach_call_data=3, new_contacts=2)
        http = SandboxHTTP(sb)
        whole = http.feed(**EARLY)
        assert http.feed(**EARLY, limit=7) == whole
        assert len(whole) == len(set(whole)) == sum(
            len(sb.world.transactions_of(sb.world.contact(i)))
            for i in range(sb.world.total_contacts))
        if feed_time == "fired":
            fired = [e.split("|")[0] for e in whole]
            assert fired == sorted(fired)
        hi = http.feed(**EARLY, hi="true", tasks="fc_")
        assert http.feed(**EARLY, hi="true", tasks="fc_", limit=5) == hi


def test_a_new_number_field_gets_numbers(sandbox: Sandbox, sandbox_http: SandboxHTTP) -> None:
    summary = sandbox.advance(minutes=5, new_transactions=10, attach_call_data=0, new_contacts=3,
                              new_inbound_calls=0,
                              new_field={"name": "Auftragswert (€)", "fieldType": "number"})
    changed = [t["contact_id"] for t in summary["new_transactions"]] + summary["new_contacts"]
    values = [c["Auftragswert (€)"] for c in sandbox_http.post_contacts(sorted(set(changed)))
              .json()]
    assert values and all(isinstance(v, int | float) or v == "" for v in values)
    assert any(isinstance(v, int | float) for v in values)
    rows = sandbox.expected()["contacts"]
    assert all(r["Auftragswert (€)"] is None or isinstance(r["Auftragswert (€)"], int | float)
               for r in rows)
