"""SQL statements per dialect, built without a database so each can be compiled and read in tests.

Every builder takes SQLAlchemy objects and returns a statement; none opens a connection. Columns
of a write table carry the keys `c0`, `c1`, … so that names such as `$id` or
`Geburtstag vom GF/Inhaber` never have to be bind-parameter names; rows are passed as
`{"c0": …, "c1": …}` (see `write_table`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.mssql import pymssql as mssql_pymssql
from sqlalchemy.dialects.mysql import pymysql as mysql_pymysql
from sqlalchemy.engine import Dialect

from target_dialfire_sql.sqltypes import ColumnSpec, sql_type

#: The drivers' dialects (their paramstyles), loadable without the driver being installed.
DIALECTS: dict[str, Callable[..., Dialect]] = {
    "mysql": mysql_pymysql.dialect,
    "mariadb": mysql_pymysql.dialect,
    "mssql": mssql_pymssql.dialect,
    "sqlite": sqlite.dialect,
}

#: What the builders return: both execute with a list of rows and compile without a server.
Statement = sa.TextClause | sa.Insert

#: The paramstyle each driver uses (PyMySQL, pymssql, sqlite3), as it would at run time.
PARAMSTYLES = {"mysql": "pyformat", "mariadb": "pyformat", "mssql": "pyformat", "sqlite": "qmark"}


def dialect_for(dialect: str | Dialect) -> Dialect:
    """A dialect object: the engine's own at run time, a fresh one when compiling in tests."""
    if isinstance(dialect, str):
        return DIALECTS[dialect](paramstyle=PARAMSTYLES[dialect])
    return dialect


def _preparer(dialect: str | Dialect) -> Any:
    """An identifier preparer that does not double `%` (that is left to execution time).

    A dialect with the `format`/`pyformat` paramstyle (PyMySQL, pymssql) doubles `%` in quoted
    names; text statements are escaped again when executed, so quoting must not do it as well.
    """
    return DIALECTS[dialect_name(dialect)](paramstyle="named").identifier_preparer


def driver_sql(sql: str, dialect: Dialect) -> str:
    """SQL text as the driver must receive it when sent without SQLAlchemy's compiler.

    PyMySQL applies `%` formatting to every statement, so a `%` in a name must arrive doubled;
    pymssql (also `pyformat`) never undoes a doubling, so there it must stay single. SQLAlchemy
    records which is which per driver in `_double_percents`.
    """
    doubles = bool(getattr(dialect.identifier_preparer, "_double_percents", False))
    return sql.replace("%", "%%") if doubles else sql


def dialect_name(dialect: str | Dialect) -> str:
    """`mysql` (also for MariaDB), `mssql` or `sqlite`."""
    return dialect if isinstance(dialect, str) else dialect.name


def _write_type(spec: ColumnSpec) -> sa.types.TypeEngine[Any]:
    """The bind type used when writing: JSON arrives already serialised, so it is plain text."""
    if spec.kind in {"json", "text", "key"}:
        return sa.UnicodeText()
    return spec.sql_type


def create_table(
    name: str, schema: str | None, specs: Sequence[ColumnSpec], keys: Sequence[str], dialect: str
) -> sa.Table:
    """The table to create: verbatim names, dialect types, a primary key on the key columns."""
    columns = [
        sa.Column(spec.name, spec.sql_type, nullable=spec.name not in keys) for spec in specs
    ]
    constraints = [sa.PrimaryKeyConstraint(*keys)] if keys else []
    options: dict[str, Any] = {}
    if dialect in {"mysql", "mariadb"}:
        options = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}
    return sa.Table(name, sa.MetaData(), *columns, *constraints, schema=schema, **options)


def write_table(name: str, schema: str | None, specs: Sequence[ColumnSpec]) -> sa.Table:
    """The table as seen by INSERT/MERGE: column `i` has the bind key `c{i}`."""
    columns = [
        sa.Column(spec.name, _write_type(spec), key=f"c{index}")
        for index, spec in enumerate(specs)
    ]
    return sa.Table(name, sa.MetaData(), *columns, schema=schema)


def insert_statement(table: sa.Table) -> Statement:
    """Append: a plain INSERT (streams without key properties)."""
    return sa.insert(table)


def upsert_statement(table: sa.Table, keys: Sequence[str], dialect: str) -> Statement:
    """Insert new rows and update every non-key column of existing ones."""
    if not keys:
        return insert_statement(table)
    if dialect in {"mysql", "mariadb"}:
        return mysql_upsert(table, keys)
    if dialect == "sqlite":
        return sqlite_upsert(table, keys)
    if dialect == "mssql":
        return mssql_merge(table, keys)
    raise ValueError(f"no upsert for dialect {dialect!r}")


def _key_columns(table: sa.Table, keys: Sequence[str]) -> list[sa.Column[Any]]:
    by_name = {column.name: column for column in table.columns}
    return [by_name[key] for key in keys]


def _text_quoter(dialect: str) -> Any:
    """Quote an identifier for use inside `sa.text`, where a bare `:name` would be a parameter."""
    preparer = _preparer(dialect)

    def quote(name: str) -> str:
        return str(preparer.quote_identifier(name)).replace(":", "\\:")

    return quote


def _text_table(table: sa.Table, dialect: str) -> str:
    quote = _text_quoter(dialect)
    return ".".join(quote(part) for part in (table.schema, table.name) if part)


