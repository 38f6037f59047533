"""Cursor pagination of contacts/list, the change feed and inbound calls, and `limit`."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from dialfire_sandbox import Sandbox
from tests.support.sandbox import SandboxHTTP

_URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_contact_listing_pages_cover_every_contact_once(sandbox_http: SandboxHTTP) -> None:
    pages = sandbox_http.pages("contacts/list", limit=7)
    assert [p["count"] for p in pages] == [7] * 8 + [4]
    assert all(p["count"] == len(p["results"]) for p in pages)
    assert all(_URL_SAFE.match(p["cursor"]) for p in pages[:-1])
    assert "cursor" not in pages[-1]
    ids = [item["id"] for p in pages for item in p["results"]]
    assert len(ids) == len(set(ids)) == 60
    assert all(re.fullmatch(r"[23456789A-HJ-NP-Z]{16}", i) for i in ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", item["md5"]) for p in pages for item in p["results"])


def test_listing_is_ordered_by_changed_day_then_md5(
    sandbox: Sandbox, sandbox_http: SandboxHTTP
) -> None:
    items = [i for p in sandbox_http.pages("contacts/list", limit=1000) for i in p["results"]]
    world = sandbox.world
    keys = [(world.contact_changed_ms(world.contact_index(i["id"])) // 86_400_000, i["md5"])
            for i in items]
    assert keys == sorted(keys)


def test_changed_since_has_day_granularity(sandbox: Sandbox, sandbox_http: SandboxHTTP) -> None:
    world = sandbox.world
    days = sorted({world.contact_changed_ms(i) // 86_400_000 for i in range(60)})
    middle = days[len(days) // 2]
    day_text = date.fromordinal(719163 + middle).isoformat()
    expected = {world.contact_id(i) for i in range(60)
                if world.contact_changed_ms(i) // 86_400_000 >= middle}
    by_date = {i["id"] for p in sandbox_http.pages("contacts/list", changedSince=day_text)
               for i in p["results"]}
    # A full timestamp late in that day still means "that day".
    by_late_time = {i["id"] for p in sandbox_http.pages(
        "contacts/list", changedSince=f"{day_text}T23:59:59.999") for i in p["results"]}
    assert by_date == expected == by_late_time
    assert 0 < len(expected) < 60


def test_feed_pages_follow_cursors_without_gaps_or_repeats(sandbox_http: SandboxHTTP) -> None:
    whole = sandbox_http.feed(**{"from": "2020-01-01T00:00:00.000", "limit": 1000})
    paged_pages = sandbox_http.pages("contacts/transactions/",
                                     **{"from": "2020-01-01T00:00:00.000", "limit": 13})
    paged = [e for p in paged_pages for e in p["results"]]
    assert paged == whole
    assert len(paged_pages) == -(-len(whole) // 13)
    assert "cursor" not in paged_pages[-1]
    fired = [e.split("|")[0] for e in whole]
    assert fired == sorted(fired)


def test_inbound_calls_page_and_empty_from_means_the_beginning(sandbox_http: SandboxHTTP) -> None:
    pages = sandbox_http.pages("inbound/calls/", **{"from": "", "limit": 6})
    assert [p["count"] for p in pages] == [6, 6, 6, 2]
    calls = [c for p in pages for c in p["results"]]
    assert len({c["id"] for c in calls}) == 20
    assert [c["call_time"] for c in calls] == sorted(c["call_time"] for c in calls)


def test_bad_limit_and_cursor_are_plain_text_400(sandbox_http: SandboxHTTP) -> None:
    for params in ({"limit": "abc"}, {"limit": "0"}, {"cursor": "not-a-cursor"}):
        response = sandbox_http.get("contacts/list", **params)
        assert response.status_code == 400, params
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.text.startswith("400 - Bad Request")


def test_limit_is_capped_at_1000(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(seed=3, contacts=1200)
    page = SandboxHTTP(sb).get("contacts/list", limit=5000).json()
    assert page["count"] == 1000 and page["cursor"]
