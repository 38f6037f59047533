"""target-dialfire-sql: settings and the command line; the work is in sinks.py and connector.py."""

from __future__ import annotations

import sys
import typing as t

import sqlalchemy as sa
from singer_sdk import typing as th
from singer_sdk.exceptions import MappingError, SyncError
from singer_sdk.helpers.capabilities import (
    PluginCapabilities,
    TargetCapabilities,
    TargetLoadMethods,
)
from singer_sdk.sql import SQLTarget

from target_dialfire_sql.connector import DEFAULT_URL, DialfireSQLConnector, first_line
from target_dialfire_sql.errors import LoadError
from target_dialfire_sql.sinks import DialfireSQLSink


class TargetDialfireSQL(SQLTarget):
    """Loads Singer streams into MySQL/MariaDB, SQL Server or SQLite with real upserts."""

    name = "target-dialfire-sql"
    package_name = "tap-dialfire"  # the distribution that ships this console script
    default_sink_class = DialfireSQLSink

    # No ACTIVATE_VERSION and no hard_delete: this loader never deletes rows.
    capabilities: t.ClassVar[list[t.Any]] = [
        c
        for c in SQLTarget.capabilities
        if c not in {PluginCapabilities.ACTIVATE_VERSION, TargetCapabilities.HARD_DELETE}
    ]

    config_jsonschema = th.PropertiesList(
        th.Property(
            "url",
            th.StringType,
            secret=True,
            default=DEFAULT_URL,
            title="Destination",
            description=(
                "Where to load: an SQLite file path (default `output/dialfire.db`), the old "
                "tool's `mysql://user:pass@host:3306/db` or `sqlserver://user:pass@host:1433/"
                "instance/db`, or any SQLAlchemy URL (`mysql+pymysql://…`, `mssql+pymssql://…`, "
                "`sqlite:///…`). Secret because it may carry a password."
            ),
        ),
        th.Property(
            "table_prefix",
            th.StringType,
            default="",
            title="Table prefix",
            description="Prepended to every table name (the old tool's `--tp`, e.g. `dfire_`).",
        ),
        th.Property(
            "load_method",
            th.StringType,
            default=TargetLoadMethods.UPSERT.value,
            allowed_values=[m.value for m in TargetLoadMethods],
            title="Load method",
            description=(
                "`upsert` (default): insert new rows, update every column of existing ones by "
                "the stream's key. `append-only`: plain INSERTs, tables created without a "
                "primary key. `overwrite`: drop and re-create each table when a run first sees "
                "its stream, then upsert."
            ),
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        connector = t.cast(DialfireSQLConnector, self.target_connector)
        # Fail before any data flows when the destination cannot be reached.
        connector.check_connection()
        if connector.dialect_name == "sqlite":
            # One writer at a time: SQLite locks the whole file per write transaction.
            self.max_parallelism = 1

    def _process_schema_message(self, message_dict: dict[str, t.Any]) -> None:
        """Write what the stream's old sink holds before a changed schema replaces it.

        The SDK keeps the old sink until the next full drain, while the new sink may fill and
        drain first: an older version of a row would then overwrite a newer one.
        """
        stream = message_dict.get("stream")
        existing = self._sinks_active.get(stream) if isinstance(stream, str) else None
        if (
            existing is not None
            and existing.current_size
            and (
                existing.original_schema != message_dict.get("schema")
                or list(existing.key_properties) != list(message_dict.get("key_properties") or [])
            )
        ):
            self.drain_one(existing)
        super()._process_schema_message(message_dict)

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        file_input: t.IO[str] | None = None,
    ) -> None:
        """Run the target; a failure the user must act on is one line on stderr and exit 1."""
        try:
            super().invoke(
                about=about, about_format=about_format, config=config, file_input=file_input
            )
        except LoadError as error:
            cls.logger.error("target-dialfire-sql: %s", error)
            sys.exit(1)
        except (SyncError, MappingError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            cls.logger.error(
                "target-dialfire-sql: the input was refused: %s; nothing after the last STATE "
                "was committed; fix the tap's output (or its schema) and run the pipeline again",
                first,
            )
            sys.exit(1)
        except sa.exc.DBAPIError as error:
            cls.logger.error(
                "target-dialfire-sql: database error: %s; nothing after the last STATE was "
                "committed; fix this and run the pipeline again",
                first_line(error.orig),
            )
            sys.exit(1)


if __name__ == "__main__":
    TargetDialfireSQL.cli()
