"""The SQL each dialect gets, compiled without a server.

SQL Server cannot run here, so these compiled statements are how its support is verified; the
MySQL/MariaDB and SQLite statements are also executed for real in test_sql_loading.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from target_dialfire_sql import statements
from target_dialfire_sql.sqltypes import column_specs

SCHEMA: dict[str, Any] = {
    "properties": {
        "$id": {"type": "string"},
        "Tätigkeit": {"type": ["string", "null"]},
        "Umsatz": {"type": ["number", "null"]},
        "$created_date": {"type": ["string", "null"], "format": "date-time"},
        "isHI": {"type": ["boolean", "null"]},
        "data": {"type": ["object", "null"]},
        "sequence_nr": {"type": ["integer", "null"]},
        "Geburtstag vom GF/Inhaber": {"type": ["string", "null"]},
    }
}
KEYS = ["$id"]


def compiled_create(dialect: str) -> str:
    specs = column_specs(SCHEMA, KEYS, dialect)
    table = statements.create_table("dfire_contacts", None, specs, KEYS, dialect)
    return str(sa.schema.CreateTable(table).compile(dialect=statements.dialect_for(dialect)))


def compiled_upsert(dialect: str, keys: list[str] = KEYS) -> str:
    specs = column_specs(SCHEMA, keys, dialect)
    table = statements.write_table("dfire_contacts", None, specs)
    statement = statements.upsert_statement(table, keys, dialect)
    return str(statement.compile(dialect=statements.dialect_for(dialect)))


def test_sqlserver_create_table_types() -> None:
    ddl = compiled_create("mssql")
    assert "[$id] NVARCHAR(255) COLLATE Latin1_General_100_BIN2 NOT NULL" in ddl
    assert "[Tätigkeit] NVARCHAR(max) NULL" in ddl  # never a bare nvarchar (= length 1)
    assert "[Geburtstag vom GF/Inhaber] NVARCHAR(max) NULL" in ddl
    assert "[Umsatz] NUMERIC(38, 18) NULL" in ddl  # exact, with fractions
    assert "[$created_date] DATETIME2(3) NULL" in ddl
    assert "[isHI] BIT NULL" in ddl
    assert "data NVARCHAR(max) NULL" in ddl
    assert "sequence_nr BIGINT NULL" in ddl
    assert "PRIMARY KEY ([$id])" in ddl
    assert "NVARCHAR NULL" not in ddl and "NVARCHAR," not in ddl


def test_sqlserver_upsert_is_a_merge_updating_every_non_key_column() -> None:
    sql = compiled_upsert("mssql")
    assert sql.startswith("MERGE INTO [dfire_contacts] WITH (HOLDLOCK) AS t USING (VALUES (")
    assert "ON t.[$id] = s.[$id] " in sql
    for name in ["Tätigkeit", "Umsatz", "$created_date", "isHI", "data", "sequence_nr",
                 "Geburtstag vom GF/Inhaber"]:
        assert f"t.[{name}] = s.[{name}]" in sql
    assert "t.[$id] = s.[$id]," not in sql  # the key itself is never updated
    assert sql.endswith(
        "WHEN NOT MATCHED THEN INSERT ([$id], [Tätigkeit], [Umsatz], [$created_date], [isHI], "
        "[data], [sequence_nr], [Geburtstag vom GF/Inhaber]) VALUES (s.[$id], s.[Tätigkeit], "
        "s.[Umsatz], s.[$created_date], s.[isHI], s.[data], s.[sequence_nr], "
        "s.[Geburtstag vom GF/Inhaber]);"
    )
    assert sql.count("%(c") == len(SCHEMA["properties"])  # pymssql's pyformat parameters


def test_mysql_create_table_types() -> None:
    ddl = compiled_create("mysql")
    assert "`$id` VARCHAR(255) COLLATE utf8mb4_bin NOT NULL" in ddl  # indexable, exact ids
    assert "`Tätigkeit` LONGTEXT" in ddl
    assert "`Umsatz` NUMERIC(38, 18)" in ddl
    assert "`$created_date` DATETIME(3)" in ddl
    assert "`isHI` BOOL" in ddl
    assert "data JSON" in ddl
    assert "CHARSET=utf8mb4" in ddl


def test_mysql_upsert_updates_every_non_key_column() -> None:
    sql = compiled_upsert("mysql")
    assert sql.startswith("INSERT INTO `dfire_contacts` (`$id`, `Tätigkeit`, ")
    updates = sql.split("ON DUPLICATE KEY UPDATE ", 1)[1]
    assert updates == (
        "`Tätigkeit` = VALUES(`Tätigkeit`), `Umsatz` = VALUES(`Umsatz`), "
        "`$created_date` = VALUES(`$created_date`), `isHI` = VALUES(`isHI`), "
        "`data` = VALUES(`data`), `sequence_nr` = VALUES(`sequence_nr`), "
        "`Geburtstag vom GF/Inhaber` = VALUES(`Geburtstag vom GF/Inhaber`)"
    )


def test_sqlite_upsert_is_on_conflict_do_update() -> None:
    sql = compiled_upsert("sqlite")
    assert 'ON CONFLICT ("$id") DO UPDATE SET "Tätigkeit" = excluded."Tätigkeit"' in sql
    assert '"Geburtstag vom GF/Inhaber" = excluded."Geburtstag vom GF/Inhaber"' in sql


@pytest.mark.parametrize("dialect", ["mysql", "mssql", "sqlite"])
def test_streams_without_keys_append(dialect: str) -> None:
    sql = compiled_upsert(dialect, keys=[])
    assert sql.startswith("INSERT INTO")
    assert "ON DUPLICATE" not in sql and "ON CONFLICT" not in sql and "MERGE" not in sql


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("mssql", "ALTER TABLE [dfire_contacts] ADD [Neues Feld] NVARCHAR(max) NULL"),
        ("mysql", "ALTER TABLE `dfire_contacts` ADD COLUMN `Neues Feld` LONGTEXT NULL"),
        ("sqlite", 'ALTER TABLE "dfire_contacts" ADD COLUMN "Neues Feld" TEXT NULL'),
    ],
)
def test_add_column_ddl(dialect: str, expected: str) -> None:
    spec = column_specs({"properties": {"Neues Feld": {"type": ["string", "null"]}}}, [], dialect)
    table = sa.Table("dfire_contacts", sa.MetaData())
    assert statements.add_column_ddl(table, spec[0], dialect) == expected.replace(
        '"dfire_contacts"', "dfire_contacts"
    ).replace("`dfire_contacts`", "dfire_contacts").replace("[dfire_contacts]", "dfire_contacts")


def test_widen_column_ddl_per_dialect() -> None:
    table = sa.Table("t", sa.MetaData())
    mssql_sql = statements.widen_column_ddl(table, "Notiz", sa.UnicodeText(), "mssql")
    assert mssql_sql is not None and mssql_sql.startswith("ALTER TABLE t ALTER COLUMN [Notiz] ")
    mysql_sql = statements.widen_column_ddl(
        table, "Notiz", statements.widened_number_type("mysql"), "mysql"
    )
    assert mysql_sql == "ALTER TABLE t MODIFY COLUMN `Notiz` NUMERIC(38, 18) NULL"
    assert statements.widen_column_ddl(table, "Notiz", sa.Text(), "sqlite") is None


@pytest.mark.parametrize(
    ("dialect", "quoted"),
    [("mysql", "`50% Rabatt: a]b``c`"), ("mssql", "[50% Rabatt: a]]b`c]")],
)
def test_awkward_names_are_quoted_once_and_not_mistaken_for_parameters(
    dialect: str, quoted: str
) -> None:
    """`%` is not doubled at build time and `:name` is not a bind parameter."""
    schema = {"properties": {"id": {"type": "string"}, "50% Rabatt: a]b`c": {"type": "string"}}}
    specs = column_specs(schema, ["id"], dialect)
    statement = statements.upsert_statement(
        statements.write_table("t", None, specs), ["id"], dialect
    )
    assert isinstance(statement, sa.TextClause)
    text = statement.text
    assert quoted.replace(":", "\\:") in text
    compiled = statement.compile(dialect=statements.DIALECTS[dialect](paramstyle="named"))
    assert set(compiled.params) == {"c0", "c1"}


@pytest.mark.parametrize(
    ("dialect", "sent"),
    [
        # PyMySQL applies `%` formatting to every statement, so `%` must arrive doubled.
        ("mysql", "ALTER TABLE t ADD COLUMN `50%% Rabatt` LONGTEXT NULL"),
        # pymssql never turns `%%` back into `%`: doubled, the column would be named
        # `50%% Rabatt` and every MERGE naming `[50% Rabatt]` would fail on a real server.
        ("mssql", "ALTER TABLE t ADD [50% Rabatt] NVARCHAR(max) NULL"),
        ("sqlite", 'ALTER TABLE t ADD COLUMN "50% Rabatt" TEXT NULL'),
    ],
)
def test_ddl_reaches_each_driver_with_percent_signs_as_that_driver_reads_them(
    dialect: str, sent: str
) -> None:
    spec = column_specs({"properties": {"50% Rabatt": {"type": ["string", "null"]}}}, [], dialect)
    ddl = statements.add_column_ddl(sa.Table("t", sa.MetaData()), spec[0], dialect)
    assert statements.driver_sql(ddl, statements.dialect_for(dialect)) == sent


def test_sqlserver_merge_types_its_date_time_sources() -> None:
    """pymssql inlines values, so a null date-time reaches SQL Server as a bare NULL, which a
    VALUES source types as int; int into DATETIME2 is Msg 206 "Operand type clash". Every
    date/time source is therefore cast to its column's type; the others convert implicitly."""
    schema = {"properties": {**SCHEMA["properties"],
                             "Termin": {"type": ["string", "null"], "format": "date"}}}
    specs = column_specs(schema, KEYS, "mssql")
    sql = str(statements.upsert_statement(
        statements.write_table("dfire_contacts", None, specs), KEYS, "mssql"
    ).compile(dialect=statements.dialect_for("mssql")))
    assert "USING (VALUES (%(c0)s, %(c1)s, %(c2)s, CAST(%(c3)s AS DATETIME2(3)), %(c4)s, " in sql
    assert "CAST(%(c8)s AS DATE))" in sql
    assert sql.count("CAST(") == 2
