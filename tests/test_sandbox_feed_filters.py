"""The change feed's filters (`type`, `hi`, `tasks`) and time windows (`from`/`to` forms)."""

from __future__ import annotations

import itertools
from typing import Any

from dialfire_sandbox import Sandbox
from tests.support.sandbox import SandboxHTTP

ALL = {"from": "2020-01-01T00:00:00.000"}


def _transactions_by_entry(http: SandboxHTTP, entries: list[str]) -> list[dict[str, Any]]:
    """The transaction each feed entry names, looked up in the fetched contact."""
    ids = sorted({e.split("|")[2] for e in entries})
    contacts = {}
    for start in range(0, len(ids), 20):
        for contact in http.post_contacts(ids[start:start + 20]).json():
            contacts[contact["$id"]] = contact
    found = []
    for entry in entries:
        fired, _md5, cid = entry.split("|")
        txs = [tx for log in contacts[cid]["$task_log"] for tx in log["transactions"]
               if tx["fired"] == fired]
        assert txs, entry
        found.append(txs[0])
    return found


def _human(tx: dict[str, Any]) -> bool:
    return bool(tx["user"]) and tx["status_detail"] != "$assigned"


def test_feed_lists_one_entry_per_transaction(sandbox: Sandbox, sandbox_http: SandboxHTTP) -> None:
    entries = sandbox_http.feed(**ALL)
    world = sandbox.world
    total = sum(len(world.transactions_of(world.contact(i))) for i in range(60))
    assert len(entries) == total
    assert all(len(e.split("|")) == 3 for e in entries)


def test_type_update_keeps_only_updates(sandbox_http: SandboxHTTP) -> None:
    everything = sandbox_http.feed(**ALL)
    updates = sandbox_http.feed(**ALL, type="update")
    assert 0 < len(updates) < len(everything)
    assert set(updates) <= set(everything)
    assert all(tx["type"] == "update" for tx in _transactions_by_entry(sandbox_http, updates))
    dropped = [e for e in everything if e not in set(updates)]
    assert all(tx["type"] != "update" for tx in _transactions_by_entry(sandbox_http, dropped))


def test_hi_keeps_only_human_interaction(sandbox_http: SandboxHTTP) -> None:
    everything = sandbox_http.feed(**ALL)
    human = sandbox_http.feed(**ALL, hi="true")
    assert 0 < len(human) < len(everything)
    assert all(_human(tx) for tx in _transactions_by_entry(sandbox_http, human))
    dropped = [e for e in everything if e not in set(human)]
    dropped_txs = _transactions_by_entry(sandbox_http, dropped)
    assert not any(_human(tx) for tx in dropped_txs)
    # Both non-human kinds occur: no user at all, and a user with status_detail $assigned.
    assert any(tx["user"] is None for tx in dropped_txs)
    assert any(tx["user"] and tx["status_detail"] == "$assigned" for tx in dropped_txs)


def test_tasks_filter_matches_prefixes(sandbox_http: SandboxHTTP) -> None:
    chosen = sandbox_http.feed(**ALL, tasks="fc_,qc_")
    assert chosen
    tasks = {tx["task"] for tx in _transactions_by_entry(sandbox_http, chosen)}
    assert tasks and all(t.startswith(("fc_", "qc_")) for t in tasks)
    everything = _transactions_by_entry(sandbox_http, sandbox_http.feed(**ALL))
    assert sum(tx["task"].startswith(("fc_", "qc_")) for tx in everything) == len(chosen)


def test_from_to_accept_the_old_clients_form_and_iso_variants(sandbox_http: SandboxHTTP) -> None:
    entries = sandbox_http.feed(**ALL)
    lo = entries[10].split("|")[0]  # e.g. 2025-12-20T10:11:12.345Z
    hi = entries[30].split("|")[0]
    reference = sandbox_http.feed(**{"from": lo, "to": hi})
    assert reference == entries[10:30]  # from inclusive, to exclusive
    old_form = sandbox_http.feed(**{"from": lo.rstrip("Z"), "to": hi.rstrip("Z")})
    offset = sandbox_http.feed(**{"from": lo.replace("Z", "+00:00"),
                                  "to": hi[:-1] + "000000+00:00"})
    assert old_form == reference == offset


def test_windows_partition_the_feed(sandbox_http: SandboxHTTP) -> None:
    entries = sandbox_http.feed(**ALL)
    cuts = ["2020-01-01T00:00:00", entries[5].split("|")[0], entries[20].split("|")[0],
            "2026-03-02T08:59:00.000", "2026-03-03T00:00:00"]
    pieces = [e for a, b in itertools.pairwise(cuts)
              for e in sandbox_http.feed(**{"from": a, "to": b})]
    assert pieces == entries


def test_recent_transactions_fall_in_a_two_minute_window(sandbox: Sandbox,
                                                         sandbox_http: SandboxHTTP) -> None:
    recent = sandbox_http.feed(**{"from": "2026-03-02T08:58:00", "to": "2026-03-02T09:00:00"})
    assert len(recent) >= 3  # the seeded calls still in progress
    txs = _transactions_by_entry(sandbox_http, recent)
    assert any("disconnected" not in tx["connections"][0] for tx in txs)


def test_unparseable_from_is_a_400(sandbox_http: SandboxHTTP) -> None:
    response = sandbox_http.get("contacts/transactions/", **{"from": "yesterday"})
    assert response.status_code == 400
    assert "from" in response.text
