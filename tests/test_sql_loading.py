"""What target-dialfire-sql stores, checked in a real SQLite file and a real MariaDB database."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from target_dialfire_sql.errors import LoadError
from target_dialfire_sql.target import TargetDialfireSQL


@dataclass(frozen=True)
class Destination:
    url: str
    engine: sa.Engine
    dialect: str  # "sqlite" or "mysql" (MariaDB)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Destination]:
    if request.param == "sqlite":
        path = tmp_path / "load.db"
        engine = sa.create_engine(f"sqlite:///{path}")
        yield Destination(str(path), engine, "sqlite")
        engine.dispose()
    else:
        database = request.getfixturevalue("mariadb_database")
        yield Destination(database.url, database.engine, "mysql")


@pytest.fixture
def mariadb(mariadb_database: Any) -> Destination:
    return Destination(mariadb_database.url, mariadb_database.engine, "mysql")


def schema(stream: str, properties: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": properties},
        "key_properties": keys,
    }


def record(stream: str, values: dict[str, Any]) -> dict[str, Any]:
    return {"type": "RECORD", "stream": stream, "record": values}


def state(value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "STATE", "value": value}


def load(
    destination: Destination,
    messages: list[dict[str, Any] | str],
    target_class: type[TargetDialfireSQL] = TargetDialfireSQL,
    states: list[dict[str, Any]] | None = None,
    **settings: Any,
) -> list[dict[str, Any]]:
    """Run the target in-process; returns (and adds to `states`) the STATE values it printed."""
    states = [] if states is None else states
    target = target_class(config={"url": destination.url, **settings})
    lines = [m if isinstance(m, str) else json.dumps(m) for m in messages]
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            target.listen(io.StringIO("\n".join(lines) + "\n"))
    finally:
        states.extend(json.loads(line) for line in printed.getvalue().splitlines() if line)
    return states


def rows(destination: Destination, table: str, order_by: str) -> list[dict[str, Any]]:
    reflected = sa.Table(table, sa.MetaData(), autoload_with=destination.engine)
    with destination.engine.connect() as connection:
        result = connection.execute(sa.select(reflected).order_by(reflected.c[order_by]))
        return [dict(row._mapping) for row in result]


def raw(destination: Destination, sql: str) -> list[tuple[Any, ...]]:
    with destination.engine.connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql(sql)]


CONTACT = {
    "$id": {"type": "string"},
    "Tätigkeit": {"type": ["string", "null"]},
    "Umsatz": {"type": ["number", "null"]},
}


def test_second_load_updates_every_non_key_column(destination: Destination) -> None:
    load(destination, [
        schema("contacts", CONTACT, ["$id"]),
        record("contacts", {"$id": "A1", "Tätigkeit": "Vertrieb", "Umsatz": 10.5}),
        record("contacts", {"$id": "B2", "Tätigkeit": "Einkauf", "Umsatz": 3}),
    ])
    load(destination, [
        schema("contacts", CONTACT, ["$id"]),
        record("contacts", {"$id": "A1", "Tätigkeit": "Geschäftsführung", "Umsatz": None}),
    ])
    stored = rows(destination, "contacts", "$id")
    assert [(r["$id"], r["Tätigkeit"]) for r in stored] == [
        ("A1", "Geschäftsführung"),
        ("B2", "Einkauf"),
    ]
    assert stored[0]["Umsatz"] is None  # a value set to null is updated too
    assert decimal.Decimal(stored[1]["Umsatz"]) == 3


def test_duplicates_in_one_batch_keep_the_last_version(destination: Destination) -> None:
    load(destination, [
        schema("contacts", CONTACT, ["$id"]),
        record("contacts", {"$id": "A1", "Tätigkeit": "first"}),
        record("contacts", {"$id": "A1", "Tätigkeit": "second"}),
        record("contacts", {"$id": "A1", "Tätigkeit": "third"}),
    ])
    assert [r["Tätigkeit"] for r in rows(destination, "contacts", "$id")] == ["third"]


def test_stream_without_key_properties_appends(destination: Destination) -> None:
    events = {"what": {"type": "string"}, "n": {"type": "integer"}}
    for _ in range(2):
        load(destination, [
            schema("events", events, []),
            record("events", {"what": "call", "n": 1}),
            record("events", {"what": "call", "n": 1}),
        ])
    assert len(rows(destination, "events", "n")) == 4


def test_load_method_append_only_inserts_every_version(destination: Destination) -> None:
    for name in ["first", "second"]:
        load(destination, [
            schema("contacts", CONTACT, ["$id"]),
            record("contacts", {"$id": "A1", "Tätigkeit": name}),
        ], load_method="append-only")
    assert [r["Tätigkeit"] for r in rows(destination, "contacts", "Tätigkeit")] == [
        "first", "second"
    ]


def test_load_method_overwrite_replaces_the_table(destination: Destination) -> None:
    load(destination, [schema("contacts", CONTACT, ["$id"]), record("contacts", {"$id": "A1"})])
    load(destination, [schema("contacts", CONTACT, ["$id"]), record("contacts", {"$id": "B2"})],
         load_method="overwrite")
    assert [r["$id"] for r in rows(destination, "contacts", "$id")] == ["B2"]


def test_names_are_kept_verbatim_and_quoted(destination: Destination) -> None:
    odd = {
        "$id": {"type": "string"},
        "Geburtstag vom GF/Inhaber": {"type": ["string", "null"]},
        "Straße & Nr.": {"type": ["string", "null"]},
        "50% Rabatt": {"type": ["string", "null"]},
        "Zeit:Start": {"type": ["string", "null"]},
        "it's \"quoted\"": {"type": ["string", "null"]},
        "user": {"type": ["string", "null"]},
        "trigger": {"type": ["string", "null"]},
        "Name": {"type": ["string", "null"]},
    }
    values = {name: f"v-{index}" for index, name in enumerate(odd)}
    values["$id"] = "K1"
    for _ in range(2):  # the second load exercises the UPDATE part with the same names
        load(destination, [schema("contacts", odd, ["$id"]), record("contacts", values)],
             table_prefix="dfire_")
    stored = rows(destination, "dfire_contacts", "$id")
    assert stored == [values]
    assert list(stored[0]) == list(odd)  # column order follows the schema


def test_schema_growth_adds_a_column_and_keeps_old_rows(destination: Destination) -> None:
    grown = {**CONTACT, "Neues Feld": {"type": ["string", "null"]}}
    load(destination, [
        schema("contacts", CONTACT, ["$id"]),
        record("contacts", {"$id": "A1", "Tätigkeit": "x"}),
    ])
    load(destination, [
        schema("contacts", CONTACT, ["$id"]),
        record("contacts", {"$id": "B2", "Tätigkeit": "y"}),
        schema("contacts", grown, ["$id"]),  # grows mid-run, as when a field is added
        record("contacts", {"$id": "C3", "Tätigkeit": "z", "Neues Feld": "neu"}),
    ])
    stored = rows(destination, "contacts", "$id")
    assert [(r["$id"], r["Tätigkeit"], r["Neues Feld"]) for r in stored] == [
        ("A1", "x", None),
        ("B2", "y", None),
        ("C3", "z", "neu"),
    ]


def test_a_schema_change_mid_run_keeps_the_order_of_versions(destination: Destination) -> None:
    """Rows buffered under the old schema are written before rows under the new one."""
    grown = {**CONTACT, "Neues Feld": {"type": ["string", "null"]}}
    load(destination, [
        schema("contacts", CONTACT, ["$id"]),
        record("contacts", {"$id": "A1", "Tätigkeit": "old version"}),
        schema("contacts", grown, ["$id"]),
        record("contacts", {"$id": "A1", "Tätigkeit": "new version", "Neues Feld": "x"}),
        record("contacts", {"$id": "B2", "Tätigkeit": "other"}),
    ], batch_size_rows=2)
    stored = rows(destination, "contacts", "$id")
    assert [(r["$id"], r["Tätigkeit"], r["Neues Feld"]) for r in stored] == [
        ("A1", "new version", "x"),
        ("B2", "other", None),
    ]


def test_fractional_numbers_are_stored_exactly(destination: Destination) -> None:
    numbers = ["0.1", "1.25", "-3.5", "7", "1234567.123456", "0.0000000001"]
    if destination.dialect == "mysql":  # DECIMAL(38,18); SQLite keeps 15 significant digits
        numbers += ["12345678901234567890.123456789012345678", "0.14285714285714285",
                    "0.30000000000000004"]
    lines: list[dict[str, Any] | str] = [schema("contacts", CONTACT, ["$id"])]
    lines += [
        f'{{"type":"RECORD","stream":"contacts","record":{{"$id":"N{i:02}","Umsatz":{n}}}}}'
        for i, n in enumerate(numbers)
    ]
    load(destination, lines)
    stored = raw(destination, "SELECT Umsatz FROM contacts ORDER BY 1")
    assert sorted(decimal.Decimal(str(value)) for (value,) in stored) == sorted(
        decimal.Decimal(n) for n in numbers
    )


def test_timestamps_booleans_and_json_keep_their_types(destination: Destination) -> None:
    typed = {
        "id": {"type": "string"},
        "fired": {"type": ["string", "null"], "format": "date-time"},
        "isHI": {"type": ["boolean", "null"]},
        "sequence_nr": {"type": ["integer", "null"]},
        "data": {"type": ["object", "null"]},
        "tags": {"type": ["array", "null"]},
    }
    payload = {"Ergebnis": "positiv", "Betrag": 1.5, "nested": {"ä": [1, None]}}
    load(destination, [
        schema("transactions", typed, ["id"]),
        record("transactions", {"id": "t1", "fired": "2024-03-01T10:15:30.123Z", "isHI": True,
                                "sequence_nr": 9007199254740993, "data": payload,
                                "tags": ["a", "b"]}),
        record("transactions", {"id": "t2", "fired": "2024-03-01T12:00:00.5+02:00",
                                "isHI": False, "sequence_nr": None, "data": None, "tags": None}),
    ])
    stored = rows(destination, "transactions", "id")
    assert stored[0]["fired"] == dt.datetime(2024, 3, 1, 10, 15, 30, 123000)
    assert stored[1]["fired"] == dt.datetime(2024, 3, 1, 10, 0, 0, 500000)  # offset → UTC
    assert [bool(r["isHI"]) for r in stored] == [True, False]
    assert stored[0]["sequence_nr"] == 9007199254740993  # BIGINT, beyond a double's precision
    assert json.loads(stored[0]["data"]) == payload
    assert json.loads(stored[0]["tags"]) == ["a", "b"]
    assert stored[1]["data"] is None
    if destination.dialect == "mysql":
        types = dict(raw(destination, (
            "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'transactions'")))
        assert types == {"id": "varchar(255)", "fired": "datetime(3)", "isHI": "tinyint(1)",
                         "sequence_nr": "bigint(20)", "data": "longtext", "tags": "longtext"}
        checks = raw(destination, "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                                  "WHERE CONSTRAINT_SCHEMA = DATABASE()")
        assert sorted(c for (c,) in checks) == ["json_valid(`data`)", "json_valid(`tags`)"]
    else:
        declared = {r[1]: r[2] for r in raw(destination, "PRAGMA table_info(transactions)")}
        assert declared == {"id": "VARCHAR(255)", "fired": "DATETIME", "isHI": "BOOLEAN",
                            "sequence_nr": "BIGINT", "data": "TEXT", "tags": "TEXT"}


def test_a_key_longer_than_its_column_is_a_clear_error(destination: Destination) -> None:
    with pytest.raises(LoadError) as error:
        load(destination, [
            schema("contacts", CONTACT, ["$id"]),
            record("contacts", {"$id": "ok", "Tätigkeit": "kept out: same batch"}),
            record("contacts", {"$id": "X" * 300}),
        ])
    message = str(error.value)
    assert "table contacts" in message.replace("`", "").replace('"', "")
    assert "column '$id'" in message and "300 characters" in message
    assert rows(destination, "contacts", "$id") == []  # the whole batch was refused


def test_a_number_beyond_decimal_38_18_is_a_clear_error(destination: Destination) -> None:
    with pytest.raises(LoadError) as error:
        load(destination, [
            schema("contacts", CONTACT, ["$id"]),
            '{"type":"RECORD","stream":"contacts","record":{"$id":"N1","Umsatz":1.0000000000000000001}}',
        ])
    assert "column 'Umsatz'" in str(error.value)
    assert "$id='N1'" in str(error.value)
    assert "DECIMAL(38,18)" in str(error.value)


def test_state_is_emitted_only_after_its_rows_are_committed(destination: Destination) -> None:
    """Draining after every record: STATE 1 follows its committed rows; STATE 2 never comes."""

    class DrainAlways(TargetDialfireSQL):
        _MAX_RECORD_AGE_IN_MINUTES = -1.0

    states: list[dict[str, Any]] = []
    with pytest.raises(LoadError):
        load(destination, [
            schema("contacts", CONTACT, ["$id"]),
            record("contacts", {"$id": "A1"}),
            state({"bookmark": 1}),
            record("contacts", {"$id": "B2"}),
            record("contacts", {"$id": "C" * 256}),
            state({"bookmark": 2}),
        ], target_class=DrainAlways, states=states)
    assert states == [{"bookmark": 1}]
    assert [r["$id"] for r in rows(destination, "contacts", "$id")] == ["A1", "B2"]


def test_old_tool_columns_too_narrow_are_widened(mariadb: Destination) -> None:
    """The old tool made numbers decimal(10,0); text may be a short VARCHAR. Both widen."""
    with mariadb.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE contacts (`$id` VARCHAR(64) NOT NULL PRIMARY KEY, "
            "`Tätigkeit` VARCHAR(10), `Umsatz` DECIMAL(10,0), `$changed` DATETIME)"
        )
        connection.exec_driver_sql(
            "INSERT INTO contacts VALUES ('OLD', 'alt', 12, '2020-01-01 00:00:00')"
        )
    long_text = "Geschäftsführung und Vertrieb, Region Süd"
    load(mariadb, [
        schema("contacts", CONTACT, ["$id"]),
        '{"type":"RECORD","stream":"contacts","record":'
        f'{{"$id":"NEW","Tätigkeit":"{long_text}","Umsatz":1234.5678}}}}',
    ])
    stored = {r["$id"]: r for r in rows(mariadb, "contacts", "$id")}
    assert stored["NEW"]["Tätigkeit"] == long_text
    assert stored["NEW"]["Umsatz"] == decimal.Decimal("1234.5678")
    assert stored["OLD"]["Umsatz"] == 12 and stored["OLD"]["Tätigkeit"] == "alt"
    types = dict(raw(mariadb, "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
                              "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'contacts'"))
    assert types["Tätigkeit"] == "longtext"
    assert types["Umsatz"] == "decimal(38,18)"


def test_a_key_longer_than_an_existing_key_column_is_refused_not_cut(
    mariadb: Destination,
) -> None:
    with mariadb.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE contacts (`$id` VARCHAR(16) NOT NULL PRIMARY KEY, `Tätigkeit` TEXT)"
        )
    with pytest.raises(LoadError) as error:
        load(mariadb, [schema("contacts", CONTACT, ["$id"]),
                       record("contacts", {"$id": "K" * 20, "Tätigkeit": "x"})])
    assert "column '$id'" in str(error.value)
    assert "a key of 20 characters does not fit the key column's 16" in str(error.value)
    assert rows(mariadb, "contacts", "$id") == []


def test_a_value_the_database_refuses_names_table_key_and_reason(mariadb: Destination) -> None:
    """Strict mode: an out-of-range value is refused, never clipped, and the row is named."""
    with mariadb.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE transactions (id VARCHAR(32) NOT NULL PRIMARY KEY, sequence_nr TINYINT)"
        )
    props = {"id": {"type": "string"}, "sequence_nr": {"type": ["integer", "null"]}}
    with pytest.raises(LoadError) as error:
        load(mariadb, [
            schema("transactions", props, ["id"]),
            record("transactions", {"id": "fits", "sequence_nr": 5}),
            record("transactions", {"id": "too-big", "sequence_nr": 1000}),
        ])
    message = str(error.value)
    assert "id='too-big'" in message
    assert "Out of range value for column 'sequence_nr'" in message
    assert rows(mariadb, "transactions", "id") == []


def test_names_with_backticks_brackets_and_quotes_survive_later_runs(
    destination: Destination,
) -> None:
    """A second run reads the table's columns back; MySQL reports a backtick doubled, and the
    loader must not take that for a new column (`Duplicate column name`)."""
    odd = {"$id": {"type": "string"}, "a`b": {"type": ["string", "null"]},
           "x]y": {"type": ["string", "null"]}, 'q"u': {"type": ["string", "null"]}}
    grown = {**odd, "neu`feld": {"type": ["number", "null"]}}
    load(destination, [schema("contacts", odd, ["$id"]),
                       record("contacts", {"$id": "K1", "a`b": "1", "x]y": "2", 'q"u': "3"})])
    load(destination, [schema("contacts", odd, ["$id"]),
                       record("contacts", {"$id": "K1", "a`b": "4", "x]y": "5", 'q"u': "6"}),
                       schema("contacts", grown, ["$id"]),
                       record("contacts", {"$id": "K2", "neu`feld": 7})])
    load(destination, [schema("contacts", grown, ["$id"]),
                       record("contacts", {"$id": "K2", "a`b": "8", "neu`feld": 9})])
    with destination.engine.connect() as connection:  # not reflected: SQLAlchemy's MySQL
        result = connection.exec_driver_sql("SELECT * FROM contacts ORDER BY 1")  # doubles `
        stored = [dict(row._mapping) for row in result]
    assert [(r["$id"], r["a`b"], r["x]y"], r['q"u']) for r in stored] == [
        ("K1", "4", "5", "6"), ("K2", "8", None, None)
    ]
    assert [decimal.Decimal(str(r["neu`feld"])) if r["neu`feld"] is not None else None
            for r in stored] == [None, 9]


def test_sqlite_ignores_default_target_schema(tmp_path: Path) -> None:
    """SQLite has no schemas; the setting (e.g. from TARGET_DIALFIRE_SQL_DEFAULT_TARGET_SCHEMA
    meant for MySQL) must not turn every table into `dialfire.contacts` of an unknown database."""
    path = tmp_path / "load.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    sqlite = Destination(str(path), engine, "sqlite")
    for version in ("first", "second"):
        load(sqlite, [schema("contacts", CONTACT, ["$id"]),
                      record("contacts", {"$id": "A1", "Tätigkeit": version})],
             default_target_schema="dialfire", table_prefix="dfire_")
    assert [r["Tätigkeit"] for r in rows(sqlite, "dfire_contacts", "$id")] == ["second"]
    engine.dispose()
