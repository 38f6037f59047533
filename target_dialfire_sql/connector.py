"""The database side of the loader: engine and session settings, tables, columns, writes.

Statements come from `statements.py` (pure, per dialect) and types from `sqltypes.py`; this
module runs them. Tables are only ever created or extended: a column is added when the schema
grows and widened when a value outgrows it, never dropped or narrowed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from singer_sdk.helpers.capabilities import TargetLoadMethods
from singer_sdk.sql import SQLConnector
from singer_sdk.sql.connector import FullyQualifiedName
from sqlalchemy.engine import URL

from target_dialfire_sql import statements
from target_dialfire_sql.errors import LoadError
from target_dialfire_sql.sqltypes import ColumnSpec, column_specs
from target_dialfire_sql.urls import describe, to_sqlalchemy_url

DEFAULT_URL = "output/dialfire.db"

#: MySQL/MariaDB session: strict, so a value that does not fit is an error rather than a silent
#: cut; UTC, so nothing is shifted by the server's zone.
MYSQL_SESSION = (
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'"
)


class DialfireSQLConnector(SQLConnector):
    """Connects to MySQL/MariaDB, SQL Server or SQLite and keeps tables in step with schemas."""

    allow_column_add = True
    allow_column_alter = True
    allow_merge_upsert = True
    allow_temp_tables = False

    def __init__(self, config: dict[str, Any] | None = None, sqlalchemy_url: str | None = None):
        super().__init__(config=config, sqlalchemy_url=sqlalchemy_url)
        self._columns_cache: dict[str, dict[str, sa.types.TypeEngine[Any]]] = {}
        self._lock = threading.RLock()

    # --- engine -----------------------------------------------------------------------------

    @property
    def url(self) -> URL:
        """The SQLAlchemy URL of the destination (contains the password: never log it)."""
        if self._sqlalchemy_url:
            return sa.make_url(self._sqlalchemy_url)
        return to_sqlalchemy_url(str(self.config.get("url") or DEFAULT_URL))

    def get_sqlalchemy_url(self, config: dict[str, Any]) -> str:
        """The URL with the password masked; the engine is built from `url` directly."""
        return describe(to_sqlalchemy_url(str(config.get("url") or DEFAULT_URL)))

    def create_engine(self) -> sa.Engine:
        """An engine whose every MySQL session is strict and UTC."""
        url = self.url
        try:
            engine = sa.create_engine(url, pool_pre_ping=True)
        except ModuleNotFoundError as error:
            raise LoadError(
                f"the database driver {error.name!r} for {describe(url)} is not installed; "
                f"install it (SQL Server: pip install 'tap-dialfire[mssql]')"
            ) from None
        if engine.dialect.name == "mysql":

            @sa.event.listens_for(engine, "connect")
            def _strict_session(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute(MYSQL_SESSION)
                cursor.close()

        return engine

    @property
    def dialect_name(self) -> str:
        """`mysql` (MySQL and MariaDB), `mssql` or `sqlite`."""
        return str(self._engine.dialect.name)

    def check_connection(self) -> None:
        """Fail early, with one clear line, when the destination cannot be reached."""
        try:
            with self._engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.DBAPIError as error:
            raise LoadError(
                f"cannot connect to {describe(self.url)}: {first_line(error.orig)}; "
                "check the `url` setting and that the database is running"
            ) from None

    # --- tables and columns -----------------------------------------------------------------

    def specs_for(self, schema: dict[str, Any], keys: Sequence[str]) -> list[ColumnSpec]:
        """The columns a stream's schema asks for, typed for this database."""
        return column_specs(schema, list(keys), self.dialect_name)

    def table_object(self, full_table_name: FullyQualifiedName) -> sa.Table:
        """A bare Table naming the destination (for quoting in DDL)."""
        return sa.Table(full_table_name.table, sa.MetaData(), schema=full_table_name.schema)

    def existing_columns(
        self, full_table_name: FullyQualifiedName
    ) -> dict[str, sa.types.TypeEngine[Any]]:
        """Column name → reflected type; cached until this loader changes the table."""
        cache_key = str(full_table_name)
        with self._lock:
            if cache_key not in self._columns_cache:
                inspector = sa.inspect(self._engine)
                columns = inspector.get_columns(full_table_name.table, full_table_name.schema)
                # SQLAlchemy's MySQL reflection reports a backtick in a name doubled (a``b).
                unquote = self.dialect_name == "mysql"
                self._columns_cache[cache_key] = {
                    (c["name"].replace("``", "`") if unquote else c["name"]): c["type"]
                    for c in columns
                }
            return self._columns_cache[cache_key]

    def forget_columns(self, full_table_name: FullyQualifiedName) -> None:
        with self._lock:
            self._columns_cache.pop(str(full_table_name), None)

    def prepare_table(  # type: ignore[override]
        self,
        full_table_name: FullyQualifiedName,
        schema: dict[str, Any],
        primary_keys: Sequence[str],
        partition_keys: list[str] | None = None,
        as_temp_table: bool = False,
    ) -> None:
        """Create the table, or add the columns the schema gained since it was created."""
        _ = partition_keys, as_temp_table
        specs = self.specs_for(schema, primary_keys)
        table_key = str(full_table_name)
        with self._lock:
            overwrite = (
                self.config.get("load_method") == TargetLoadMethods.OVERWRITE
                and not self._tables_prepared.get(table_key)
            )
            exists = self.table_exists(full_table_name)
            if overwrite and exists:
                self.logger.info("load_method overwrite: dropping %s", full_table_name)
                self.table_object(full_table_name).drop(self._engine)
                exists = False
            if not exists:
                self._create_table(full_table_name, specs, primary_keys)
            else:
                self._add_missing_columns(full_table_name, specs)
            self._tables_prepared[table_key] = True

    def _create_table(
        self, full_table_name: FullyQualifiedName, specs: list[ColumnSpec], keys: Sequence[str]
    ) -> None:
        missing = [key for key in keys if key not in {spec.name for spec in specs}]
        if missing:
            raise LoadError(
                f"table {full_table_name}: key properties {missing} are not in the stream's "
                "schema; the tap's SCHEMA message is inconsistent"
            )
        table = statements.create_table(
            full_table_name.table, full_table_name.schema, specs, keys, self.dialect_name
        )
        self.logger.info("Creating table %s", full_table_name)
        table.create(self._engine)
        self.forget_columns(full_table_name)

    def _add_missing_columns(
        self, full_table_name: FullyQualifiedName, specs: list[ColumnSpec]
    ) -> None:
        existing = self.existing_columns(full_table_name)
        # MySQL and SQL Server compare column names without case; SQLite too.
        known = {name.casefold() for name in existing}
        table = self.table_object(full_table_name)
        for spec in specs:
            if spec.name.casefold() in known:
                continue
            self.logger.info("Adding column %s to %s", spec.name, full_table_name)
            self._execute_ddl(statements.add_column_ddl(table, spec, self._engine.dialect))
            known.add(spec.name.casefold())
        self.forget_columns(full_table_name)

    def widen_column(
        self,
        full_table_name: FullyQualifiedName,
        column: str,
        new_type: sa.types.TypeEngine[Any],
    ) -> None:
        """Widen a column in place (a longer VARCHAR, a wider DECIMAL); no data is touched."""
        ddl = statements.widen_column_ddl(
            self.table_object(full_table_name), column, new_type, self._engine.dialect
        )
        if ddl is None:
            return
        self.logger.info(
            "Widening column %s of %s to %s",
            column,
            full_table_name,
            new_type.compile(dialect=self._engine.dialect),
        )
        self._execute_ddl(ddl)
        self.forget_columns(full_table_name)

    def _execute_ddl(self, ddl: str) -> None:
        with self._engine.begin() as connection:
            connection.exec_driver_sql(statements.driver_sql(ddl, self._engine.dialect))

    # --- writes -----------------------------------------------------------------------------

    def write_rows(self, statement: Any, rows: list[dict[str, Any]]) -> None:
        """Execute one statement for all rows in one transaction: all of them or none."""
        if not rows:
            return
        with self._engine.begin() as connection:
            if self.dialect_name == "mssql":  # MERGE takes one source row per execution
                for row in rows:
                    connection.execute(statement, row)
            else:
                connection.execute(statement, rows)

    def find_failing_row(self, statement: Any, rows: list[dict[str, Any]]) -> int | None:
        """Index of the first row the database refuses, found in a transaction rolled back."""
        with self._engine.connect() as connection:
            transaction = connection.begin()
            try:
                for index, row in enumerate(rows):
                    try:
                        with connection.begin_nested():
                            connection.execute(statement, row)
                    except sa.exc.DBAPIError:
                        return index
            finally:
                transaction.rollback()
        return None


def first_line(error: BaseException | None) -> str:
    """The first line of a driver error, which names the problem without SQL or values."""
    if error is None:
        return "unknown error"
    text = str(error).strip().splitlines()
    return text[0] if text else error.__class__.__name__
