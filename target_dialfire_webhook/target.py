"""Settings of the planned webhook target, and a clear refusal to run until it is built.

Declaring the settings now lets `meltano.yml`, `--about` and the migration table name the
replacement for dbsync2's `--a webhook`, `--url`, `--wr` and `--wb` without pretending that
delivery works: a run stops at the first record with one line saying so, before any state
could move past an undelivered transaction.
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th
from singer_sdk.sinks import RecordSink
from singer_sdk.target_base import Target

NOT_BUILT = (
    "target-dialfire-webhook is not built yet: webhook delivery is planned work. "
    "Nothing was sent and no state was emitted."
)


class WebhookNotBuiltError(RuntimeError):
    """Raised for every record: refusing beats silently dropping transactions."""


class WebhookSink(RecordSink):
    """Refuses records; see the module docstring."""

    def process_record(self, record: dict, context: dict) -> None:
        raise WebhookNotBuiltError(NOT_BUILT)


class TargetDialfireWebhook(Target):
    """The planned replacement for dbsync2's webhook mode."""

    name = "target-dialfire-webhook"
    package_name = "tap-dialfire"  # the distribution that ships every plugin of this repo
    default_sink_class = WebhookSink
    config_jsonschema = th.PropertiesList(
        th.Property(
            "url",
            th.StringType,
            required=True,
            secret=True,
            description="The web service that receives one POST per transaction "
            "(dbsync2's --url). May carry credentials, so it is treated as a secret.",
        ),
        th.Property(
            "rate_limit",
            th.NumberType,
            default=5,
            description="Requests per second (dbsync2's --wr).",
        ),
        th.Property(
            "burst",
            th.IntegerType,
            description="Requests allowed in a burst (dbsync2's --wb); default twice rate_limit.",
        ),
        th.Property(
            "timeout",
            th.NumberType,
            default=30,
            description="Seconds to wait for each POST.",
        ),
        th.Property(
            "signing_secret",
            th.StringType,
            secret=True,
            description="Standard Webhooks signing secret (whsec_...); unsigned when unset.",
        ),
    ).to_dict()

    def _process_record_message(self, message_dict: dict[str, t.Any]) -> None:
        raise WebhookNotBuiltError(NOT_BUILT)


if __name__ == "__main__":
    TargetDialfireWebhook.cli()
