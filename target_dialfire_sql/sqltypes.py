"""Which SQL type each JSON Schema property becomes, per dialect (pure; no database needed).

The rules (see docs/sql-loader.md):
- string key columns: VARCHAR(255) / NVARCHAR(255), binary collation so ids compare exactly, and
  short enough to be indexed (MySQL cannot key a TEXT column);
- other strings: LONGTEXT (MySQL/MariaDB), NVARCHAR(MAX) (SQL Server), TEXT (SQLite);
- date-time: DATETIME(3) / DATETIME2(3) / SQLite DATETIME (ISO text); date, time alike;
- number: DECIMAL(38,18), exact: 20 integer digits, and every double as JSON prints it (up to
  17 significant digits) from 0.1 up; the old tool's decimal(10,0) lost fractions;
- integer: BIGINT; boolean: BOOLEAN / BIT;
- object, array: JSON (MySQL/MariaDB), NVARCHAR(MAX) (SQL Server), TEXT (SQLite), as JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql

KEY_LENGTH = 255
NUMBER_PRECISION = 38
NUMBER_SCALE = 18
MYSQL_KEY_COLLATION = "utf8mb4_bin"
MSSQL_KEY_COLLATION = "Latin1_General_100_BIN2"

#: What a column holds, which decides how a value is converted before it is written.
KINDS = ("text", "key", "datetime", "date", "time", "number", "integer", "boolean", "json")


@dataclass(frozen=True)
class ColumnSpec:
    """One column the loader wants: its verbatim name, what it holds, and its SQL type."""

    name: str
    kind: str
    sql_type: sa.types.TypeEngine[Any]


def json_kind(schema: dict[str, Any], *, is_key: bool = False) -> str:
    """The kind of a JSON Schema property: one of `KINDS`."""
    types = schema.get("type")
    if types is None and "anyOf" in schema:
        for option in schema["anyOf"]:
            if option.get("type") not in (None, "null"):
                return json_kind(option, is_key=is_key)
        return "text"
    names = [types] if isinstance(types, str) else list(types or [])
    non_null = [name for name in names if name != "null"]
    if len(non_null) != 1:
        return "json" if set(non_null) <= {"object", "array"} and non_null else "text"
    kind = non_null[0]
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return "datetime"
        if fmt in {"date", "time"}:
            return str(fmt)
        return "key" if is_key else "text"
    if kind in {"object", "array"}:
        return "json"
    if kind in {"number", "integer", "boolean"}:
        return kind
    return "text"


def sql_type(kind: str, dialect: str) -> sa.types.TypeEngine[Any]:
    """The SQL type for a column kind in a dialect (`mysql`, `mariadb`, `mssql`, `sqlite`)."""
    is_mysql = dialect in {"mysql", "mariadb"}
    is_mssql = dialect == "mssql"
    if kind == "key":
        if is_mysql:
            return mysql.VARCHAR(KEY_LENGTH, collation=MYSQL_KEY_COLLATION)
        if is_mssql:
            return mssql.NVARCHAR(KEY_LENGTH, collation=MSSQL_KEY_COLLATION)
        return sa.VARCHAR(KEY_LENGTH)
    if kind == "text":
        if is_mysql:
            return mysql.LONGTEXT()
        if is_mssql:
            return mssql.NVARCHAR(None)  # renders NVARCHAR(max); a bare nvarchar is length 1
        return sa.Text()
    if kind == "json":
        if is_mysql:
            return mysql.JSON()
        if is_mssql:
            return mssql.NVARCHAR(None)
        return sa.Text()
    if kind == "datetime":
        if is_mysql:
            return mysql.DATETIME(fsp=3)
        if is_mssql:
            return mssql.DATETIME2(precision=3)
        return sa.DateTime()
    if kind == "date":
        return sa.Date()
    if kind == "time":
        if is_mysql:
            return mysql.TIME(fsp=3)
        return sa.Time()
    if kind == "number":
        return sa.Numeric(NUMBER_PRECISION, NUMBER_SCALE, asdecimal=True)
    if kind == "integer":
        return sa.BigInteger()
    if kind == "boolean":
        if is_mssql:
            return mssql.BIT()
        return sa.Boolean(create_constraint=False)
    raise ValueError(f"unknown column kind {kind!r}")


def unbounded_text(dialect: str) -> sa.types.TypeEngine[Any]:
    """The type a too-short VARCHAR column is widened to."""
    return sql_type("text", dialect)


def column_specs(schema: dict[str, Any], keys: list[str], dialect: str) -> list[ColumnSpec]:
    """The columns of a stream, in schema order, named verbatim."""
    specs = []
    for name, prop in schema.get("properties", {}).items():
        kind = json_kind(prop, is_key=name in keys)
        specs.append(ColumnSpec(name=name, kind=kind, sql_type=sql_type(kind, dialect)))
    return specs
