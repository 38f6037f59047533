"""What the user sees when something is wrong: one line, a non-zero exit, no secret."""

from __future__ import annotations

import json
from pathlib import Path

from dialfire_sandbox import Sandbox
from tests.test_tap_sync import assert_rows_equal, run_tap, tap_config

SECRET = "not-the-token-s3cr3t-value"


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| ERROR" in line or "| CRITICAL" in line]


def test_a_bad_token_stops_with_one_line_naming_campaign_and_setting(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    run = run_tap(tmp_path, tap_config(sandbox, campaign_token=SECRET))
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    errors = _error_lines(run.stderr)
    assert len(errors) == 1, run.stderr[-3000:]
    assert sandbox.campaign_id in errors[0]
    assert "HTTP 403" in errors[0]
    assert "campaign_token" in errors[0] and "TAP_DIALFIRE_CAMPAIGN_TOKEN" in errors[0]
    assert SECRET not in run.stderr + run.stdout
    assert not run.records


def test_a_bad_token_from_the_environment_is_never_printed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    env = {
        "TAP_DIALFIRE_CAMPAIGN_ID": sandbox.campaign_id,
        "TAP_DIALFIRE_CAMPAIGN_TOKEN": SECRET,
        "TAP_DIALFIRE_API_URL": sandbox.url,
    }
    run = run_tap(tmp_path, None, args=("--config", "ENV", "--discover"), env=env)
    assert run.returncode != 0
    assert SECRET not in run.stderr + run.stdout
    assert "Traceback" not in run.stderr
    assert "check campaign_token" in run.stderr


def test_every_setting_works_from_environment_variables(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    env = {
        "TAP_DIALFIRE_CAMPAIGN_ID": sandbox.campaign_id,
        "TAP_DIALFIRE_CAMPAIGN_TOKEN": sandbox.token,
        "TAP_DIALFIRE_API_URL": sandbox.url,
        "TAP_DIALFIRE_FILTER_MODE": "updates_only",
        "TAP_DIALFIRE_TASK_PREFIXES": '["fc_", "qc_"]',
        "TAP_DIALFIRE_LOOKBACK_MINUTES": "7",
        "TAP_DIALFIRE_RELIST_INTERVAL_HOURS": "6",
        "TAP_DIALFIRE_TIMEOUT": "20",
        "TAP_DIALFIRE_MAX_WORKERS": "2",
        "TAP_DIALFIRE_MAX_RETRIES": "3",
        "TAP_DIALFIRE_PAGE_SIZE": "25",
        "TAP_DIALFIRE_VALUE_FORMAT": "sql",
    }
    run = run_tap(tmp_path, None, args=("--config", "ENV"), env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert_rows_equal(run, sandbox.expected(filter_mode="updates_only",
                                            task_prefixes=("fc_", "qc_")))
    # page_size 25 pages the 60-contact listing in three requests
    assert sandbox.stats()["requests"]["contacts_list"] == 3


def test_about_documents_every_setting(tmp_path: Path) -> None:
    run = run_tap(tmp_path, None, args=("--about", "--format", "json"))
    assert run.returncode == 0, run.stderr
    about = json.loads(run.stdout)
    settings = about["settings"]["properties"]
    for name in (
        "campaign_id", "campaign_token", "start_date", "filter_mode", "task_prefixes",
        "api_url", "lookback_minutes", "relist_interval_hours", "timeout", "max_workers",
        "page_size", "value_format",
    ):
        assert settings[name].get("description"), name
    assert settings["campaign_token"].get("secret") is True


def test_a_non_json_answer_names_the_endpoint(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.add_fault(endpoint="fields", kind="non_json", count=50)
    run = run_tap(tmp_path, tap_config(sandbox, max_retries=1))
    assert run.returncode != 0
    errors = _error_lines(run.stderr)
    assert len(errors) == 1, run.stderr[-3000:]
    assert "fields" in errors[0] and "not JSON" in errors[0]
    assert "Traceback" not in run.stderr


def test_an_unreachable_api_fails_with_one_line(tmp_path: Path) -> None:
    config = {
        "api_url": "http://127.0.0.1:9",  # discard port: nothing listens
        "campaign_id": "ABCDEFGHJKLMNPQR",
        "campaign_token": SECRET,
        "max_retries": 1,
        "timeout": 2,
    }
    run = run_tap(tmp_path, config)
    assert run.returncode != 0
    errors = _error_lines(run.stderr)
    assert len(errors) == 1, run.stderr[-3000:]
    assert "network error" in errors[0] and "ABCDEFGHJKLMNPQR" in errors[0]
    assert SECRET not in run.stderr


def test_an_unreadable_start_date_stops_instead_of_syncing_everything(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A start_date the tap cannot read must not be taken as "no start date" (a full sync)."""
    run = run_tap(tmp_path, tap_config(sandbox, start_date="01.03.2026"))
    assert run.returncode != 0
    errors = _error_lines(run.stderr)
    assert len(errors) == 1, run.stderr[-3000:]
    assert "start_date" in errors[0] and "TAP_DIALFIRE_START_DATE" in errors[0]
    assert "01.03.2026" in errors[0]
    assert "Traceback" not in run.stderr
    assert not run.records


def test_task_prefixes_from_the_environment_ignore_spaces_and_empty_items(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """`fc_, qc_` means the prefixes fc_ and qc_ (not " qc_", which matches no task and would
    drop every qc_ transaction without a word)."""
    env = {
        "TAP_DIALFIRE_CAMPAIGN_ID": sandbox.campaign_id,
        "TAP_DIALFIRE_CAMPAIGN_TOKEN": sandbox.token,
        "TAP_DIALFIRE_API_URL": sandbox.url,
        "TAP_DIALFIRE_TASK_PREFIXES": "fc_, qc_,",
    }
    run = run_tap(tmp_path, None, args=("--config", "ENV"), env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    expected = sandbox.expected(task_prefixes=("fc_", "qc_"))
    assert any(row["task"].startswith("qc_") for row in expected["transactions"])
    assert_rows_equal(run, expected)


def test_a_token_of_the_wrong_type_is_refused_without_printing_it(tmp_path: Path) -> None:
    """singer-sdk's config validation quotes the offending value; for the token it must not."""
    for token in (98765432101234, [SECRET]):
        config = {"campaign_id": "ABCDEFGHJKLMNPQR", "campaign_token": token,
                  "api_url": "http://127.0.0.1:9"}
        run = run_tap(tmp_path, config)
        assert run.returncode != 0
        assert "campaign_token" in run.stderr
        assert str(token if isinstance(token, int) else SECRET) not in run.stderr + run.stdout
