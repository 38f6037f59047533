"""The test oracle: exactly which rows a correct sync of the sandbox must hold, per stream.

Written from `docs/records.md` alone and on purpose independent of `tap_dialfire` (an oracle
that imports the code under test proves nothing). It reads the world's current payloads the way
a client would see them (`POST contacts?include_md5=true`, `fields/list`, `inbound/calls`) and
applies the record contract: derived ids with the same-`fired` rule, parent ids, renames,
empty -> null, one timestamp form, type coercion with `$extra` for what does not fit, filters.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from dialfire_sandbox.formats import DAY_MS, md5_hex, parse_timestamp_ms, to_ms
from dialfire_sandbox.world import World

FILTER_MODES = ("all", "updates_only", "hi_updates_only")

CONTACT_SYSTEM_COLUMNS = [
    "$id", "$md5", "$ref", "$version", "$campaign_id", "$task_id", "$task", "$status",
    "$status_detail", "$created_date", "$entry_date", "$owner", "$follow_up_date", "$phone",
    "$timezone", "$caller_id", "$source", "$comment", "$error", "$recording", "$recording_url",
    "$call_order", "$trigger",
]
CONTACT_DATETIMES = {"$created_date", "$entry_date", "$follow_up_date"}

TRANSACTION_COLUMNS = [
    "id", "contact_id", "task_id", "task", "status", "status_detail", "fired", "pause_time_sec",
    "edit_time_sec", "wrapup_time_sec", "user", "user_loginName", "user_branch",
    "user_tenantAlias", "actor", "type", "result", "trigger", "isHI", "revoked", "sequence_nr",
    "version", "data", "task_log_index", "transaction_index",
]
TRANSACTION_TYPES = {
    "fired": "datetime", "pause_time_sec": "number", "edit_time_sec": "number",
    "wrapup_time_sec": "number", "isHI": "boolean", "revoked": "boolean",
    "sequence_nr": "integer", "data": "object", "task_log_index": "integer",
    "transaction_index": "integer",
}

CONNECTION_COLUMNS = [
    "id", "parent_connection_id", "transfer_target_address", "call_uuid", "global_call_uuid",
    "transaction_id", "task_id", "contact_id", "phone", "user", "actor", "hangup_party",
    "isThirdPartyConnection", "dialerdomain", "fired", "started", "initiated", "connected",
    "disconnected", "ended", "duration", "remote_number", "line_number", "technology", "result",
    "code", "call_initiated", "call_connected", "call_disconnected",
]
CONNECTION_TYPES = {
    "fired": "datetime", "started": "datetime", "initiated": "datetime",
    "connected": "datetime", "disconnected": "datetime", "ended": "datetime",
    "duration": "number", "isThirdPartyConnection": "boolean",
}

RECORDING_COLUMNS = ["id", "contact_id", "connection_id", "started", "stopped", "filename",
                     "location"]
RECORDING_TYPES = {"started": "datetime", "stopped": "datetime"}

INBOUND_COLUMNS = [
    "id", "line_id", "campaign_id", "task_id", "task_name", "contact_id", "remote_number",
    "line_number", "started", "connected", "disconnected", "user", "state", "connectable_time",
    "disposition", "dispatch_error",
]
INBOUND_RENAMES = {
    "calling_number": "remote_number", "called_number": "line_number", "call_time": "started",
    "connect_time": "connected", "hangup_time": "disconnected",
}
INBOUND_TYPES = {
    "started": "datetime", "connected": "datetime", "disconnected": "datetime",
    "connectable_time": "datetime", "dispatch_error": "boolean",
}


class _Uncoercible(Exception):
    pass


_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$"
)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")


def _normalise_datetime(value: Any) -> str:
    if not isinstance(value, str):
        raise _Uncoercible
    match = _ISO.match(value.strip())
    if not match:
        raise _Uncoercible
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          tzinfo=UTC)
    except ValueError:
        raise _Uncoercible from None
    if zone == "Z" and fraction is not None and len(fraction) == 3:
        return str(match.group(0))  # already the normal form (and a valid date)
    micros = int((fraction or "0").ljust(9, "0")[:6])
    moment += timedelta(microseconds=micros)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _coerce(value: Any, kind: str) -> Any:
    """Rules 3 and 4 of the contract; raises _Uncoercible for a value that does not fit."""
    if value is None:
        return None
    if kind == "datetime":
        return _normalise_datetime(value)
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return json.dumps(value)
        raise _Uncoercible
    if kind == "number":
        if isinstance(value, bool):
            raise _Uncoercible
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value) if value.is_integer() else value
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            if _INTEGER.match(value.strip()):
                return int(value)
            number = float(value)
            return int(number) if number.is_integer() else number
        raise _Uncoercible
    if kind == "integer":
        if isinstance(value, bool):
            raise _Uncoercible
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER.match(value.strip()):
            return int(value)
        raise _Uncoercible
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _Uncoercible
    if kind == "object":
        if isinstance(value, dict):
            return value
        raise _Uncoercible
    raise ValueError(f"unknown column type {kind}")


def _clean(value: Any) -> Any:
    """Rule 1: empty strings become null."""
    return None if value == "" else value


def _row(
    source: dict[str, Any],
    columns: list[str],
    types: dict[str, str],
    derived: dict[str, Any],
    structural: set[str],
) -> dict[str, Any]:
    """One row: declared columns coerced, derived values set, everything else in `$extra`."""
    row: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for column in columns:
        if column in derived:
            row[column] = derived[column]
            continue
        raw = source.get(column)
        value = _clean(raw)
        try:
            row[column] = _coerce(value, types.get(column, "string"))
        except _Uncoercible:
            row[column] = None
            extra[column] = raw
    for key, value in source.items():
        if key in structural or key in row:
            continue
        extra[key] = _clean(value)
    row["$extra"] = extra or None
    return row


def transaction_ids(contact_id: str, transactions: list[dict[str, Any]]) -> list[str]:
    """Derived ids in task-log order, with the contract's same-`fired` rule."""
    seen: dict[str, int] = {}
    ids = []
    for tx in transactions:
        fired = tx.get("fired")
        fired_text = "" if fired is None else str(fired)
        seen[fired_text] = seen.get(fired_text, 0) + 1
        if seen[fired_text] == 1:
            ids.append(md5_hex(contact_id + fired_text))
            continue
        seq = tx.get("sequence_nr")
        suffix = seen[fired_text] if seq is None or seq == "" else seq
        ids.append(md5_hex(f"{contact_id}{fired_text}#{suffix}"))
    return ids


