"""changes.py: feed entries, bookmark arithmetic and which ids a run selects (fake client)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from tap_dialfire.changes import (
    ContactsBookmark,
    ContactSelection,
    SelectionSettings,
    feed_timestamp,
    parse_feed_entry,
    parse_timestamp,
)
from tap_dialfire.client import Page

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


class FakeClient:
    """Serves fixed pages and records the calls made."""

    def __init__(self, listing: list[list[str]], feed: list[list[str]], now: dt.datetime) -> None:
        self.listing = listing
        self.feed = feed
        self.now = now
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def list_contacts(self, **kwargs: Any) -> Iterator[Page]:
        self.calls.append(("list", kwargs))
        for ids in self.listing:
            yield Page([{"id": i, "md5": "0" * 32} for i in ids], None, self.now)

    def change_feed(self, **kwargs: Any) -> Iterator[Page]:
        self.calls.append(("feed", kwargs))
        for entries in self.feed:
            yield Page(list(entries), None, self.now)


def select(client: FakeClient, bookmark: ContactsBookmark, **settings: Any) -> ContactSelection:
    return ContactSelection(client, bookmark, SelectionSettings(**settings))  # type: ignore[arg-type]


def test_feed_entries_split_on_bars_and_ignore_a_fourth_part() -> None:
    entry = parse_feed_entry("2021-07-19T13:46:50.397Z|abc|CID|3,1")
    assert entry is not None and (entry.fired, entry.md5, entry.contact_id) == (
        "2021-07-19T13:46:50.397Z", "abc", "CID")
    assert parse_feed_entry("only|two") is None
    assert parse_feed_entry(42) is None


def test_feed_timestamps_use_the_old_clients_form() -> None:
    assert feed_timestamp(dt.datetime(2021, 7, 19, 13, 46, 50, 397000, tzinfo=dt.UTC)) == (
        "2021-07-19T13:46:50.397")
    assert parse_timestamp("2021-07-19") == dt.datetime(2021, 7, 19, tzinfo=dt.UTC)


def test_bookmark_round_trips_through_state() -> None:
    bookmark = ContactsBookmark(feed_position=T0, last_relist=T0 - dt.timedelta(hours=1))
    state = bookmark.to_state()
    assert state == {"feed_position": "2026-03-02T09:00:00.000Z",
                     "last_relist": "2026-03-02T08:00:00.000Z", "open_calls_since": None,
                     "scope": None}
    assert ContactsBookmark.from_state(state) == bookmark


def test_first_run_lists_since_start_date_and_deduplicates() -> None:
    client = FakeClient([["A", "B"], ["B", "C"]], [], T0)
    selection = select(client, ContactsBookmark(), start_date=T0 - dt.timedelta(days=3))
    assert list(selection.contact_ids()) == ["A", "B", "C"]
    assert client.calls == [("list", {"changed_since": dt.date(2026, 2, 27), "page_size": 1000})]
    assert selection.next_bookmark() == ContactsBookmark(T0, T0)


def test_later_run_reads_feed_from_bookmark_minus_lookback_without_relist() -> None:
    feed = [["t1|m1|A", "t1|m1|A", "t2|m2|A", "bad", "t3|m3|B"]]
    client = FakeClient([["Z"]], feed, T0 + dt.timedelta(minutes=5))
    bookmark = ContactsBookmark(feed_position=T0, last_relist=T0)
    selection = select(client, bookmark, lookback_minutes=5,
                       feed_filters={"type": "update"})
    assert list(selection.contact_ids()) == ["A", "B"]
    assert client.calls == [("feed", {"from_": "2026-03-02T08:55:00.000",
                                      "filters": {"type": "update"}, "page_size": 1000})]
    assert selection.stats.feed_duplicates == 1 and selection.stats.malformed == 1
    nxt = selection.next_bookmark()
    assert nxt.feed_position == T0 + dt.timedelta(minutes=5)
    assert nxt.last_relist == T0, "no re-list happened, so last_relist stays"


def test_relist_is_due_by_the_servers_clock_and_lists_since_the_last_relist_day() -> None:
    now = T0 + dt.timedelta(hours=13)
    client = FakeClient([["B", "C"]], [["t|m|A", "t2|m2|B"]], now)
    bookmark = ContactsBookmark(feed_position=T0, last_relist=T0)
    selection = select(client, bookmark, relist_interval_hours=12)
    assert list(selection.contact_ids()) == ["A", "B", "C"]
    assert client.calls[1] == ("list", {"changed_since": dt.date(2026, 3, 2), "page_size": 1000})
    assert selection.next_bookmark() == ContactsBookmark(now, now)


def test_relist_interval_zero_turns_relisting_off() -> None:
    client = FakeClient([["B"]], [[]], T0 + dt.timedelta(days=30))
    selection = select(client, ContactsBookmark(T0, T0), relist_interval_hours=0)
    assert list(selection.contact_ids()) == []
    assert [name for name, _ in client.calls] == ["feed"]


def test_an_open_call_holds_the_feed_window_open_until_it_ends() -> None:
    client = FakeClient([], [["t|m|A"]], T0 + dt.timedelta(hours=1))
    bookmark = ContactsBookmark(feed_position=T0, last_relist=T0)
    selection = select(client, bookmark, lookback_minutes=5)
    list(selection.contact_ids())
    selection.note_open_call("2026-03-02T08:30:00.000Z")
    selection.note_open_call("2026-03-02T08:40:00.000Z")
    nxt = selection.next_bookmark()
    assert nxt.open_calls_since == dt.datetime(2026, 3, 2, 8, 30, tzinfo=dt.UTC)

    again = select(FakeClient([], [[]], T0), nxt, lookback_minutes=5)
    list(again.contact_ids())
    assert again.client.calls[0][1]["from_"] == "2026-03-02T08:30:00.000"  # type: ignore[attr-defined]
    assert again.next_bookmark().open_calls_since is None, "no open call seen: the window moves on"


def test_an_open_call_older_than_the_horizon_no_longer_holds_the_window() -> None:
    client = FakeClient([], [[]], T0 + dt.timedelta(hours=30))
    selection = select(client, ContactsBookmark(feed_position=T0, last_relist=T0))
    list(selection.contact_ids())
    selection.note_open_call("2026-03-02T08:30:00.000Z")
    assert selection.next_bookmark().open_calls_since is None


def test_without_a_date_header_the_local_clock_is_used_and_said(caplog: Any) -> None:
    client = FakeClient([["A", "B"]], [], now=None)  # type: ignore[arg-type]
    selection = select(client, ContactsBookmark())
    before = dt.datetime.now(dt.UTC)
    assert list(selection.contact_ids()) == ["A", "B"]
    position = selection.next_bookmark().feed_position
    assert position is not None and before <= position <= dt.datetime.now(dt.UTC)
    assert "no readable Date header" in caplog.text
