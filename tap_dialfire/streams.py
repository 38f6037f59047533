"""singer-sdk wiring: which rows go to which stream, and when bookmarks move.

- ``contacts`` asks :mod:`tap_dialfire.changes` which contacts to read, fetches them 20 per
  request with up to ``max_workers`` requests in flight, turns each payload into rows with
  :mod:`tap_dialfire.rows` and yields the contact. Its bookmark moves only after the last
  contact was emitted.
- ``transactions``, ``connections`` and ``recordings`` are child streams that make no requests:
  the contacts stream hands each contact's precomputed rows over in the child context, and the
  children drop them from the context before singer-sdk logs it or could store it. Their state
  is not partitioned per contact (``state_partitioning_keys = ()``), so it stays constant-size.
- ``inbound_calls`` is incremental on ``started``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import Stream, metrics
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_dialfire.changes import ContactsBookmark, ContactSelection, parse_timestamp
from tap_dialfire.rows import (
    EXTRA,
    ContactRows,
    Row,
    format_datetime,
)

if TYPE_CHECKING:
    from singer_sdk.helpers import types

    from tap_dialfire.tap import TapDialfire

PROGRESS_EVERY = 1000
"""Log listed/fetched/emitted counts every this many contacts."""

IN_PROGRESS_HOLD_HOURS = 24
"""An inbound call without ``disconnected`` holds the bookmark back for at most this long."""

CHILD_ROWS = "_dialfire_rows"


def now_text() -> str:
    return format_datetime(dt.datetime.now(dt.UTC))


@dataclass
class RunCounts:
    """What the contacts stream fetched and emitted this run (for the progress log)."""

    fetched: int = 0
    emitted: int = 0
    transactions: int = 0
    connections: int = 0
    recordings: int = 0

    def add(self, rows: ContactRows) -> None:
        self.emitted += 1
        self.transactions += len(rows.transactions)
        self.connections += len(rows.connections)
        self.recordings += len(rows.recordings)


def open_call_fired(rows: ContactRows) -> Iterator[str | None]:
    """``fired`` of each emitted transaction that has a call still in progress."""
    open_transactions = {
        row["transaction_id"] for row in rows.connections if row.get("disconnected") in (None, "")
    }
    for row in rows.transactions:
        if row["id"] in open_transactions:
            yield row.get("fired")


class DialfireStream(Stream):
    """Shared pieces: the tap's client and row builder."""

    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE  # rows.py already typed every value
    _tap: TapDialfire

    @property
    def dialfire(self) -> TapDialfire:
        return self._tap

    def log(self, message: str, *args: Any, level: int = logging.INFO, **kwargs: Any) -> None:
        """singer-sdk's generic "unhandled error" line would precede the tap's own one-line
        error; it goes to INFO so the user sees one ERROR line that names the cause."""
        if level >= logging.ERROR and message.startswith("An unhandled error occurred"):
            level = logging.INFO
        super().log(message, *args, level=level, **kwargs)


