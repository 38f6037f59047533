"""How record values become column values (pure): nothing rounded, cut or silently coerced."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from target_dialfire_sql.sqltypes import json_kind
from target_dialfire_sql.values import describe_key, number_fits, to_db_value


@pytest.mark.parametrize(
    ("number", "precision", "scale", "fits"),
    [
        ("870.855", 38, 18, True),
        ("0.14285714285714285", 38, 18, True),
        ("12345678901234567890", 38, 18, True),
        ("123456789012345678901", 38, 18, False),  # 21 integer digits
        ("1.0000000000000000001", 38, 18, False),  # 19 fractional digits
        ("1.50", 10, 1, True),  # trailing zeros do not count
        ("1.25", 10, 0, False),  # the old tool's decimal(10,0)
        ("1E+3", 4, 0, True),
        ("0", 1, 0, True),
    ],
)
def test_number_fits_decimal_exactly(number: str, precision: int, scale: int, fits: bool) -> None:
    assert number_fits(Decimal(number), precision, scale) is fits


def test_timestamps_become_naive_utc() -> None:
    aware = dt.datetime(2024, 3, 1, 12, 0, 0, 500000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert to_db_value(aware, "datetime") == dt.datetime(2024, 3, 1, 10, 0, 0, 500000)
    assert to_db_value("2024-03-01T10:15:30.123Z", "datetime") == dt.datetime(
        2024, 3, 1, 10, 15, 30, 123000
    )
    with pytest.raises(ValueError, match="not an ISO-8601 date-time"):
        to_db_value("gestern", "datetime")


def test_json_keeps_numbers_and_umlauts_as_received() -> None:
    value = {"Betrag": Decimal("0.1"), "Ort": "Köln", "liste": [1, None, True]}
    assert to_db_value(value, "json") == '{"Betrag": 0.1, "Ort": "Köln", "liste": [1, null, true]}'


def test_text_columns_take_numbers_booleans_and_objects_as_text() -> None:
    assert to_db_value(Decimal("12.50"), "text") == "12.50"
    assert to_db_value(True, "text") == "true"
    assert to_db_value({"a": 1}, "text") == '{"a": 1}'


def test_booleans_integers_and_numbers_refuse_what_they_cannot_hold() -> None:
    assert to_db_value("FALSE", "boolean") is False
    with pytest.raises(ValueError):
        to_db_value("ja", "boolean")
    assert to_db_value(Decimal("7"), "integer") == 7
    with pytest.raises(ValueError, match="not an integer"):
        to_db_value(Decimal("7.5"), "integer")
    with pytest.raises(ValueError, match="BIGINT"):
        to_db_value(2**63, "integer")
    with pytest.raises(ValueError, match="boolean, not a number"):
        to_db_value(True, "number")
    with pytest.raises(ValueError, match="not a finite number"):
        to_db_value("NaN", "number")


def test_json_schema_kinds() -> None:
    assert json_kind({"type": ["string", "null"]}, is_key=True) == "key"
    assert json_kind({"type": ["string", "null"], "format": "date-time"}) == "datetime"
    assert json_kind({"type": ["object", "null"]}) == "json"
    assert json_kind({"anyOf": [{"type": "null"}, {"type": "integer"}]}) == "integer"
    assert json_kind({"type": ["string", "number"]}) == "text"
    assert json_kind({}) == "text"


def test_error_messages_shorten_long_keys() -> None:
    shown = describe_key({"$id": "K" * 300}, ["$id"])
    assert shown.startswith("$id='KKK") and shown.endswith("(300 chars)")
    assert len(shown) < 60
    assert describe_key({"a": 1}, []) == "a row without key properties"
