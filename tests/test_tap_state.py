"""State stays constant-size however many contacts the campaign has, and never runs ahead of
the server's clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dialfire_sandbox import Sandbox
from tests.test_tap_sync import accumulate, assert_rows_equal, run_tap, tap_config


def _catalog_selecting(tmp_path: Path, config: dict[str, Any], stream: str) -> dict[str, Any]:
    discovered = run_tap(tmp_path, config, args=("--discover",))
    assert discovered.returncode == 0, discovered.stderr[-3000:]
    catalog: dict[str, Any] = json.loads(discovered.stdout)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] == stream
    return catalog


def _first_run_state(sb: Sandbox, tmp_path: Path) -> dict[str, Any]:
    """A full first run. Only `recordings` is selected, to keep the output small: contacts are
    still listed and fetched, and the child streams are synced once per contact, which is
    where a per-contact state partition would show."""
    tmp_path.mkdir()
    config = tap_config(sb, max_workers=8)
    catalog = _catalog_selecting(tmp_path, config, "recordings")
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    run = run_tap(tmp_path, config, args=("--catalog", str(tmp_path / "catalog.json")))
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.records) == {"recordings"}
    assert len(run.records["recordings"]) > 0
    return run.state


def _shape(state: Any) -> Any:
    """The state's structure with every scalar value replaced by its type name."""
    if isinstance(state, dict):
        return {key: _shape(value) for key, value in state.items()}
    if isinstance(state, list):
        return [_shape(value) for value in state]
    return type(state).__name__


def test_state_size_is_the_same_for_1000_and_20000_contacts(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    small = _first_run_state(sandbox_factory(seed=21, contacts=1_000), tmp_path / "small")
    large = _first_run_state(sandbox_factory(seed=21, contacts=20_000), tmp_path / "large")
    assert _shape(small) == _shape(large)
    assert len(json.dumps(small)) == len(json.dumps(large))
    assert set(large["bookmarks"]["contacts"]) == {
        "feed_position", "last_relist", "open_calls_since", "scope"}
    assert large["bookmarks"]["recordings"] == {}


def test_an_inbound_call_dated_in_the_future_does_not_push_the_bookmark_past_the_server_clock(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A call whose call_time lies ahead of the server's clock (a dialer clock running fast)
    must not become the bookmark: every call made until then would be skipped for good."""
    first = run_tap(tmp_path, tap_config(sandbox))
    table = accumulate({}, first)
    sandbox.advance(minutes=5, new_transactions=0, attach_call_data=0, new_contacts=0,
                    new_inbound_calls=1)
    call = sandbox.world.extra_inbound[-1]
    real_time = call["call_time"]
    call["call_time"] = "2026-03-03T09:00:00.000Z"  # a day ahead of the sandbox's clock
    second = run_tap(tmp_path, tap_config(sandbox), state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    accumulate(table, second)
    assert second.state["bookmarks"]["inbound_calls"]["replication_key_value"] < (
        "2026-03-03T00:00:00.000Z"), "the bookmark stays at or before the server's clock"

    call["call_time"] = real_time  # the dialer's clock is right again
    sandbox.advance(minutes=10, new_transactions=0, attach_call_data=0, new_contacts=0,
                    new_inbound_calls=3)
    third = run_tap(tmp_path, tap_config(sandbox), state=second.state)
    assert third.returncode == 0, third.stderr[-3000:]
    accumulate(table, third)
    assert_rows_equal(table, sandbox.expected(), streams=("inbound_calls",))


def test_an_inbound_call_in_progress_holds_the_bookmark_until_it_ends(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A call read while it is in progress (no hangup_time yet) is read again, complete."""
    first = run_tap(tmp_path, tap_config(sandbox))
    table = accumulate({}, first)
    sandbox.advance(minutes=60, new_transactions=0, attach_call_data=0, new_contacts=0,
                    new_inbound_calls=4)
    call = sandbox.world.extra_inbound[0]
    hangup_time = call["hangup_time"]
    call["hangup_time"] = ""  # the earliest of the new calls is still going on
    second = run_tap(tmp_path, tap_config(sandbox), state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    accumulate(table, second)
    assert second.state["bookmarks"]["inbound_calls"]["replication_key_value"] == (
        call["call_time"])

    call["hangup_time"] = hangup_time
    sandbox.advance(minutes=30, new_transactions=0, attach_call_data=0, new_contacts=0,
                    new_inbound_calls=0)
    third = run_tap(tmp_path, tap_config(sandbox), state=second.state)
    assert third.returncode == 0, third.stderr[-3000:]
    accumulate(table, third)
    assert table["inbound_calls"][call["id"]]["disconnected"] is not None
    assert_rows_equal(table, sandbox.expected(), streams=("inbound_calls",))
