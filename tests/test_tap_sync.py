"""The tap against the sandbox, through the real ``tap-dialfire`` CLI in a subprocess.

Each test compares what the tap emitted, record for record, with the sandbox's independent
``expected`` view (``$changed`` aside). The helpers at the top are shared by the other
``test_tap_*`` modules.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dialfire_sandbox import Sandbox

TAP = str(Path(sys.executable).with_name("tap-dialfire"))
STREAMS = ("contacts", "transactions", "connections", "recordings", "inbound_calls")
KEYS = {"contacts": "$id"}


def key_of(stream: str) -> str:
    return KEYS.get(stream, "id")


@dataclass
class TapRun:
    """What one tap process wrote."""

    returncode: int
    stdout: str
    stderr: str
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    schemas: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    states: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> dict[str, Any]:
        assert self.states, f"the tap emitted no STATE\n{self.stderr[-3000:]}"
        return self.states[-1]

    def rows(self, stream: str) -> list[dict[str, Any]]:
        """The stream's records without ``$changed``, last version per key, sorted by key."""
        return sorted(accumulate({}, self)[stream].values(), key=lambda r: r[key_of(stream)])


def tap_config(sb: Sandbox, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "api_url": sb.url,
        "campaign_id": sb.campaign_id,
        "campaign_token": sb.token,
        "max_retries": 4,
    }
    config.update(overrides)
    return config


def run_tap(
    tmp_path: Path,
    config: Mapping[str, Any] | None,
    *,
    state: Mapping[str, Any] | None = None,
    args: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 180,
) -> TapRun:
    """Run ``tap-dialfire --config … [--state …]`` and parse its Singer output."""
    command = [TAP]
    run_dir = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
    run_dir.mkdir()
    if config is not None:
        (run_dir / "config.json").write_text(json.dumps(config))
        command += ["--config", str(run_dir / "config.json")]
    if state is not None:
        (run_dir / "state.json").write_text(json.dumps(state))
        command += ["--state", str(run_dir / "state.json")]
    command += list(args)
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_DIALFIRE_")}
    process_env.update(env or {})
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=process_env, cwd=run_dir
    )
    run = TapRun(done.returncode, done.stdout, done.stderr)
    for line in done.stdout.splitlines():
        if not line.startswith('{"type"'):
            continue  # not a Singer message (e.g. --about output)
        message = json.loads(line)
        if message["type"] == "RECORD":
            run.records.setdefault(message["stream"], []).append(message["record"])
        elif message["type"] == "SCHEMA":
            run.schemas.setdefault(message["stream"], []).append(message["schema"])
        elif message["type"] == "STATE":
            run.states.append(message["value"])
    return run


def accumulate(
    table: dict[str, dict[str, dict[str, Any]]], run: TapRun
) -> dict[str, dict[str, dict[str, Any]]]:
    """Upsert a run's records by key into ``table`` (what a target would hold)."""
    for stream in STREAMS:
        rows = table.setdefault(stream, {})
        for record in run.records.get(stream, []):
            row = {k: v for k, v in record.items() if k != "$changed"}
            rows[row[key_of(stream)]] = row
    return table


def assert_rows_equal(
    got: Mapping[str, Mapping[str, dict[str, Any]]] | TapRun,
    expected: Mapping[str, list[dict[str, Any]]],
    streams: tuple[str, ...] = STREAMS,
) -> None:
    """Every stream holds exactly the expected rows (a short diff on failure)."""
    table = accumulate({}, got) if isinstance(got, TapRun) else got
    for stream in streams:
        want = {row[key_of(stream)]: row for row in expected[stream]}
        have = dict(table.get(stream, {}))
        missing = sorted(set(want) - set(have))
        unexpected = sorted(set(have) - set(want))
        changed = [k for k in want if k in have and have[k] != want[k]]
        detail = ""
        if changed:
            k = changed[0]
            detail = str(
                {c: (have[k].get(c), want[k].get(c)) for c in {*have[k], *want[k]}
                 if have[k].get(c) != want[k].get(c)}
            )
        assert not (missing or unexpected or changed), (
            f"{stream}: {len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(changed)} different (tap vs expected: {detail})"
        )
        assert len(want) > 0 or stream != "contacts"


def requests_made(sb: Sandbox) -> dict[str, int]:
    return dict(sb.stats()["requests"])


# --------------------------------------------------------------------------- first run


