"""Read what target-postgres loaded and compare it with the sandbox's expected rows.

The oracle (`Sandbox.expected()`) speaks JSON values in the form of docs/records.md; PostgreSQL
hands back datetimes, Decimals and jsonb dicts. Both sides are brought to one form here: timestamps
as `YYYY-MM-DDTHH:MM:SS.mmmZ` UTC, integral numbers as int and the rest as float, objects as dicts.
`$changed` (extraction time) and target-postgres' `_sdc_*` columns are not part of the comparison.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

STREAMS = ("contacts", "transactions", "connections", "recordings", "inbound_calls")
KEYS = {"contacts": "$id"}  # every other stream is keyed by `id`
DEFAULT_PREFIX = "dfire_"


def key_of(stream: str) -> str:
    return KEYS.get(stream, "id")


def normalise(value: Any) -> Any:
    """One comparable form for a value from either side."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, Decimal | float | int):
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    if isinstance(value, Mapping):
        return {k: normalise_nested(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise_nested(v) for v in value]
    return value


def normalise_nested(value: Any) -> Any:
    """Inside jsonb, values stay as sent; only numbers need one form (1.0 == 1 in JSON)."""
    if isinstance(value, Mapping):
        return {k: normalise_nested(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise_nested(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _comparable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        column: normalise(value)
        for column, value in row.items()
        if column != "$changed" and not column.startswith("_sdc_")
    }


def table_names(engine: sa.Engine, schema: str) -> set[str]:
    return set(sa.inspect(engine).get_table_names(schema=schema))


def loaded_rows(
    engine: sa.Engine, schema: str, prefix: str = DEFAULT_PREFIX
) -> dict[str, list[dict[str, Any]]]:
    """Every row of the five tables, comparable form, sorted by key (missing table: no rows)."""
    present = table_names(engine, schema)
    result: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for stream in STREAMS:
            table = f"{prefix}{stream}"
            if table not in present:
                result[stream] = []
                continue
            rows = conn.execute(sa.text(f'select * from "{schema}"."{table}"')).mappings().all()
            result[stream] = sorted(
                (_comparable(dict(r)) for r in rows), key=lambda r: r[key_of(stream)]
            )
    return result


def comparable_expected(expected: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[dict]]:
    return {
        stream: sorted(
            (_comparable(r) for r in expected.get(stream, [])), key=lambda r: r[key_of(stream)]
        )
        for stream in STREAMS
    }


def differences(
    loaded: Mapping[str, list[dict[str, Any]]], expected: Mapping[str, list[dict[str, Any]]]
) -> list[str]:
    """Human-readable differences, at most a few per stream; empty when the two agree exactly."""
    problems: list[str] = []
    want_all = comparable_expected(expected)
    for stream in STREAMS:
        key = key_of(stream)
        got = loaded.get(stream, [])
        want = want_all[stream]
        got_keys = [r[key] for r in got]
        if len(got_keys) != len(set(got_keys)):
            problems.append(f"{stream}: duplicate keys in the table")
        got_by_key = {r[key]: r for r in got}
        want_by_key = {r[key]: r for r in want}
        missing = sorted(set(want_by_key) - set(got_by_key))
        extra = sorted(set(got_by_key) - set(want_by_key))
        if missing:
            problems.append(f"{stream}: {len(missing)} expected rows missing, e.g. {missing[:3]}")
        if extra:
            problems.append(f"{stream}: {len(extra)} unexpected rows, e.g. {extra[:3]}")
        if got and want:
            got_columns, want_columns = set(got[0]), set(want[0])
            if got_columns != want_columns:
                only_table = sorted(got_columns - want_columns)
                only_expected = sorted(want_columns - got_columns)
                problems.append(
                    f"{stream}: columns differ; only in the table {only_table}; "
                    f"only expected {only_expected}"
                )
        shown = 0
        for k in sorted(set(got_by_key) & set(want_by_key)):
            g, w = got_by_key[k], want_by_key[k]
            diff = {c: (g.get(c), w.get(c)) for c in set(g) | set(w) if g.get(c) != w.get(c)}
            if diff:
                shown += 1
                if shown <= 3:
                    problems.append(f"{stream} {key}={k}: (table, expected) {diff}")
        if shown > 3:
            problems.append(f"{stream}: {shown} rows differ in all")
    return problems


def column_types(engine: sa.Engine, schema: str, table: str) -> dict[str, str]:
    """PostgreSQL's data_type per column of one table."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = :schema and table_name = :table"
            ),
            {"schema": schema, "table": table},
        ).all()
    return {name: data_type for name, data_type in rows}
