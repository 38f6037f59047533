"""One Dialfire payload in, the rows of ``docs/records.md`` out.

Pure functions: no HTTP, no singer-sdk, no clock. Every Dialfire rule that decides what a row
holds lives here once: derived ids (transaction, recording), parent connection ids, the
inbound-call renames, the transaction filters and the value cleaning. Column names and types
come from the stream schemas (``schemas/*.json``), so adding a column there is enough.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["string", "datetime", "number", "integer", "boolean", "object"]
Row = dict[str, Any]

EXTRA = "$extra"
CHANGED = "$changed"
BOOKKEEPING_COLUMNS = (EXTRA, CHANGED)

FILTER_MODES = ("all", "updates_only", "hi_updates_only")
VALUE_FORMATS = ("sql", "raw")

INBOUND_RENAMES: Mapping[str, str] = {
    "calling_number": "remote_number",
    "called_number": "line_number",
    "call_time": "started",
    "connect_time": "connected",
    "hangup_time": "disconnected",
}


# --------------------------------------------------------------------------- columns


def kind_of(property_schema: Mapping[str, Any]) -> Kind:
    """Map one JSON-schema property to the value kind the cleaning rules know."""
    types = property_schema.get("type", "string")
    types = [types] if isinstance(types, str) else list(types)
    if property_schema.get("format") == "date-time":
        return "datetime"
    for candidate in ("integer", "number", "boolean", "object"):
        if candidate in types:
            return candidate
    return "string"


def columns_from_schema(schema: Mapping[str, Any]) -> dict[str, Kind]:
    """The data columns of a stream schema, in order, without ``$extra``/``$changed``."""
    return {
        name: kind_of(prop)
        for name, prop in schema.get("properties", {}).items()
        if name not in BOOKKEEPING_COLUMNS
    }


def custom_field_kind(field_type: str | None) -> Kind:
    """Contract: ``fieldType == "number"`` is a number column, every other type a string."""
    return "number" if field_type == "number" else "string"


def custom_fields(fields_list: Iterable[Mapping[str, Any]]) -> dict[str, Kind]:
    """The contact columns a campaign's ``fields/list`` declares (live fields only)."""
    result: dict[str, Kind] = {}
    for element in fields_list:
        if not isinstance(element, Mapping):
            continue
        if element.get("type") != "field" or element.get("deleted") is True:
            continue
        name = element.get("name")
        if isinstance(name, str) and name:
            result[name] = custom_field_kind(element.get("fieldType"))
    return result


# --------------------------------------------------------------------------- values

_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$"
)
_INTEGER = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


def normalize_datetime(text: str) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC, or None when ``text`` is no ISO-8601 timestamp.

    No zone means UTC; offsets are converted; fractions are truncated to milliseconds
    (truncation, not rounding, so a value never moves into the next second).
    """
    match = _DATETIME.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, _z, sign, off_h, off_m = match.groups()
    micro = int((fraction or "0").ljust(6, "0")[:6])
    try:
        value = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            micro,
            tzinfo=dt.UTC,
        )
        if sign:
            offset = dt.timedelta(hours=int(off_h), minutes=int(off_m))
            value = value - offset if sign == "+" else value + offset
    except (ValueError, OverflowError):
        return None
    return format_datetime(value)


def format_datetime(value: dt.datetime) -> str:
    """The one timestamp form every date-time column and bookmark uses."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


_FAILED = object()


def _to_number(value: Any) -> Any:
    if isinstance(value, bool):
        return _FAILED
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.match(text):
            return int(text)
        if _DECIMAL.match(text):
            number = float(text)
            if number != number or number in (float("inf"), float("-inf")):
                return _FAILED
            return int(number) if number.is_integer() else number
    return _FAILED


def _to_integer(value: Any) -> Any:
    if isinstance(value, bool):
        return _FAILED
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else _FAILED
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value.strip())
    return _FAILED


def _to_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return _FAILED