def test_first_run_emits_exactly_the_expected_rows_of_every_stream(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    run = run_tap(tmp_path, tap_config(sandbox))
    assert run.returncode == 0, run.stderr[-3000:]
    expected = sandbox.expected()
    assert all(expected[s] for s in STREAMS), "the sandbox should populate every stream"
    assert_rows_equal(run, expected)
    assert sorted(run.state["bookmarks"]["contacts"]) == [
        "feed_position", "last_relist", "open_calls_since", "scope"]
    # Contacts were fetched 20 per request: 60 contacts need 3 fetches.
    assert requests_made(sandbox)["contacts_fetch"] == 3


def test_first_run_with_start_date_reads_contacts_changed_since_that_day(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(seed=11, contacts=80)
    since = sb.now() - dt.timedelta(days=20)
    run = run_tap(tmp_path, tap_config(sb, start_date=since.isoformat()))
    assert run.returncode == 0, run.stderr[-3000:]
    expected = sb.expected(since=since)
    assert 0 < len(expected["contacts"]) < 80
    assert_rows_equal(run, expected)


# --------------------------------------------------------------------------- later runs


def test_second_run_reads_only_the_change_feed_and_catches_up_exactly(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    first = run_tap(tmp_path, tap_config(sandbox))
    assert first.returncode == 0, first.stderr[-3000:]
    table = accumulate({}, first)

    sandbox.advance(minutes=5, new_transactions=12, attach_call_data=4, new_contacts=3,
                    new_inbound_calls=3)
    sandbox.reset_stats()
    second = run_tap(tmp_path, tap_config(sandbox), state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    accumulate(table, second)
    assert_rows_equal(table, sandbox.expected())

    made = requests_made(sandbox)
    assert made["contacts_list"] == 0, "no re-list is due 5 minutes after the first run"
    assert made["change_feed"] >= 1
    assert 0 < len(second.records["contacts"]) < 60, "only changed contacts are fetched"
    assert len(table["contacts"]) == 63, "the three new contacts arrive through the feed"
    assert second.state["bookmarks"]["contacts"]["feed_position"] > (
        first.state["bookmarks"]["contacts"]["feed_position"]
    )


def test_runs_resume_from_their_own_state_across_several_advances(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(seed=5, contacts=50)
    run = run_tap(tmp_path, tap_config(sb, max_workers=2))
    assert run.returncode == 0, run.stderr[-3000:]
    table = accumulate({}, run)
    state = run.state
    previous_ids = set(table["contacts"])
    for step in range(3):
        sb.advance(minutes=2 + step, new_transactions=6, attach_call_data=3, new_contacts=1)
        run = run_tap(tmp_path, tap_config(sb, max_workers=2), state=state)
        assert run.returncode == 0, run.stderr[-3000:]
        accumulate(table, run)
        state = run.state
        assert_rows_equal(table, sb.expected())
        new_ids = {r["$id"] for r in run.records["contacts"]} - set(previous_ids)
        assert new_ids, "the new contact arrives through the change feed"
        previous_ids = set(table["contacts"])
    assert sorted(state["bookmarks"]) == sorted(STREAMS)


def test_a_run_with_no_changes_still_emits_state(sandbox: Sandbox, tmp_path: Path) -> None:
    first = run_tap(tmp_path, tap_config(sandbox))
    second = run_tap(tmp_path, tap_config(sandbox), state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.states, "a run without changes must still emit STATE"
    assert set(second.state["bookmarks"]["contacts"]) == {
        "feed_position", "last_relist", "open_calls_since", "scope"}


def test_relist_runs_when_due_and_keeps_rows_exact(sandbox: Sandbox, tmp_path: Path) -> None:
    config = tap_config(sandbox, relist_interval_hours=12)
    first = run_tap(tmp_path, config)
    table = accumulate({}, first)
    sandbox.advance(minutes=13 * 60, new_transactions=8, attach_call_data=2, new_contacts=2)
    sandbox.reset_stats()
    second = run_tap(tmp_path, config, state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    accumulate(table, second)
    assert_rows_equal(table, sandbox.expected())
    assert requests_made(sandbox)["contacts_list"] >= 1, "a re-list is due after 13 hours"
    bookmarks = second.state["bookmarks"]["contacts"]
    assert bookmarks["last_relist"] == bookmarks["feed_position"]
    assert bookmarks["last_relist"] > first.state["bookmarks"]["contacts"]["last_relist"]


def test_relist_interval_zero_never_relists(sandbox: Sandbox, tmp_path: Path) -> None:
    config = tap_config(sandbox, relist_interval_hours=0)
    first = run_tap(tmp_path, config)
    sandbox.advance(minutes=48 * 60, new_transactions=4)
    sandbox.reset_stats()
    second = run_tap(tmp_path, config, state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    assert requests_made(sandbox)["contacts_list"] == 0


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("filter_mode", "task_prefixes"),
    [
        ("updates_only", []),
        ("hi_updates_only", []),
        ("all", ["fc_"]),
        ("hi_updates_only", ["fc_", "qc_"]),
    ],
)
def test_filters_keep_exactly_the_matching_transactions(
    sandbox: Sandbox, tmp_path: Path, filter_mode: str, task_prefixes: list[str]
) -> None:
    config = tap_config(sandbox, filter_mode=filter_mode, task_prefixes=task_prefixes)
    run = run_tap(tmp_path, config)
    assert run.returncode == 0, run.stderr[-3000:]
    expected = sandbox.expected(filter_mode=filter_mode, task_prefixes=tuple(task_prefixes))
    assert len(expected["transactions"]) < len(sandbox.expected()["transactions"])
    assert_rows_equal(run, expected)

    # Later runs: the feed is filtered server-side; children of fetched contacts stay exact.
    table = accumulate({}, run)
    sandbox.advance(minutes=5, new_transactions=15, attach_call_data=4, new_contacts=2)
    second = run_tap(tmp_path, config, state=run.state)
    assert second.returncode == 0, second.stderr[-3000:]
    accumulate(table, second)
    expected = sandbox.expected(filter_mode=filter_mode, task_prefixes=tuple(task_prefixes))
    assert_rows_equal(table, expected, streams=("transactions", "connections", "recordings"))


def test_a_wider_filter_on_a_later_run_lists_everything_again(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The feed only names changed contacts: transactions the old filter left out would never
    arrive if a run with a wider filter continued from the narrow run's bookmark."""
    narrow = run_tap(tmp_path, tap_config(sandbox, filter_mode="updates_only"))
    assert narrow.returncode == 0, narrow.stderr[-3000:]
    assert "filter_mode=updates_only" in narrow.state["bookmarks"]["contacts"]["scope"]
    table = accumulate({}, narrow)

    sandbox.reset_stats()
    wide = run_tap(tmp_path, tap_config(sandbox), state=narrow.state)
    assert wide.returncode == 0, wide.stderr[-3000:]
    assert "listing every contact again" in wide.stderr
    assert requests_made(sandbox)["contacts_list"] >= 1
    accumulate(table, wide)
    assert_rows_equal(table, sandbox.expected())
    assert "filter_mode=all" in wide.state["bookmarks"]["contacts"]["scope"]


def test_a_hand_written_bookmark_without_scope_is_followed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """docs/migration.md continues from dbsync2's position with a state written by hand."""
    position = sandbox.world.now().strftime("%Y-%m-%dT%H:%M:%S.000Z")
    state = {"bookmarks": {"contacts": {"feed_position": position, "last_relist": position}}}
    sandbox.reset_stats()
    run = run_tap(tmp_path, tap_config(sandbox), state=state)
    assert run.returncode == 0, run.stderr[-3000:]
    assert requests_made(sandbox)["contacts_list"] == 0
    assert requests_made(sandbox)["change_feed"] >= 1
    assert run.state["bookmarks"]["contacts"]["scope"].startswith(
        f"campaign={sandbox.campaign_id} ")


# --------------------------------------------------------------------------- schema


def test_a_new_custom_field_appears_as_a_column_on_the_next_run(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    first = run_tap(tmp_path, tap_config(sandbox))
    assert "Lieblingsfarbe" not in first.schemas["contacts"][0]["properties"]
    table = accumulate({}, first)
    sandbox.advance(minutes=5, new_transactions=10, new_field={
        "name": "Lieblingsfarbe", "fieldType": "text"})
    second = run_tap(tmp_path, tap_config(sandbox), state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    properties = second.schemas["contacts"][0]["properties"]
    assert properties["Lieblingsfarbe"]["type"] == ["string", "null"]
    assert list(properties)[-2:] == ["$extra", "$changed"]
    accumulate(table, second)
    expected = sandbox.expected()
    changed_ids = {r["$id"] for r in second.records["contacts"]}
    assert any(r.get("Lieblingsfarbe") for r in expected["contacts"] if r["$id"] in changed_ids)
    # Contacts the second run fetched carry the new column exactly as expected.
    for row in expected["contacts"]:
        if row["$id"] in changed_ids:
            assert table["contacts"][row["$id"]] == row


def test_schemas_ship_with_the_package_and_declare_types() -> None:
    from tap_dialfire.stream_schemas import base_schema

    transactions = base_schema("transactions")["properties"]
    assert transactions["fired"]["format"] == "date-time"
    assert transactions["sequence_nr"]["type"] == ["integer", "null"]
    assert list(transactions)[-2:] == ["$extra", "$changed"]


# --------------------------------------------------------------------------- section 7 unknowns


@pytest.mark.parametrize("call_data_moves_contact", [True, False])
def test_calls_that_end_long_after_they_fired_are_not_lost(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path, call_data_moves_contact: bool
) -> None:
    """The feed compares `from` with `fired` (the sandbox's default) and re-listing is off: a
    call that started in one run's window and ends two windows later must still arrive."""
    sb = sandbox_factory(seed=9, contacts=60, feed_time="fired",
                         call_data_moves_contact=call_data_moves_contact)
    config = tap_config(sb, relist_interval_hours=0, lookback_minutes=5)
    run = run_tap(tmp_path, config)
    table = accumulate({}, run)
    assert run.state["bookmarks"]["contacts"]["open_calls_since"] is not None
    state = run.state
    sb.advance(minutes=30, new_transactions=25, attach_call_data=0, new_contacts=0,
               new_inbound_calls=0)
    for attach in (3, 3):
        run = run_tap(tmp_path, config, state=state)
        assert run.returncode == 0, run.stderr[-3000:]
        accumulate(table, run)
        state = run.state
        summary = sb.advance(minutes=60, new_transactions=0, attach_call_data=attach,
                             new_contacts=0, new_inbound_calls=0)
        assert [x["what"] for x in summary["attached_call_data"]] == ["completed_call"] * attach
    run = run_tap(tmp_path, config, state=state)
    accumulate(table, run)
    assert_rows_equal(table, sb.expected())


def test_a_late_change_to_an_old_transaction_is_caught_by_the_relist(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """A recording attached weeks after its call is invisible to a `fired`-based feed; the
    periodic re-list (the contact's changed day moves) brings it in."""
    sb = sandbox_factory(seed=9, contacts=60, feed_time="fired", call_data_moves_contact=True)
    config = tap_config(sb, relist_interval_hours=12)
    first = run_tap(tmp_path, config)
    table = accumulate({}, first)
    for _ in range(3):  # complete the calls still open, so attach adds late recordings
        sb.advance(minutes=1, new_transactions=0, attach_call_data=4, new_contacts=0,
                   new_inbound_calls=0)
    summary = sb.advance(minutes=13 * 60, new_transactions=0, attach_call_data=5,
                         new_contacts=0, new_inbound_calls=0)
    assert "late_recording" in {x["what"] for x in summary["attached_call_data"]}
    second = run_tap(tmp_path, config, state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    accumulate(table, second)
    assert_rows_equal(table, sb.expected())


def test_a_new_custom_field_becomes_a_column_even_with_a_cached_catalog(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    discovered = run_tap(tmp_path, tap_config(sandbox), args=("--discover",))
    catalog = json.loads(discovered.stdout)
    for entry in catalog["streams"]:  # deselect one existing field: it must stay deselected
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == ["properties", "Kommentar"]:
                metadata["metadata"]["selected"] = False
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    args = ("--catalog", str(tmp_path / "catalog.json"))
    first = run_tap(tmp_path, tap_config(sandbox), args=args)
    assert first.returncode == 0, first.stderr[-3000:]

    sandbox.advance(minutes=5, new_transactions=10, new_contacts=0,
                    new_field={"name": "Lieblingsfarbe", "fieldType": "number"})
    second = run_tap(tmp_path, tap_config(sandbox), state=first.state, args=args)
    assert second.returncode == 0, second.stderr[-3000:]
    properties = second.schemas["contacts"][0]["properties"]
    assert properties["Lieblingsfarbe"]["type"] == ["number", "null"]
    assert "Kommentar" not in properties
    expected = {row["$id"]: row for row in sandbox.expected()["contacts"]}
    records = second.records["contacts"]
    assert any(r.get("Lieblingsfarbe") is not None for r in records)
    for record in records:
        assert "Kommentar" not in record
        want = {k: v for k, v in expected[record["$id"]].items() if k != "Kommentar"}
        assert {k: v for k, v in record.items() if k != "$changed"} == want


@pytest.mark.parametrize(
    "variant",
    [{"feed_time": "modified"}, {"legacy_feed_entries": True}, {"malformed_entries": True}],
    ids=["feed-by-modification-time", "legacy-4-part-entries", "malformed-entries"],
)
def test_later_runs_stay_exact_with_each_feed_variant(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path, variant: dict[str, Any]
) -> None:
    malformed = variant.pop("malformed_entries", False)
    sb = sandbox_factory(seed=13, contacts=50, **variant)
    first = run_tap(tmp_path, tap_config(sb))
    table = accumulate({}, first)
    sb.advance(minutes=5, new_transactions=15, attach_call_data=4, new_contacts=2)
    if malformed:
        sb.add_fault(endpoint="change_feed", kind="malformed", count=1)
    second = run_tap(tmp_path, tap_config(sb), state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    accumulate(table, second)
    assert_rows_equal(table, sb.expected())
    if malformed:
        assert "Skipping a malformed change-feed entry" in second.stderr