class ContactsStream(DialfireStream):
    """Contacts of the campaign; parent of the transactions/connections/recordings streams."""

    name = "contacts"
    primary_keys: ClassVar[list[str]] = ["$id"]
    replication_key = None

    def __init__(self, tap: TapDialfire, schema: dict[str, Any]) -> None:
        super().__init__(tap, schema=schema)
        self._children: ContactRows | None = None
        self._extra_keys_logged: set[str] = set()

    def get_records(self, context: types.Context | None) -> Iterable[Row]:
        settings = self.dialfire.selection_settings()
        state = self.stream_state
        bookmark = ContactsBookmark.from_state(state).for_scope(self.sync_scope())
        selection = ContactSelection(self.dialfire.client, bookmark, settings)
        builder = self.dialfire.row_builder()
        for child in self.child_streams:
            if child.selected and isinstance(child, ContactChildStream):
                child.write_schema_once()

        counts = RunCounts()
        contacts = self.dialfire.client.fetch_contacts_concurrently(
            selection.contact_ids(), max_workers=self.dialfire.max_workers
        )
        emitted: set[str] = set()
        for payload in contacts:
            counts.fetched += 1
            contact_id = payload.get("$id")
            if not isinstance(contact_id, str) or not contact_id:
                self.logger.warning("Skipping a fetched contact without a $id")
                continue
            if contact_id in emitted:
                continue
            emitted.add(contact_id)
            rows = builder.contact_rows(payload, now_text())
            for fired in open_call_fired(rows):
                selection.note_open_call(fired)
            self._log_new_extra_keys(rows.contact, builder.columns.contacts)
            counts.add(rows)
            # singer-sdk syncs the children (get_child_context) before it writes the contact.
            self._children = rows
            yield rows.contact
            if counts.emitted % PROGRESS_EVERY == 0:
                self._log_progress(selection, counts)

        # Every contact of this run has been written (with its children): move the bookmark.
        new_bookmark = selection.next_bookmark()
        state.update(new_bookmark.to_state())
        self._log_progress(selection, counts, final=True)
        self.logger.info(
            "Contacts bookmark: %s",
            ", ".join(f"{k}={v}" for k, v in new_bookmark.to_state().items()),
        )

    def sync_scope(self) -> str:
        """What a contacts bookmark covers: campaign, transaction filter, selected streams."""
        transaction_filter = self.dialfire.transaction_filter
        streams = [self.name, *sorted(c.name for c in self.child_streams if c.selected)]
        return (
            f"campaign={self.dialfire.config['campaign_id']} "
            f"filter_mode={transaction_filter.mode} "
            f"task_prefixes={','.join(transaction_filter.task_prefixes)} "
            f"streams={','.join(streams)}"
        )

    def _log_progress(
        self, selection: ContactSelection, counts: RunCounts, *, final: bool = False
    ) -> None:
        stats = selection.stats
        self.logger.info(
            "%s: %d ids listed, %d feed entries (%d duplicate), %d contacts fetched, "
            "%d emitted with %d transactions, %d connections, %d recordings",
            "Contacts done" if final else "Contacts progress",
            stats.listed,
            stats.feed_entries,
            stats.feed_duplicates,
            counts.fetched,
            counts.emitted,
            counts.transactions,
            counts.connections,
            counts.recordings,
        )

    def _log_new_extra_keys(self, contact: Row, declared: Mapping[str, Any]) -> None:
        """Warn once per key and run about a contact key the schema does not declare."""
        extra = contact.get(EXTRA) or {}
        for key in extra:
            if key.startswith("$$") or key in declared or key in self._extra_keys_logged:
                continue
            self._extra_keys_logged.add(key)
            self.logger.warning(
                "Contact key %r is not a column of the contacts schema (a deleted or unknown "
                "field); it is delivered in $extra.",
                key,
            )

    def get_child_context(
        self, record: types.Record, context: types.Context | None
    ) -> types.Context | None:
        rows, self._children = self._children, None
        return {"contact_id": record.get("$id"), CHILD_ROWS: rows}


class _QuietCounter(metrics.Counter):
    """A record counter shared by all per-contact syncs of a child stream.

    singer-sdk syncs a child stream once per parent record; its default counter and timer
    would log two metric lines per contact. This one logs only at its interval.
    """

    def exit(self) -> None:
        return None


class _QuietTimer(metrics.Timer):
    def __exit__(self, *args: object) -> None:
        return None