def _to_string(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return _FAILED


@dataclass(frozen=True)
class ValuePolicy:
    """How top-level values are cleaned: ``sql`` (the default) or ``raw``.

    ``sql`` turns empty strings into null and normalises date-times (rules 1 and 2 of
    docs/records.md), as the old tool's tables held them. ``raw`` keeps strings exactly as
    Dialfire sent them (for a receiver that wants the API's values, e.g. the webhook target);
    type coercion (rules 3 and 4) applies in both.
    """

    value_format: str = "sql"

    def __post_init__(self) -> None:
        if self.value_format not in VALUE_FORMATS:
            msg = f"value_format must be one of {', '.join(VALUE_FORMATS)}"
            raise ValueError(msg)

    @property
    def blanks_to_null(self) -> bool:
        return self.value_format == "sql"

    def blank(self, value: Any) -> Any:
        """Rule 1: an empty string is null (sql only)."""
        if self.blanks_to_null and value == "":
            return None
        return value

    def coerce(self, value: Any, kind: Kind) -> Any:
        """The value for a column of ``kind``, or ``_FAILED`` when it cannot be coerced."""
        value = self.blank(value)
        if value is None:
            return None
        if kind == "string":
            return _to_string(value)
        if kind == "datetime":
            if not isinstance(value, str):
                return _FAILED
            if not self.blanks_to_null:
                return value
            normalized = normalize_datetime(value)
            return _FAILED if normalized is None else normalized
        if kind == "number":
            return _to_number(value)
        if kind == "integer":
            return _to_integer(value)
        if kind == "boolean":
            return _to_boolean(value)
        if kind == "object":
            return value if isinstance(value, dict) else _FAILED
        return _FAILED  # pragma: no cover - Kind is closed


@dataclass
class RowShaper:
    """Builds one row: declared columns in schema order, the rest into ``$extra``."""

    columns: Mapping[str, Kind]
    policy: ValuePolicy
    changed: str | None

    def shape(
        self,
        source: Mapping[str, Any],
        *,
        derived: Mapping[str, Any] = {},
        structural: Iterable[str] = (),
        defaults: Mapping[str, Any] = {},
    ) -> Row:
        """``derived`` values override the source; ``structural`` keys are left out entirely;
        ``defaults`` replace a missing, null or (sql) empty source value."""
        row: Row = {}
        extra: dict[str, Any] = {}
        for name, kind in self.columns.items():
            raw = derived[name] if name in derived else source.get(name)
            if name in defaults and raw in (None, ""):
                raw = defaults[name]
            value = self.policy.coerce(raw, kind)
            if value is _FAILED:
                row[name] = None
                extra[name] = raw
            else:
                row[name] = value
        skip = set(structural)
        for name, raw in source.items():
            if name in self.columns or name in skip or name in derived:
                continue
            extra[name] = self.policy.blank(raw)
        row[EXTRA] = extra or None
        row[CHANGED] = self.changed
        return row


# --------------------------------------------------------------------------- identities


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _raw_text(value: Any) -> str:
    """A raw API value as it takes part in a derived id (null → empty)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def transaction_ids(contact_id: str, transactions: Iterable[Mapping[str, Any]]) -> list[str]:
    """Derived ids for a contact's transactions, walked in task-log order.

    Same-``fired`` rule: the first transaction with a given ``fired`` keeps the old tool's id,
    md5(``$id`` + ``fired``); each later one gets md5(``$id`` + ``fired`` + ``#`` +
    ``sequence_nr``), or, without a sequence number, + ``#`` + its 1-based ordinal among the
    transactions with that ``fired``. Ids therefore never depend on the filters.
    """
    seen: dict[str, int] = {}
    ids: list[str] = []
    for transaction in transactions:
        fired = _raw_text(transaction.get("fired"))
        ordinal = seen.get(fired, 0) + 1
        seen[fired] = ordinal
        if ordinal == 1:
            ids.append(md5_hex(contact_id + fired))
            continue
        sequence_nr = transaction.get("sequence_nr")
        suffix = str(ordinal) if sequence_nr in (None, "") else _raw_text(sequence_nr)
        ids.append(md5_hex(f"{contact_id}{fired}#{suffix}"))
    return ids


def recording_id(connection_id: str, recording: Mapping[str, Any]) -> str:
    """md5(connection id + location), or + started when the location is null or empty."""
    location = recording.get("location")
    if location in (None, ""):
        return md5_hex(connection_id + _raw_text(recording.get("started")))
    return md5_hex(connection_id + _raw_text(location))


# --------------------------------------------------------------------------- filters


def is_human_interaction(transaction: Mapping[str, Any]) -> bool:
    """A user made it (``user`` set) and it is not a mere assignment."""
    return transaction.get("user") not in (None, "") and (
        transaction.get("status_detail") != "$assigned"
    )


@dataclass(frozen=True)
class TransactionFilter:
    """``filter_mode`` and ``task_prefixes``, applied to each fetched contact's transactions.

    The same filters go to the server as the change feed's ``type``/``hi``/``tasks``
    parameters (see :meth:`feed_params`), as the old tool did.
    """

    mode: str = "all"
    task_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in FILTER_MODES:
            msg = f"filter_mode must be one of {', '.join(FILTER_MODES)}"
            raise ValueError(msg)
        # `fc_, qc_` from the environment means fc_ and qc_; an empty item (an empty
        # variable arrives as [""]) is no filter rather than `tasks=` on the feed.
        cleaned = tuple(p.strip() for p in self.task_prefixes if p.strip())
        object.__setattr__(self, "task_prefixes", cleaned)

    def keeps(self, transaction: Mapping[str, Any]) -> bool:
        if self.mode != "all" and transaction.get("type") != "update":
            return False
        if self.mode == "hi_updates_only" and not is_human_interaction(transaction):
            return False
        if self.task_prefixes:
            task = transaction.get("task")
            if not isinstance(task, str) or not task.startswith(self.task_prefixes):
                return False
        return True

    def feed_params(self) -> dict[str, str]:
        """The change feed's server-side form of this filter."""
        params: dict[str, str] = {}
        if self.mode != "all":
            params["type"] = "update"
        if self.mode == "hi_updates_only":
            params["hi"] = "true"
        if self.task_prefixes:
            params["tasks"] = ",".join(self.task_prefixes)
        return params


# --------------------------------------------------------------------------- rows


@dataclass
class ContactRows:
    """Everything one contact payload yields."""

    contact: Row
    transactions: list[Row] = field(default_factory=list)
    connections: list[Row] = field(default_factory=list)
    recordings: list[Row] = field(default_factory=list)


@dataclass
class StreamColumns:
    """The declared columns of each stream (from the schemas the run uses)."""

    contacts: Mapping[str, Kind]
    transactions: Mapping[str, Kind]
    connections: Mapping[str, Kind]
    recordings: Mapping[str, Kind]
    inbound_calls: Mapping[str, Kind]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_dicts(value: Any) -> Iterator[Mapping[str, Any]]:
    return (item for item in _as_list(value) if isinstance(item, Mapping))


@dataclass
class RowBuilder:
    """Turns payloads into rows for one run (columns, filter and value policy fixed)."""

    columns: StreamColumns
    transaction_filter: TransactionFilter = field(default_factory=TransactionFilter)
    policy: ValuePolicy = field(default_factory=ValuePolicy)

    def contact_rows(self, payload: Mapping[str, Any], changed: str | None) -> ContactRows:
        """The contact row and the rows of its kept transactions, connections, recordings."""
        contact_id = _raw_text(payload.get("$id"))
        contact = RowShaper(self.columns.contacts, self.policy, changed).shape(
            payload, structural=("$task_log",)
        )
        result = ContactRows(contact=contact)

        located: list[tuple[int, int, Mapping[str, Any]]] = []
        for log_index, entry in enumerate(_as_list(payload.get("$task_log"))):
            if not isinstance(entry, Mapping):
                continue
            for tx_index, transaction in enumerate(_as_list(entry.get("transactions"))):
                if isinstance(transaction, Mapping):
                    located.append((log_index, tx_index, transaction))
        ids = transaction_ids(contact_id, (tx for _, _, tx in located))

        tx_shaper = RowShaper(self.columns.transactions, self.policy, changed)
        for (log_index, tx_index, transaction), tx_id in zip(located, ids, strict=True):
            if not self.transaction_filter.keeps(transaction):
                continue
            result.transactions.append(
                tx_shaper.shape(
                    transaction,
                    derived={
                        "id": tx_id,
                        "contact_id": contact_id,
                        "task_log_index": log_index,
                        "transaction_index": tx_index,
                    },
                    structural=("connections", "id"),
                )
            )
            self._connection_rows(
                transaction.get("connections"),
                contact_id=contact_id,
                transaction_id=tx_id,
                outer_id=None,
                changed=changed,
                into=result,
            )
        return result

    def _connection_rows(
        self,
        connections: Any,
        *,
        contact_id: str,
        transaction_id: str,
        outer_id: Any,
        changed: str | None,
        into: ContactRows,
        nested: bool = False,
    ) -> None:
        """Rows for one ``connections`` array; recurses into ``third_party_connections``."""
        shaper = RowShaper(self.columns.connections, self.policy, changed)
        previous_id: Any = None
        for connection in _as_dicts(connections):
            connection_id = connection.get("id")
            if nested:
                parent = outer_id
            elif connection.get("technology") == "transfer":
                parent = previous_id
            else:
                parent = None
            into.connections.append(
                shaper.shape(
                    connection,
                    derived={
                        "parent_connection_id": parent,
                        "transaction_id": transaction_id,
                        "contact_id": contact_id,
                    },
                    structural=("recordings", "third_party_connections"),
                    defaults={"isThirdPartyConnection": False},
                )
            )
            raw_id = _raw_text(connection_id)
            self._recording_rows(connection.get("recordings"), contact_id, raw_id, changed, into)
            self._connection_rows(
                connection.get("third_party_connections"),
                contact_id=contact_id,
                transaction_id=transaction_id,
                outer_id=connection_id,
                changed=changed,
                into=into,
                nested=True,
            )
            previous_id = connection_id

    def _recording_rows(
        self,
        recordings: Any,
        contact_id: str,
        connection_id: str,
        changed: str | None,
        into: ContactRows,
    ) -> None:
        shaper = RowShaper(self.columns.recordings, self.policy, changed)
        for recording in _as_dicts(recordings):
            into.recordings.append(
                shaper.shape(
                    recording,
                    derived={
                        "id": recording_id(connection_id, recording),
                        "contact_id": contact_id,
                        "connection_id": connection_id,
                    },
                )
            )

    def inbound_call_row(self, call: Mapping[str, Any], changed: str | None) -> Row:
        """An inbound call with the old tool's renames."""
        renamed = {INBOUND_RENAMES.get(key, key): value for key, value in call.items()}
        return RowShaper(self.columns.inbound_calls, self.policy, changed).shape(renamed)
