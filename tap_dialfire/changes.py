"""Which contacts a run fetches, and the bookmarks that say where the next run starts.

- **First run** (no ``feed_position`` in state): list every contact (``changedSince`` = the day
  of ``start_date`` when set). The listing counts as a re-list.
- **Later runs**: read the change feed from ``feed_position - lookback_minutes`` (no ``to``),
  de-duplicate entries by (``fired``, ``md5``) and contacts by id. When the last re-list is
  older than ``relist_interval_hours`` (by the server's clock), also list the contacts changed
  since the day of that re-list: the safety net for changes the feed cannot show (section 7 of
  the API contract).

The state is constant-size: ``{"feed_position": ts, "last_relist": ts, "open_calls_since": ts}``.
The new positions are the server's time (HTTP ``Date``) of this run's first response, so whatever
changes while the run reads is read again next time; the caller stores them only after every
contact was emitted.

``open_calls_since`` is the ``fired`` of the oldest transaction emitted with a call still in
progress (no ``disconnected``). If the feed compares ``from`` with ``fired`` (unknown, section 7),
a call that ends later than ``lookback_minutes`` after it started would otherwise leave the
window; so later runs read the feed from ``min(feed_position - lookback, open_calls_since)``.
Such contacts are fetched again on every run until their calls end (then the value moves on), at
most for ``OPEN_CALL_HORIZON_HOURS``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tap_dialfire.client import DialfireClient, Page
from tap_dialfire.rows import format_datetime, normalize_datetime

logger = logging.getLogger("tap-dialfire.changes")

FEED_POSITION = "feed_position"
LAST_RELIST = "last_relist"
OPEN_CALLS_SINCE = "open_calls_since"
SCOPE = "scope"
OPEN_CALL_HORIZON_HOURS = 24
"""A call without ``disconnected`` older than this (by the server's clock) no longer holds the
feed window open: it is taken as abandoned, and the periodic re-list remains its safety net."""


def feed_timestamp(value: dt.datetime) -> str:
    """The old client's form for ``from``/``to``: UTC, milliseconds, no ``Z``."""
    return format_datetime(value)[:-1]


def parse_timestamp(value: Any) -> dt.datetime | None:
    """A bookmark or ``start_date`` value as an aware UTC datetime (None when unusable)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if len(text) == 10:  # a bare date
        text += "T00:00:00"
    normalized = normalize_datetime(text)
    if normalized is None:
        return None
    return dt.datetime.strptime(normalized, "%Y-%m-%dT%H:%M:%S.%f%z")


@dataclass(frozen=True)
class FeedEntry:
    """One change-feed entry: ``fired|md5|contact id`` (a fourth part is ignored)."""

    fired: str
    md5: str
    contact_id: str


def parse_feed_entry(entry: Any) -> FeedEntry | None:
    """The entry's parts, or None when it is malformed."""
    if not isinstance(entry, str):
        return None
    parts = entry.split("|")
    if len(parts) < 3 or not parts[2]:
        return None
    return FeedEntry(fired=parts[0], md5=parts[1], contact_id=parts[2])


@dataclass(frozen=True)
class ContactsBookmark:
    """The contacts stream's state: three timestamps and what they cover, however many
    contacts there are."""

    feed_position: dt.datetime | None = None
    last_relist: dt.datetime | None = None
    open_calls_since: dt.datetime | None = None
    scope: str | None = None
    """Campaign, filters and selected child streams the timestamps were earned with: the feed
    only names contacts that changed, so a run with a wider scope must list everything again."""

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ContactsBookmark:
        scope = state.get(SCOPE)
        return cls(
            feed_position=parse_timestamp(state.get(FEED_POSITION)),
            last_relist=parse_timestamp(state.get(LAST_RELIST)),
            open_calls_since=parse_timestamp(state.get(OPEN_CALLS_SINCE)),
            scope=scope if isinstance(scope, str) else None,
        )

    def to_state(self) -> dict[str, str | None]:
        """Always the same keys (``open_calls_since`` is null when no call is open)."""

        def text(value: dt.datetime | None) -> str | None:
            return None if value is None else format_datetime(value)

        return {
            FEED_POSITION: text(self.feed_position),
            LAST_RELIST: text(self.last_relist),
            OPEN_CALLS_SINCE: text(self.open_calls_since),
            SCOPE: self.scope,
        }

    def for_scope(self, scope: str) -> ContactsBookmark:
        """This bookmark if it was earned with `scope`, else none (a first run).

        A bookmark without a scope (written by hand, e.g. when moving from dbsync2) is trusted.
        """
        if self.feed_position is None or self.scope in (None, scope):
            return replace(self, scope=scope)
        logger.warning(
            "The state was written for %s, this run is for %s: listing every contact again "
            "(from start_date's day, if set) so nothing the old scope left out is missing.",
            self.scope,
            scope,
        )
        return ContactsBookmark(scope=scope)


@dataclass(frozen=True)
class SelectionSettings:
    """The settings that decide what a run reads."""

    start_date: dt.datetime | None = None
    lookback_minutes: float = 5
    relist_interval_hours: float = 12
    page_size: int = 1000
    feed_filters: Mapping[str, str] = field(default_factory=dict)


@dataclass
class SelectionStats:
    """Counts for the progress log."""

    listed: int = 0
    feed_entries: int = 0
    feed_duplicates: int = 0
    malformed: int = 0
    relisted: bool = False


class ContactSelection:
    """The de-duplicated ids of the contacts this run fetches (each id once per run)."""

    def __init__(
        self,
        client: DialfireClient,
        bookmark: ContactsBookmark,
        settings: SelectionSettings,
    ) -> None:
        self.client = client
        self.bookmark = bookmark
        self.settings = settings
        self.stats = SelectionStats()
        self.started_at: dt.datetime | None = None  # server time of the first response
        self._seen_ids: set[str] = set()
        self._oldest_open: dt.datetime | None = None

    @property
    def is_first_run(self) -> bool:
        return self.bookmark.feed_position is None

    def feed_from(self) -> dt.datetime:
        """Where the change feed is read from: the bookmark minus the look-back, or the oldest
        call still open at the last run, whichever is earlier."""
        assert self.bookmark.feed_position is not None
        start = self.bookmark.feed_position - dt.timedelta(minutes=self.settings.lookback_minutes)
        open_since = self.bookmark.open_calls_since
        return min(start, open_since) if open_since is not None else start

    def note_open_call(self, fired: str | None) -> None:
        """An emitted transaction has a call without ``disconnected``: keep the feed open."""
        when = parse_timestamp(fired)
        if when is not None and (self._oldest_open is None or when < self._oldest_open):
            self._oldest_open = when

    def relist_due(self, now: dt.datetime) -> bool:
        """A later run re-lists when the last re-list is older than the interval (0 = never)."""
        interval = self.settings.relist_interval_hours
        if interval <= 0:
            return False
        last = self.bookmark.last_relist
        return last is None or now - last >= dt.timedelta(hours=interval)

    def contact_ids(self) -> Iterator[str]:
        """Ids in the order they are found; each id at most once."""
        if self.is_first_run:
            start = self.settings.start_date
            day = start.date() if start else None
            logger.info(
                "First run: listing %s contacts",
                f"changed since {day.isoformat()}" if day else "all",
            )
            self.stats.relisted = True
            yield from self._listing(day)
            return

        from_ = feed_timestamp(self.feed_from())
        logger.info("Reading the change feed from %s", from_)
        yield from self._feed(from_)
        now = self.started_at or dt.datetime.now(dt.UTC)
        if self.relist_due(now):
            last = self.bookmark.last_relist
            day = last.date() if last else None
            logger.info(
                "Re-listing contacts changed since %s (last re-list %s)",
                day.isoformat() if day else "the beginning",
                format_datetime(last) if last else "never",
            )
            self.stats.relisted = True
            yield from self._listing(day)

    def next_bookmark(self) -> ContactsBookmark:
        """The bookmark to store once every contact of this run was emitted."""
        position = self.started_at or dt.datetime.now(dt.UTC)
        last_relist = position if self.stats.relisted else self.bookmark.last_relist
        open_since = self._oldest_open
        horizon = position - dt.timedelta(hours=OPEN_CALL_HORIZON_HOURS)
        if open_since is not None and open_since < horizon:
            open_since = None
        return ContactsBookmark(
            feed_position=position,
            last_relist=last_relist,
            open_calls_since=open_since,
            scope=self.bookmark.scope,
        )

    def _note_time(self, page: Page) -> None:
        if self.started_at is None:
            self.started_at = page.server_time
            if self.started_at is None:
                self.started_at = dt.datetime.now(dt.UTC)
                logger.warning(
                    "The API sent no readable Date header: the bookmark uses this machine's "
                    "clock; keep it synchronised (NTP), or raise lookback_minutes to cover skew."
                )

    def _first_time(self, contact_id: str) -> bool:
        if contact_id in self._seen_ids:
            return False
        self._seen_ids.add(contact_id)
        return True

    def _listing(self, changed_since: dt.date | None) -> Iterator[str]:
        pages = self.client.list_contacts(
            changed_since=changed_since, page_size=self.settings.page_size
        )
        for page in pages:
            self._note_time(page)
            for item in page.results:
                contact_id = item.get("id") if isinstance(item, dict) else None
                if not isinstance(contact_id, str) or not contact_id:
                    self.stats.malformed += 1
                    logger.warning("Skipping a malformed contacts/list item")
                    continue
                self.stats.listed += 1
                if self._first_time(contact_id):
                    yield contact_id

    def _feed(self, from_: str) -> Iterator[str]:
        seen_entries: set[tuple[str, str]] = set()
        pages = self.client.change_feed(
            from_=from_,
            filters=self.settings.feed_filters,
            page_size=self.settings.page_size,
        )
        for page in pages:
            self._note_time(page)
            for raw in page.results:
                entry = parse_feed_entry(raw)
                if entry is None:
                    self.stats.malformed += 1
                    logger.warning("Skipping a malformed change-feed entry")
                    continue
                self.stats.feed_entries += 1
                if (entry.fired, entry.md5) in seen_entries:
                    self.stats.feed_duplicates += 1
                    continue
                seen_entries.add((entry.fired, entry.md5))
                if self._first_time(entry.contact_id):
                    yield entry.contact_id