class ContactChildStream(DialfireStream):
    """Rows derived from the parent contact; never requests anything."""

    parent_stream_type = ContactsStream
    state_partitioning_keys: ClassVar[tuple[str, ...]] = ()
    rows_attribute: ClassVar[str]

    def __init__(self, tap: TapDialfire, schema: dict[str, Any]) -> None:
        super().__init__(tap, schema=schema)
        self._rows: list[Row] = []
        self._schema_written = False
        self._schema_lock = threading.Lock()
        self._counter = _QuietCounter(metrics.Metric.RECORD_COUNT, {"stream": self.name})
        self._timer = _QuietTimer(metrics.Metric.SYNC_DURATION, {"stream": self.name})

    def preprocess_context(self, context: types.Context) -> types.Context:
        """Take this stream's rows out of the context; keep nothing that grows state."""
        rows: ContactRows | None = context.get(CHILD_ROWS)
        self._rows = list(getattr(rows, self.rows_attribute)) if rows is not None else []
        return {}

    def get_records(self, context: types.Context | None) -> Iterable[Row]:
        rows, self._rows = self._rows, []
        return rows

    def write_schema_once(self) -> None:
        with self._schema_lock:
            if not self._schema_written:
                self._schema_written = True
                super()._write_schema_message()

    def _write_schema_message(self) -> None:
        """One SCHEMA message per run, not one per contact."""
        self.write_schema_once()

    def log(self, message: str, *args: Any, level: int = logging.INFO, **kwargs: Any) -> None:
        """The per-contact "Beginning sync" line goes to DEBUG."""
        if message.startswith("Beginning sync of"):
            level = logging.DEBUG
        super().log(message, *args, level=level, **kwargs)  # DialfireStream.log

    def get_record_counter(self, **_: Any) -> metrics.Counter:
        return self._counter

    def get_sync_timer(self) -> metrics.Timer:
        return self._timer


class TransactionsStream(ContactChildStream):
    name = "transactions"
    primary_keys: ClassVar[list[str]] = ["id"]
    rows_attribute = "transactions"


class ConnectionsStream(ContactChildStream):
    name = "connections"
    primary_keys: ClassVar[list[str]] = ["id"]
    rows_attribute = "connections"


class RecordingsStream(ContactChildStream):
    name = "recordings"
    primary_keys: ClassVar[list[str]] = ["id"]
    rows_attribute = "recordings"


class InboundCallsStream(DialfireStream):
    """Inbound calls, incremental on ``started`` (read again from bookmark - look-back)."""

    name = "inbound_calls"
    primary_keys: ClassVar[list[str]] = ["id"]
    replication_key = "started"
    is_sorted = False

    def get_replication_key_signpost(self, context: types.Context | None = None) -> Any:
        """No cap from the local clock: the cap is the server's (``Date``), set after reading."""
        return None

    def _from_parameter(self, context: types.Context | None) -> str:
        state = self.get_context_state(context)
        bookmark = parse_timestamp(state.get("replication_key_value"))
        if bookmark is not None:
            lookback = dt.timedelta(minutes=self.dialfire.lookback_minutes)
            return format_datetime(bookmark - lookback)[:-1]
        start = self.dialfire.start_date
        return format_datetime(start)[:-1] if start else ""

    def get_records(self, context: types.Context | None) -> Iterable[Row]:
        builder = self.dialfire.row_builder()
        from_ = self._from_parameter(context)
        self.logger.info("Reading inbound calls from %s", from_ or "the beginning")
        hold_back: str | None = None
        server_time: dt.datetime | None = None
        pages = self.dialfire.client.inbound_calls(from_=from_, page_size=self.dialfire.page_size)
        for page in pages:
            server_time = server_time or page.server_time
            for call in page.results:
                if not isinstance(call, dict) or call.get("id") in (None, ""):
                    self.logger.warning("Skipping an inbound call without an id")
                    continue
                row = builder.inbound_call_row(call, now_text())
                started = row.get("started")
                if isinstance(started, str) and row.get("disconnected") in (None, ""):
                    hold_back = started if hold_back is None else min(hold_back, started)
                yield row
        clock = server_time or dt.datetime.now(dt.UTC)
        # singer-sdk caps the bookmark at the signpost. It never passes the server's clock (a
        # call dated in the future would otherwise skip every call made until then) ...
        signpost = format_datetime(clock)
        if hold_back is not None:
            horizon = clock - dt.timedelta(hours=IN_PROGRESS_HOLD_HOURS)
            held = parse_timestamp(hold_back)
            if held is not None and held >= horizon:
                # ... nor a call still in progress, so that its final state is read next time.
                signpost = min(signpost, format_datetime(held))
        self._write_replication_key_signpost(context, signpost)
