"""Turning a record's values into what a SQL column of a given kind stores (pure functions).

A value that cannot be stored as is raises `ValueError` with the reason; the sink adds table,
column and key and turns it into a `LoadError`. Nothing is rounded or cut here.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping, Sequence
from typing import Any

import simplejson

BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1


def to_json_text(value: Any) -> str:
    """JSON text of an object or array, numbers exactly as received (Decimal stays Decimal)."""
    return str(simplejson.dumps(value, use_decimal=True, ensure_ascii=False, default=str))


def to_utc_naive(value: dt.datetime) -> dt.datetime:
    """Timestamps are stored as UTC without a zone (DATETIME/DATETIME2 hold no offset)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def to_db_value(value: Any, kind: str) -> Any:
    """The value to bind for a column of `kind` (see `sqltypes.KINDS`)."""
    if value is None:
        return None
    if kind in {"text", "key"}:
        return _to_text(value)
    if kind == "json":
        return to_json_text(value)
    if kind == "datetime":
        return _to_datetime(value)
    if kind == "date":
        if isinstance(value, dt.datetime):
            return value.date()
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    if kind == "time":
        return value if isinstance(value, dt.time) else dt.time.fromisoformat(str(value))
    if kind == "number":
        return _to_decimal(value)
    if kind == "integer":
        return _to_integer(value)
    if kind == "boolean":
        return _to_boolean(value)
    raise ValueError(f"unknown column kind {kind!r}")


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return to_json_text(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def _to_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return to_utc_naive(value)
    if isinstance(value, str):
        try:
            return to_utc_naive(dt.datetime.fromisoformat(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 date-time") from None
    raise ValueError(f"{value!r} is not a date-time")


def _to_decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not a number")
    try:
        number = decimal.Decimal(value if isinstance(value, int | decimal.Decimal) else str(value))
    except decimal.InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _to_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not an integer")
    number = _to_decimal(value)
    if number != number.to_integral_value():
        raise ValueError(f"{value!r} is not an integer")
    result = int(number)
    if not BIGINT_MIN <= result <= BIGINT_MAX:
        raise ValueError(f"{value!r} is outside the BIGINT range")
    return result


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    if isinstance(value, int) and value in {0, 1}:
        return bool(value)
    raise ValueError(f"{value!r} is not a boolean")


def decimal_digits(number: decimal.Decimal) -> tuple[int, int]:
    """(digits before the point, digits after it) of an exact decimal, trailing zeros ignored."""
    if number.is_zero():
        return 0, 0
    _, digits, exponent = number.normalize().as_tuple()
    assert isinstance(exponent, int)
    fraction = max(0, -exponent)
    integer = max(0, len(digits) + exponent)
    return integer, fraction


def number_fits(number: decimal.Decimal, precision: int, scale: int) -> bool:
    """Whether DECIMAL(precision, scale) holds `number` exactly."""
    integer, fraction = decimal_digits(number)
    return fraction <= scale and integer <= precision - scale


def describe_key(record: Mapping[str, Any], keys: Sequence[str]) -> str:
    """`$id=ABC` (or `row` for streams without a key), for error messages."""
    if not keys:
        return "a row without key properties"
    return ", ".join(f"{key}={_short(record.get(key))}" for key in keys)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}…' ({len(str(value))} chars)"
