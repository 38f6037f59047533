"""Same seed, same bytes: two sandboxes from one seed answer every endpoint identically."""

from __future__ import annotations

import re
from collections.abc import Callable

from dialfire_sandbox import Sandbox
from tests.support.sandbox import SandboxHTTP

WINDOW = {"from": "2020-01-01T00:00:00.000", "to": "2026-03-02T09:00:00.000", "limit": 50}


def _transcript(sb: Sandbox) -> list[bytes]:
    http = SandboxHTTP(sb)
    bodies = [http.get("fields/list").content]
    listing = http.get("contacts/list", limit=25)
    bodies.append(listing.content)
    bodies.append(http.get("contacts/list", limit=25, cursor=listing.json()["cursor"]).content)
    ids = [item["id"] for item in listing.json()["results"][:20]]
    bodies.append(http.post_contacts(ids).content)
    feed = http.get("contacts/transactions/", **WINDOW)
    bodies.append(feed.content)
    next_page = http.get("contacts/transactions/", **WINDOW, cursor=feed.json()["cursor"])
    bodies.append(next_page.content)
    bodies.append(http.get("inbound/calls/", **{"from": "", "to": "2026-03-02T09:00:00"}).content)
    return bodies


def test_same_seed_gives_identical_bytes(sandbox_factory: Callable[..., Sandbox]) -> None:
    first = _transcript(sandbox_factory(seed=11, contacts=80))
    second = _transcript(sandbox_factory(seed=11, contacts=80))
    assert first == second
    assert sum(map(len, first)) > 20_000


def test_another_seed_gives_other_data(sandbox_factory: Callable[..., Sandbox]) -> None:
    a = sandbox_factory(seed=11, contacts=80)
    b = sandbox_factory(seed=12, contacts=80)
    assert a.campaign_id != b.campaign_id
    assert re.fullmatch(r"[23456789A-HJ-NP-Z]{16}", a.campaign_id)
    assert _transcript(a)[1:] != _transcript(b)[1:]


def test_contact_payload_does_not_depend_on_world_size(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    """Contact i derives from (seed, i) alone, so a bigger world keeps the same first contacts."""
    small = sandbox_factory(seed=5, contacts=30).world
    big = sandbox_factory(seed=5, contacts=3000).world
    assert [small.contact(i) for i in range(30)] == [big.contact(i) for i in range(30)]


def test_fetch_order_is_shuffled_but_deterministic(sandbox_http: SandboxHTTP) -> None:
    ids = [item["id"] for item in sandbox_http.get("contacts/list").json()["results"][:20]]
    first = [c["$id"] for c in sandbox_http.post_contacts(ids).json()]
    again = [c["$id"] for c in sandbox_http.post_contacts(list(reversed(ids))).json()]
    assert sorted(first) == sorted(ids)
    assert first == again
    assert first != ids
