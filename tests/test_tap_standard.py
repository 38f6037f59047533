"""singer-sdk's standard tap tests (discovery, CLI, record/schema conformance) on the sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from dialfire_sandbox import Sandbox
from tap_dialfire.tap import TapDialfire

# The standard suite takes its config when the class is built, so the sandbox starts at import
# and the module fixture below stops it.
_SANDBOX = Sandbox(seed=3, contacts=40).start()


@pytest.fixture(scope="module", autouse=True)
def _stop_sandbox() -> Iterator[None]:
    yield
    _SANDBOX.stop()


TestTapDialfire = get_tap_test_class(
    TapDialfire,
    config={
        "api_url": _SANDBOX.url,
        "campaign_id": _SANDBOX.campaign_id,
        "campaign_token": _SANDBOX.token,
        "max_retries": 2,
    },
    suite_config=SuiteConfig(max_records_limit=None),
)