def is_human(tx: dict[str, Any]) -> bool:
    return tx.get("user") not in (None, "") and tx.get("status_detail") != "$assigned"


def keep_transaction(tx: dict[str, Any], filter_mode: str, task_prefixes: tuple[str, ...]) -> bool:
    if filter_mode in ("updates_only", "hi_updates_only") and tx.get("type") != "update":
        return False
    if filter_mode == "hi_updates_only" and not is_human(tx):
        return False
    return not task_prefixes or str(tx.get("task") or "").startswith(tuple(task_prefixes))


def contact_rows(
    payload: dict[str, Any], fields: list[dict[str, Any]], filter_mode: str = "all",
    task_prefixes: tuple[str, ...] = (),
) -> dict[str, list[dict[str, Any]]]:
    """All rows one fetched contact yields (the contact, and its kept children)."""
    declared = [f for f in fields if f.get("type") == "field" and not f.get("deleted")]
    custom_types = {
        str(f["name"]): "number" if f.get("fieldType") == "number" else "string" for f in declared
    }
    columns = CONTACT_SYSTEM_COLUMNS + [c for c in custom_types if c not in CONTACT_SYSTEM_COLUMNS]
    types = {c: "datetime" for c in CONTACT_DATETIMES} | custom_types
    contact = _row(payload, columns, types, {}, {"$task_log"})
    cid = payload["$id"]
    out: dict[str, list[dict[str, Any]]] = {
        "contacts": [contact], "transactions": [], "connections": [], "recordings": [],
    }
    positions = []
    flat = []
    for log_index, entry in enumerate(payload.get("$task_log") or []):
        for tx_index, tx in enumerate(entry.get("transactions") or []):
            positions.append((log_index, tx_index))
            flat.append(tx)
    for tx, tx_id, (log_index, tx_index) in zip(
        flat, transaction_ids(cid, flat), positions, strict=True
    ):
        if not keep_transaction(tx, filter_mode, task_prefixes):
            continue
        out["transactions"].append(_row(
            tx, TRANSACTION_COLUMNS, TRANSACTION_TYPES,
            {"id": tx_id, "contact_id": cid, "task_log_index": log_index,
             "transaction_index": tx_index},
            {"connections", "id"},
        ))
        _connection_rows(tx.get("connections") or [], cid, tx_id, None, out)
    return out