def _bound(table: sa.Table, text: str) -> Statement:
    params = [sa.bindparam(column.key, type_=column.type) for column in table.columns]
    return sa.text(text).bindparams(*params)


def mysql_upsert(table: sa.Table, keys: Sequence[str]) -> Statement:
    """`INSERT … ON DUPLICATE KEY UPDATE` every non-key column (MySQL, MariaDB).

    Written as text because SQLAlchemy's `on_duplicate_key_update` doubles a `%` in a column
    name twice (`50% Rabatt` would name a column that does not exist). `VALUES(col)` works on
    MariaDB and MySQL 5.7-8.x. PyMySQL sends an executemany of it as one multi-row INSERT.
    """
    quote = _text_quoter("mysql")
    names = [column.name for column in table.columns]
    others = [name for name in names if name not in keys] or list(keys)
    columns = ", ".join(quote(name) for name in names)
    binds = ", ".join(f":{column.key}" for column in table.columns)
    updates = ", ".join(f"{quote(name)} = VALUES({quote(name)})" for name in others)
    return _bound(
        table,
        f"INSERT INTO {_text_table(table, 'mysql')} ({columns}) VALUES ({binds}) "
        f"ON DUPLICATE KEY UPDATE {updates}",
    )


def sqlite_upsert(table: sa.Table, keys: Sequence[str]) -> Statement:
    """`INSERT … ON CONFLICT (key) DO UPDATE SET` every non-key column (SQLite ≥ 3.24)."""
    statement = sqlite.insert(table)
    key_columns = _key_columns(table, keys)
    others = [column for column in table.columns if column.name not in keys]
    if not others:
        return statement.on_conflict_do_nothing(index_elements=key_columns)
    return statement.on_conflict_do_update(
        index_elements=key_columns,
        set_={column: statement.excluded[column.key] for column in others},
    )


def mssql_merge(table: sa.Table, keys: Sequence[str]) -> Statement:
    """`MERGE … WITH (HOLDLOCK)`: SQL Server's upsert, one source row per execution."""
    quote = _text_quoter("mssql")
    names = [column.name for column in table.columns]
    binds = ", ".join(_mssql_source(column) for column in table.columns)
    source_columns = ", ".join(quote(name) for name in names)
    on = " AND ".join(f"t.{quote(key)} = s.{quote(key)}" for key in keys)
    updates = ", ".join(f"t.{quote(n)} = s.{quote(n)}" for n in names if n not in keys)
    inserted = ", ".join(f"s.{quote(name)}" for name in names)
    matched = f"WHEN MATCHED THEN UPDATE SET {updates} " if updates else ""
    return _bound(
        table,
        f"MERGE INTO {_text_table(table, 'mssql')} WITH (HOLDLOCK) AS t "
        f"USING (VALUES ({binds})) AS s ({source_columns}) "
        f"ON {on} "
        f"{matched}"
        f"WHEN NOT MATCHED THEN INSERT ({source_columns}) VALUES ({inserted});",
    )


def _mssql_source(column: sa.Column[Any]) -> str:
    """A MERGE source value; date/time ones cast to their column's type.

    pymssql inlines values, so a null arrives as a bare NULL, and a VALUES column that is NULL
    is typed int by SQL Server; int does not convert to DATETIME2, DATE or TIME (Msg 206,
    "Operand type clash"). Strings, numbers and bits convert implicitly and stay as they are.
    """
    if isinstance(column.type, sa.DateTime):  # DATETIME2(3), as created
        return f"CAST(:{column.key} AS {column.type.compile(dialect=dialect_for('mssql'))})"
    if isinstance(column.type, sa.Date | sa.Time):  # named: a server-less dialect says DATETIME
        return f"CAST(:{column.key} AS {'DATE' if isinstance(column.type, sa.Date) else 'TIME'})"
    return f":{column.key}"


def add_column_ddl(table: sa.Table, spec: ColumnSpec, dialect: str | Dialect) -> str:
    """`ALTER TABLE … ADD [COLUMN] name type`: new columns are nullable, so old rows stay valid."""
    compiler = dialect_for(dialect)
    preparer = _preparer(dialect)
    type_sql = spec.sql_type.compile(dialect=compiler)
    keyword = "ADD" if dialect_name(dialect) == "mssql" else "ADD COLUMN"
    return (
        f"ALTER TABLE {preparer.format_table(table)} {keyword} "
        f"{preparer.quote_identifier(spec.name)} {type_sql} NULL"
    )


def widen_column_ddl(
    table: sa.Table, column: str, new_type: sa.types.TypeEngine[Any], dialect: str | Dialect
) -> str | None:
    """DDL that widens a column in place, or None where none is needed (SQLite ignores lengths)."""
    compiler = dialect_for(dialect)
    preparer = _preparer(dialect)
    type_sql = new_type.compile(dialect=compiler)
    name = preparer.quote_identifier(column)
    dialect = dialect_name(dialect)
    if dialect in {"mysql", "mariadb"}:
        return f"ALTER TABLE {preparer.format_table(table)} MODIFY COLUMN {name} {type_sql} NULL"
    if dialect == "mssql":
        return f"ALTER TABLE {preparer.format_table(table)} ALTER COLUMN {name} {type_sql} NULL"
    return None


def widened_number_type(dialect: str) -> sa.types.TypeEngine[Any]:
    """What a too-narrow DECIMAL column becomes (the loader's standard exact number)."""
    return sql_type("number", dialect)
