"""tap-dialfire: settings and the stream list.

Every setting also works as ``TAP_DIALFIRE_<SETTING>`` with ``--config ENV``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import sys
from collections.abc import Iterator
from typing import Any

import click
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.singerlib import Catalog

from tap_dialfire.changes import SelectionSettings, parse_timestamp
from tap_dialfire.client import DialfireClient, DialfireConfigError, DialfireError
from tap_dialfire.rows import (
    FILTER_MODES,
    VALUE_FORMATS,
    RowBuilder,
    StreamColumns,
    TransactionFilter,
    ValuePolicy,
    columns_from_schema,
    custom_fields,
)
from tap_dialfire.stream_schemas import base_schema, contacts_schema, with_custom_fields
from tap_dialfire.streams import (
    ConnectionsStream,
    ContactsStream,
    InboundCallsStream,
    RecordingsStream,
    TransactionsStream,
)

DEFAULT_API_URL = "https://api.dialfire.com"
DEFAULTS: dict[str, Any] = {
    "filter_mode": "all",
    "task_prefixes": [],
    "api_url": DEFAULT_API_URL,
    "lookback_minutes": 5,
    "relist_interval_hours": 12,
    "timeout": 30,
    "max_workers": 4,
    "page_size": 1000,
    "value_format": "sql",
    "max_retries": 7,
}
MAX_WORKERS_LIMIT = 16


SECRET_SETTINGS = ("campaign_token",)


def _hide_secrets(error: str) -> str:
    """A config validation message about a secret setting, without its value."""
    for name in SECRET_SETTINGS:
        if f"config[{name!r}]" in error:
            return f"{name} must be a string (its value is not shown) in config[{name!r}]"
    return error


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """A :class:`DialfireError` ends the process with its one line and exit code 1."""
    try:
        yield
    except DialfireError as exc:
        TapDialfire.logger.error("%s", exc)
        sys.exit(1)


class TapDialfire(Tap):
    """Copies one Dialfire campaign: contacts, their task log, and inbound calls."""

    name = "tap-dialfire"
    dynamic_catalog = True  # contacts gains the campaign's custom fields at discovery

    config_jsonschema = th.PropertiesList(
        th.Property(
            "campaign_id",
            th.StringType,
            required=True,
            description="The Dialfire campaign id (16 characters).",
        ),
        th.Property(
            "campaign_token",
            th.StringType,
            required=True,
            secret=True,
            description="The campaign's Sync Client connector token (Bearer token). Secret.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description=(
                "First run only: read contacts changed since this day (the API filters by "
                "day) and inbound calls since this time. Empty: everything."
            ),
        ),
        th.Property(
            "filter_mode",
            th.StringType,
            default=DEFAULTS["filter_mode"],
            allowed_values=list(FILTER_MODES),
            description=(
                "Which transactions to emit: 'all', 'updates_only' (type update) or "
                "'hi_updates_only' (updates made by a human). Contacts are always emitted."
            ),
        ),
        th.Property(
            "task_prefixes",
            th.ArrayType(th.StringType),
            default=DEFAULTS["task_prefixes"],
            description=(
                "Only transactions whose task name starts with one of these prefixes "
                '(e.g. ["fc_", "qc_"]; from the environment: JSON or \'fc_,qc_\').'
            ),
        ),
        th.Property(
            "api_url",
            th.StringType,
            default=DEFAULT_API_URL,
            description="Base URL of the Dialfire API.",
        ),
        th.Property(
            "lookback_minutes",
            th.IntegerType(minimum=0),
            default=DEFAULTS["lookback_minutes"],
            description=(
                "Later runs read the change feed (and inbound calls) from the bookmark minus "
                "this many minutes, to catch late-arriving changes."
            ),
        ),
        th.Property(
            "relist_interval_hours",
            th.IntegerType(minimum=0),
            default=DEFAULTS["relist_interval_hours"],
            description=(
                "Re-list contacts changed since the day of the last re-list when it is older "
                "than this (a safety net for changes the feed misses). 0 turns it off."
            ),
        ),
        th.Property(
            "timeout",
            th.IntegerType(minimum=1),
            default=DEFAULTS["timeout"],
            description="Seconds to wait for each API response before retrying.",
        ),
        th.Property(
            "max_workers",
            th.IntegerType(minimum=1, maximum=MAX_WORKERS_LIMIT),
            default=DEFAULTS["max_workers"],
            description=(
                f"Contact fetches (20 contacts each) in flight at once, 1-{MAX_WORKERS_LIMIT}."
            ),
        ),
        th.Property(
            "max_retries",
            th.IntegerType(minimum=0, maximum=20),
            default=DEFAULTS["max_retries"],
            description=(
                "Retries per request on 5xx, 429, network errors and timeouts (exponential "
                "back-off with jitter from 0.5 s up to 30 s, or the server's Retry-After)."
            ),
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=10000),
            default=DEFAULTS["page_size"],
            description="The 'limit' of the listing, change-feed and inbound-call pages.",
        ),
        th.Property(
            "value_format",
            th.StringType,
            default=DEFAULTS["value_format"],
            allowed_values=list(VALUE_FORMATS),
            description=(
                "'sql': empty strings become null and timestamps one UTC form (as the old "
                "tool's tables); 'raw': strings exactly as Dialfire sent them."
            ),
        ),
    ).to_dict()

    # ------------------------------------------------------------------ settings

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """singer-sdk's messages quote the offending value; for a secret setting they must
        not (a token of the wrong type would otherwise be printed)."""
        try:
            errors = super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError as exc:
            raise ConfigValidationError(
                str(exc), errors=[_hide_secrets(e) for e in exc.errors], schema=exc.schema
            ) from None
        return [_hide_secrets(error) for error in errors]


    def setting(self, key: str) -> Any:
        value = self.config.get(key)
        return DEFAULTS.get(key) if value is None else value

    @property
    def lookback_minutes(self) -> int:
        return int(self.setting("lookback_minutes"))

    @property
    def page_size(self) -> int:
        return int(self.setting("page_size"))

    @property
    def max_workers(self) -> int:
        return max(1, min(MAX_WORKERS_LIMIT, int(self.setting("max_workers"))))

    @functools.cached_property
    def client(self) -> DialfireClient:
        return DialfireClient(
            api_url=str(self.setting("api_url")),
            campaign_id=str(self.config["campaign_id"]),
            token=str(self.config["campaign_token"]),
            timeout=float(self.setting("timeout")),
            max_tries=int(self.setting("max_retries")) + 1,
            pool_size=self.max_workers + 2,
        )

    @functools.cached_property
    def transaction_filter(self) -> TransactionFilter:
        prefixes = self.setting("task_prefixes") or []
        if isinstance(prefixes, str):
            prefixes = [part for part in prefixes.split(",") if part]
        return TransactionFilter(
            mode=str(self.setting("filter_mode")), task_prefixes=tuple(prefixes)
        )

    def selection_settings(self) -> SelectionSettings:
        return SelectionSettings(
            start_date=self.start_date,
            lookback_minutes=self.lookback_minutes,
            relist_interval_hours=float(self.setting("relist_interval_hours")),
            page_size=self.page_size,
            feed_filters=self.transaction_filter.feed_params(),
        )

    @property
    def start_date(self) -> dt.datetime | None:
        """None when unset; an unreadable value stops the run rather than meaning "all"."""
        value = self.config.get("start_date")
        parsed = parse_timestamp(value)
        if parsed is None and isinstance(value, str) and value.strip():
            msg = (
                f"start_date {value!r} is not a date or timestamp: use e.g. 2026-03-01 or "
                "2026-03-01T08:00:00Z (start_date, TAP_DIALFIRE_START_DATE)."
            )
            raise DialfireConfigError(msg)
        return parsed

    def row_builder(self) -> RowBuilder:
        """Rows shaped after the schemas this run emits (the catalog's, when one is given)."""
        streams = self.streams
        columns = StreamColumns(
            **{name: columns_from_schema(streams[name].effective_schema) for name in streams}
        )
        return RowBuilder(
            columns=columns,
            transaction_filter=self.transaction_filter,
            policy=ValuePolicy(str(self.setting("value_format"))),
        )

    # ------------------------------------------------------------------ streams

    def discover_streams(self) -> list[Stream]:
        """The five streams; ``contacts`` gains the campaign's custom fields."""
        return [
            ContactsStream(self, schema=self._contacts_schema()),
            TransactionsStream(self, schema=base_schema("transactions")),
            ConnectionsStream(self, schema=base_schema("connections")),
            RecordingsStream(self, schema=base_schema("recordings")),
            InboundCallsStream(self, schema=base_schema("inbound_calls")),
        ]

    def setup_mapper(self) -> None:
        """Before the mapper reads an input catalog, add the custom fields created since it was
        made, so a new field arrives as a column even with a cached catalog (Meltano caches
        it). Fields the catalog already has keep their metadata and selection."""
        self._add_new_custom_fields_to_catalog()
        super().setup_mapper()

    def _add_new_custom_fields_to_catalog(self) -> None:
        catalog = self.input_catalog
        entry = catalog.get_stream("contacts") if catalog is not None else None
        if catalog is None or entry is None or not entry.schema.properties:
            return
        schema = entry.schema.to_dict()
        merged = with_custom_fields(schema, custom_fields(self.client.fields()))
        added = [name for name in merged["properties"] if name not in schema["properties"]]
        if not added:
            return
        self.logger.info("New custom fields since the catalog was made: %s", ", ".join(added))
        catalog_dict = catalog.to_dict()
        for stream in catalog_dict["streams"]:
            if stream["tap_stream_id"] == "contacts":
                stream["schema"] = merged
        self._input_catalog = Catalog.from_dict(catalog_dict)

    def _contacts_schema(self) -> dict[str, Any]:
        catalog = self.input_catalog
        entry = catalog.get_stream("contacts") if catalog is not None else None
        if entry is not None and entry.schema.properties:
            return entry.schema.to_dict()
        fields = self.client.fields()
        custom = custom_fields(fields)
        self.logger.info("Discovered %d custom contact fields", len(custom))
        return contacts_schema(custom)

    # ------------------------------------------------------------------ CLI

    @classmethod
    def invoke(cls, **kwargs: Any) -> None:
        with _one_line_errors():
            super().invoke(**kwargs)

    @classmethod
    def cb_discover(cls, ctx: click.Context, param: click.Option, value: bool) -> None:
        with _one_line_errors():
            super().cb_discover(ctx, param, value)

    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        with _one_line_errors():
            super().cb_test(ctx, param, value)


if __name__ == "__main__":
    TapDialfire.cli()