def _connection_rows(
    connections: list[dict[str, Any]], cid: str, tx_id: str, outer_id: str | None,
    out: dict[str, list[dict[str, Any]]],
) -> None:
    previous: str | None = None
    for conn in connections:
        parent: str | None
        if outer_id is not None:
            parent = outer_id
        elif conn.get("technology") == "transfer":
            parent = previous
        else:
            parent = None
        row = _row(
            conn, CONNECTION_COLUMNS, CONNECTION_TYPES,
            {"parent_connection_id": parent, "transaction_id": tx_id, "contact_id": cid},
            {"recordings", "third_party_connections"},
        )
        if row["isThirdPartyConnection"] is None and "isThirdPartyConnection" not in (
            row["$extra"] or {}
        ):
            row["isThirdPartyConnection"] = False
        out["connections"].append(row)
        conn_id = conn.get("id")
        for rec in conn.get("recordings") or []:
            location = rec.get("location")
            anchor = location if location not in (None, "") else rec.get("started")
            rec_id = md5_hex(f"{conn_id}{'' if anchor is None else anchor}")
            out["recordings"].append(_row(
                rec, RECORDING_COLUMNS, RECORDING_TYPES,
                {"id": rec_id, "contact_id": cid, "connection_id": conn_id}, set(),
            ))
        _connection_rows(conn.get("third_party_connections") or [], cid, tx_id, conn_id, out)
        previous = conn_id


def inbound_row(call: dict[str, Any]) -> dict[str, Any]:
    renamed = {INBOUND_RENAMES.get(k, k): v for k, v in call.items()}
    return _row(renamed, INBOUND_COLUMNS, INBOUND_TYPES, {}, set())


def expected_rows(
    world: World,
    *,
    filter_mode: str = "all",
    task_prefixes: tuple[str, ...] = (),
    since: datetime | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """For the world's current state, the rows per stream a correct sync holds, sorted by key."""
    if filter_mode not in FILTER_MODES:
        raise ValueError(f"filter_mode must be one of {', '.join(FILTER_MODES)}")
    prefixes = tuple(task_prefixes)
    since_ms = to_ms(since) if since is not None else None
    result: dict[str, list[dict[str, Any]]] = {
        "contacts": [], "transactions": [], "connections": [], "recordings": [],
        "inbound_calls": [],
    }
    fields = world.fields
    for idx in world.all_contact_indexes():
        if since_ms is not None and world.contact_changed_ms(idx) // DAY_MS < since_ms // DAY_MS:
            continue
        payload = world.contact(idx)
        payload = {"$id": payload["$id"], "$md5": world.contact_md5(idx), **payload}
        for stream, rows in contact_rows(payload, fields, filter_mode, prefixes).items():
            result[stream].extend(rows)
    for j in range(world.inbound_count()):
        call = world.inbound_call(j)
        if since_ms is not None and parse_timestamp_ms(call["call_time"]) < since_ms:
            continue
        result["inbound_calls"].append(inbound_row(call))
    result["contacts"].sort(key=lambda r: r["$id"])
    for stream in ("transactions", "connections", "recordings", "inbound_calls"):
        result[stream].sort(key=lambda r: r["id"])
    return result
