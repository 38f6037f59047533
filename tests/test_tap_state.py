"""State stays constant-size however many contacts the campaign has."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dialfire_sandbox import Sandbox
from tests.test_tap_sync import run_tap, tap_config


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
        "feed_position", "last_relist", "open_calls_since"}
    assert large["bookmarks"]["recordings"] == {}
