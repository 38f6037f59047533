"""Faults on the wire: retried runs still end with the exact rows; failed runs keep the bookmark."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from dialfire_sandbox import Sandbox
from tests.test_tap_sync import TAP, TapRun, accumulate, assert_rows_equal, run_tap, tap_config


def test_5xx_429_drops_and_latency_are_retried_and_rows_stay_exact(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.add_fault(endpoint="fields", kind="error", status=502, count=1)
    sandbox.add_fault(endpoint="contacts_list", kind="drop", count=1)
    sandbox.add_fault(endpoint="contacts_fetch", kind="error", status=503, count=2)
    sandbox.add_fault(endpoint="contacts_fetch", kind="rate_limit", retry_after=1, count=1)
    sandbox.add_fault(endpoint="contacts_fetch", kind="non_json", count=1)
    sandbox.add_fault(endpoint="inbound_calls", kind="drop", count=1)
    sandbox.add_fault(endpoint="inbound_calls", kind="latency", latency_ms=300, count=1)
    started = time.monotonic()
    run = run_tap(tmp_path, tap_config(sandbox))
    assert run.returncode == 0, run.stderr[-3000:]
    assert_rows_equal(run, sandbox.expected())
    assert sandbox.faults.pending() == [], "every injected fault was met"
    assert "retry" in run.stderr
    assert time.monotonic() - started >= 1.0, "the 429's Retry-After of 1 s was honoured"


def test_faults_on_a_later_run_are_retried_and_rows_stay_exact(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    first = run_tap(tmp_path, tap_config(sandbox))
    table = accumulate({}, first)
    sandbox.advance(minutes=5, new_transactions=10, attach_call_data=3, new_contacts=2)
    sandbox.add_fault(endpoint="change_feed", kind="rate_limit", retry_after=0.2, count=2)
    sandbox.add_fault(endpoint="contacts_fetch", kind="drop", count=1)
    sandbox.add_fault(endpoint="contacts_fetch", kind="latency", latency_ms=200, count=3)
    second = run_tap(tmp_path, tap_config(sandbox), state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    accumulate(table, second)
    assert_rows_equal(table, sandbox.expected())


def test_a_5xx_storm_fails_the_run_without_moving_the_bookmark(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    first = run_tap(tmp_path, tap_config(sandbox))
    table = accumulate({}, first)
    old_position = first.state["bookmarks"]["contacts"]

    sandbox.advance(minutes=5, new_transactions=80, attach_call_data=4, new_contacts=2)
    # One fetch gets through, then every fetch fails: the run emits part of the contacts.
    sandbox.add_fault(endpoint="contacts_fetch", kind="latency", latency_ms=1, count=1)
    sandbox.add_fault(endpoint="contacts_fetch", kind="error", status=500, count=1000)
    failed = run_tap(tmp_path, tap_config(sandbox, max_retries=1, max_workers=1),
                     state=first.state)
    assert failed.returncode != 0
    assert "Traceback" not in failed.stderr
    errors = [line for line in failed.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, failed.stderr[-3000:]
    assert "contacts_fetch failed after 2 attempts (HTTP 500)" in errors[0]
    for state in failed.states:
        assert state["bookmarks"]["contacts"] == old_position, "the bookmark must not move"
    accumulate(table, failed)

    sandbox.clear_faults()
    recovered = run_tap(tmp_path, tap_config(sandbox), state=failed.states[-1])
    assert recovered.returncode == 0, recovered.stderr[-3000:]
    accumulate(table, recovered)
    assert_rows_equal(table, sandbox.expected())


def test_a_slow_api_times_out_and_is_retried(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.add_fault(endpoint="contacts_fetch", kind="latency", latency_ms=2500, count=1)
    run = run_tap(tmp_path, tap_config(sandbox, timeout=1))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "no answer within 1 s" in run.stderr
    assert_rows_equal(run, sandbox.expected())


def test_a_run_stopped_midway_keeps_the_old_bookmark_and_the_next_run_catches_up(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    first = run_tap(tmp_path, tap_config(sandbox))
    table = accumulate({}, first)
    old_bookmark = first.state["bookmarks"]["contacts"]
    sandbox.advance(minutes=5, new_transactions=80, attach_call_data=4, new_contacts=2)
    sandbox.add_fault(endpoint="contacts_fetch", kind="latency", latency_ms=400, count=100)

    config_path = tmp_path / "stopped-config.json"
    state_path = tmp_path / "stopped-state.json"
    config_path.write_text(json.dumps(tap_config(sandbox, max_workers=1)))
    state_path.write_text(json.dumps(first.state))
    process = subprocess.Popen(
        [TAP, "--config", str(config_path), "--state", str(state_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith('{"type":"RECORD","stream":"contacts"'):
            process.send_signal(signal.SIGTERM)  # stop after the first contact
            break
    lines += process.stdout.readlines()
    process.wait(timeout=30)  # singer-sdk exits 0 after a graceful SIGTERM
    messages = [json.loads(line) for line in lines if line.startswith('{"type"')]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    assert states, "the tap writes its state when it is terminated"
    for state in states:
        assert state["bookmarks"]["contacts"] == old_bookmark
    stopped = TapRun(0, "", "", states=states)
    for message in messages:
        if message["type"] == "RECORD":
            stopped.records.setdefault(message["stream"], []).append(message["record"])
    accumulate(table, stopped)

    sandbox.clear_faults()
    resumed = run_tap(tmp_path, tap_config(sandbox), state=states[-1])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(stopped.records["contacts"]) < len(resumed.records["contacts"]), "stopped midway"
    accumulate(table, resumed)
    assert_rows_equal(table, sandbox.expected())
