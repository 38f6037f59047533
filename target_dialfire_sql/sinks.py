"""One sink per stream: batches records, checks every value fits, then upserts in one transaction.

The SDK only writes a STATE message after every sink has drained (`Target.drain_all`), so a batch
that fails here raises, the target exits non-zero and no STATE past the failed rows is emitted.
"""

from __future__ import annotations

import decimal
from typing import Any

import sqlalchemy as sa
from singer_sdk.helpers.capabilities import TargetLoadMethods
from singer_sdk.sql import SQLSink

from target_dialfire_sql import statements
from target_dialfire_sql.connector import DialfireSQLConnector, first_line
from target_dialfire_sql.errors import LoadError
from target_dialfire_sql.sqltypes import (
    KEY_LENGTH,
    NUMBER_PRECISION,
    NUMBER_SCALE,
    ColumnSpec,
    unbounded_text,
)
from target_dialfire_sql.values import describe_key, number_fits, to_db_value

#: What to do when a failed load is retried.
RERUN_HINT = "nothing after the last STATE was committed; fix this and run the pipeline again"


class DialfireSQLSink(SQLSink[DialfireSQLConnector]):
    """Loads one stream into one table, keeping the stream's names verbatim."""

    connector_class = DialfireSQLConnector

    def conform_name(self, name: str, object_type: str | None = None) -> str:
        """Keep names exactly as the tap sent them (`$id`, `Tätigkeit`, `a/b c`).

        The SDK default snake-cases and strips `$`; the old tool's tables and the reports
        written against them use the API's names verbatim.
        """
        _ = object_type
        return name

    @property
    def table_name(self) -> str:
        """The stream name (its last `-` part), after the `table_prefix` setting."""
        parts = self.stream_name.split("-")
        table = self.stream_name if len(parts) == 1 else parts[-1]
        return f"{self.config.get('table_prefix') or ''}{table}"

    @property
    def schema_name(self) -> str | None:
        """None on SQLite, which has no schemas: `default_target_schema` is ignored there."""
        if self.connector.dialect_name == "sqlite":
            return None
        return super().schema_name

    def setup(self) -> None:
        """Create the table, or add the columns a grown schema asks for."""
        if self.schema_name and self.connector.dialect_name != "sqlite":
            self.connector.prepare_schema(self.schema_name)
        self.connector.prepare_table(
            full_table_name=self.full_table_name,
            schema=self.schema,
            primary_keys=self.upsert_keys,
        )

    @property
    def upsert_keys(self) -> list[str]:
        """The keys rows are upserted on; none (plain INSERT) with `load_method: append-only`."""
        if self.config.get("load_method") == TargetLoadMethods.APPEND_ONLY:
            return []
        return list(self.key_properties)

    @property
    def specs(self) -> list[ColumnSpec]:
        return self.connector.specs_for(self.schema, self.key_properties)

    def activate_version(self, new_version: int) -> None:
        """Not supported: the loader never deletes rows (see docs/sql-loader.md)."""
        self.logger.warning(
            "Ignoring ACTIVATE_VERSION %s for %s: target-dialfire-sql never deletes rows",
            new_version,
            self.stream_name,
        )

    # --- batches ----------------------------------------------------------------------------

    def process_batch(self, context: dict[str, Any]) -> None:
        """De-duplicate by key (last wins), check and widen, then write in one transaction."""
        records: list[dict[str, Any]] = context["records"]
        keys = list(self.key_properties)  # named in errors
        upsert_keys = self.upsert_keys
        records = self._last_per_key(records, upsert_keys)
        specs = self.specs
        rows = [self._row(record, specs, keys) for record in records]
        self._widen_for(records, rows, specs, keys)
        table = statements.write_table(self.table_name, self.schema_name, specs)
        statement = statements.upsert_statement(table, upsert_keys, self.connector.dialect_name)
        try:
            self.connector.write_rows(statement, rows)
        except sa.exc.DBAPIError as error:
            raise self._write_error(error, statement, rows, records, keys) from None
        self.tally_record_written(len(rows))

    def _last_per_key(
        self, records: list[dict[str, Any]], keys: list[str]
    ) -> list[dict[str, Any]]:
        if not keys:
            return records
        latest: dict[tuple[Any, ...], dict[str, Any]] = {}
        for record in records:
            key = tuple(record.get(name) for name in keys)
            if key in latest:
                self.tally_duplicate_merged()
                del latest[key]  # re-insert so the row keeps the position of its last version
            latest[key] = record
        return list(latest.values())

    def _row(
        self, record: dict[str, Any], specs: list[ColumnSpec], keys: list[str]
    ) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for index, spec in enumerate(specs):
            value = record.get(spec.name)
            if spec.name in keys and value is None:
                raise self._error(spec.name, record, keys, "the key is null")
            try:
                row[f"c{index}"] = to_db_value(value, spec.kind)
            except ValueError as reason:
                raise self._error(spec.name, record, keys, str(reason)) from None
            if spec.kind == "key" and len(row[f"c{index}"]) > KEY_LENGTH:
                raise self._error(
                    spec.name,
                    record,
                    keys,
                    f"a key of {len(row[f'c{index}'])} characters is longer than the "
                    f"{KEY_LENGTH} a key column holds",
                )
        return row

    def _widen_for(
        self,
        records: list[dict[str, Any]],
        rows: list[dict[str, Any]],
        specs: list[ColumnSpec],
        keys: list[str],
    ) -> None:
        """Widen existing columns the batch's values outgrow; refuse what cannot be widened."""
        dialect = self.connector.dialect_name
        existing = self.connector.existing_columns(self.full_table_name)
        by_fold = {name.casefold(): column_type for name, column_type in existing.items()}
        for index, spec in enumerate(specs):
            column_type = by_fold.get(spec.name.casefold())
            if column_type is None:
                continue
            bind = f"c{index}"
            length = getattr(column_type, "length", None)
            if (
                isinstance(column_type, sa.String)
                and length
                and dialect != "sqlite"
                and spec.kind in {"text", "key", "json"}
            ):
                longest = max(
                    range(len(rows)), key=lambda i: len(rows[i][bind] or ""), default=None
                )
                if longest is not None and len(rows[longest][bind] or "") > length:
                    if spec.name in keys:
                        raise self._error(
                            spec.name,
                            records[longest],
                            keys,
                            f"a key of {len(rows[longest][bind])} characters does not fit "
                            f"the key column's {length}",
                        )
                    self.connector.widen_column(
                        self.full_table_name, spec.name, unbounded_text(dialect)
                    )
            if isinstance(column_type, sa.Numeric) and not isinstance(column_type, sa.Float):
                self._check_numbers(column_type, spec, bind, records, rows, keys)

    def _check_numbers(
        self,
        column_type: sa.Numeric[Any],
        spec: ColumnSpec,
        bind: str,
        records: list[dict[str, Any]],
        rows: list[dict[str, Any]],
        keys: list[str],
    ) -> None:
        precision = column_type.precision
        scale = column_type.scale or 0
        if precision is None:
            return
        widened = False
        for record, row in zip(records, rows, strict=True):
            value = row[bind]
            if not isinstance(value, decimal.Decimal | int) or isinstance(value, bool):
                continue
            number = decimal.Decimal(value)
            if number_fits(number, precision, scale):
                continue
            can_widen = (
                not widened
                and precision - scale <= NUMBER_PRECISION - NUMBER_SCALE
                and scale <= NUMBER_SCALE
                and number_fits(number, NUMBER_PRECISION, NUMBER_SCALE)
            )
            if can_widen:
                self.connector.widen_column(
                    self.full_table_name,
                    spec.name,
                    statements.widened_number_type(self.connector.dialect_name),
                )
                widened = True
                precision, scale = NUMBER_PRECISION, NUMBER_SCALE
                continue
            raise self._error(
                spec.name,
                record,
                keys,
                f"the number {number} does not fit DECIMAL({precision},{scale}) exactly",
            )

    def _error(
        self, column: str, record: dict[str, Any], keys: list[str], reason: str
    ) -> LoadError:
        return LoadError(
            f"table {self.full_table_name}, column {column!r}, {describe_key(record, keys)}: "
            f"{reason}; {RERUN_HINT}"
        )

    def _write_error(
        self,
        error: sa.exc.DBAPIError,
        statement: Any,
        rows: list[dict[str, Any]],
        records: list[dict[str, Any]],
        keys: list[str],
    ) -> LoadError:
        """Name the row the database refused (found by replaying the batch, then rolled back)."""
        reason = first_line(error.orig)
        try:
            index = self.connector.find_failing_row(statement, rows)
        except sa.exc.DBAPIError:
            index = None
        where = describe_key(records[index], keys) if index is not None else "a row of the batch"
        return LoadError(
            f"table {self.full_table_name}, {where}: the database refused the write: "
            f"{reason}; {RERUN_HINT}"
        )
