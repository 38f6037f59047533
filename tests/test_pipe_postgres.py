"""The same load as a plain shell pipe, exactly as docs/meltano.md shows it:

    tap-dialfire --config tap.json [--state state.json] \
      | PGTZ=UTC target-postgres --config target.json > state.out \
      && tail -n 1 state.out > state.json

The tap is this project's console script; target-postgres is the one `meltano install` put in its
own venv (the pinned meltanolabs-target-postgres), so no Meltano runs here.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest

from dialfire_sandbox import Sandbox
from tests.support.databases import PostgresSchema
from tests.support.postgres_rows import STREAMS, differences, loaded_rows
from tests.support.processes import (
    VENV_BIN,
    BackgroundCommand,
    MeltanoProject,
    clean_environment,
    run_timed,
    start_background,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]



def target_config(schema: PostgresSchema, prefix: str = "dfire_") -> dict:
    return {
        "sqlalchemy_url": schema.url,
        "default_target_schema": schema.name,
        "load_method": "upsert",
        "stream_maps": {stream: {"__alias__": f"{prefix}{stream}"} for stream in STREAMS},
    }


def pipe_line(tap: str, target: Path, workdir: Path, state: bool) -> str:
    state_args = " --state state.json" if state else ""
    return (
        f"set -o pipefail; cd {shlex.quote(str(workdir))}; "
        f"{tap}{state_args} | PGTZ=UTC {shlex.quote(str(target))} --config target.json"
        " > state.out"
        " && tail -n 1 state.out > state.json"
    )


def assert_exact(schema: PostgresSchema, sb: Sandbox) -> dict[str, list[dict]]:
    loaded = loaded_rows(schema.engine, schema.name)
    problems = differences(loaded, sb.expected())
    assert not problems, "tables differ from the expected rows:\n" + "\n".join(problems)
    return loaded


def test_shell_pipe_loads_the_expected_rows_and_resumes_from_its_state_file(
    meltano_project: MeltanoProject, postgres_schema: PostgresSchema, tmp_path: Path
) -> None:
    target = meltano_project.plugin_executable("loaders", "target-postgres")
    tap = shlex.quote(str(VENV_BIN / "tap-dialfire"))
    (tmp_path / "target.json").write_text(json.dumps(target_config(postgres_schema)))
    with Sandbox(seed=21, contacts=40) as sb:
        (tmp_path / "tap.json").write_text(json.dumps(
            {"api_url": sb.url, "campaign_id": sb.campaign_id, "campaign_token": sb.token}
        ))
        env = clean_environment()
        run_timed(["bash", "-c", pipe_line(f"{tap} --config tap.json", target, tmp_path, False)],
                  env=env, timeout=300, what="tap-dialfire --config tap.json | target-postgres")
        first = assert_exact(postgres_schema, sb)
        assert all(first[stream] for stream in STREAMS)
        state = json.loads((tmp_path / "state.json").read_text())
        assert state["bookmarks"]["contacts"].get("feed_position"), state

        # Second run: configured from the environment (`--config ENV`), resuming from the file.
        sb.advance(minutes=5, new_transactions=10, attach_call_data=3, new_contacts=2,
                   new_inbound_calls=2)
        sb.reset_stats()
        env = clean_environment({"TAP_DIALFIRE_API_URL": sb.url,
                                 "TAP_DIALFIRE_CAMPAIGN_ID": sb.campaign_id,
                                 "TAP_DIALFIRE_CAMPAIGN_TOKEN": sb.token})
        run_timed(["bash", "-c", pipe_line(f"{tap} --config ENV", target, tmp_path, True)],
                  env=env, timeout=300,
                  what="tap-dialfire --config ENV --state state.json | target-postgres")
        requests = sb.stats()["requests"]
        second = assert_exact(postgres_schema, sb)
        assert requests["contacts_list"] == 0, f"the resumed pipe listed contacts again: {requests}"
        assert requests["change_feed"] >= 1, requests
        assert len(second["transactions"]) > len(first["transactions"])
        resumed = json.loads((tmp_path / "state.json").read_text())
        assert resumed["bookmarks"]["contacts"]["feed_position"] > \
            state["bookmarks"]["contacts"]["feed_position"]


def test_shell_pipe_with_its_tap_killed_keeps_the_old_state_file_and_the_next_run_catches_up(
    meltano_project: MeltanoProject,
    postgres_schema: PostgresSchema,
    tmp_path: Path,
    background: list[BackgroundCommand],
) -> None:
    target = meltano_project.plugin_executable("loaders", "target-postgres")
    tap = shlex.quote(str(VENV_BIN / "tap-dialfire"))
    (tmp_path / "target.json").write_text(json.dumps(target_config(postgres_schema)))
    with Sandbox(seed=22, contacts=30) as sb:
        (tmp_path / "tap.json").write_text(json.dumps(
            {"api_url": sb.url, "campaign_id": sb.campaign_id, "campaign_token": sb.token,
             "max_workers": 1}
        ))
        env = clean_environment()
        run_timed(["bash", "-c", pipe_line(f"{tap} --config tap.json", target, tmp_path, False)],
                  env=env, timeout=300, what="tap-dialfire | target-postgres (first run)")
        saved = (tmp_path / "state.json").read_text()

        # Many contacts change; the next run is killed while it fetches them.
        sb.advance(minutes=5, new_transactions=60, attach_call_data=5, new_contacts=5,
                   new_inbound_calls=2)
        sb.reset_stats()
        sb.add_fault(endpoint="contacts_fetch", kind="latency", count=10_000, latency_ms=600)
        run = start_background(
            ["bash", "-c", pipe_line(f"{tap} --config tap.json", target, tmp_path, True)],
            env=env, what="tap-dialfire | target-postgres (tap killed)",
        )
        background.append(run)
        killed = run.wait_for_descendant("tap-dialfire", with_argument="--state", timeout=60)
        deadline = time.monotonic() + 60
        while sb.stats()["requests"]["contacts_fetch"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        killed.kill()
        code, _out, _err = run.finish(timeout=120)
        assert code != 0, "the pipe reported success although its tap was killed"
        assert (tmp_path / "state.json").read_text() == saved, "a failed pipe replaced the state"
        assert differences(loaded_rows(postgres_schema.engine, postgres_schema.name),
                           sb.expected()), "the killed run could not have loaded everything"

        sb.clear_faults()
        run_timed(["bash", "-c", pipe_line(f"{tap} --config tap.json", target, tmp_path, True)],
                  env=env, timeout=300, what="tap-dialfire | target-postgres (catching up)")
        assert_exact(postgres_schema, sb)


def test_shell_pipe_keeps_timestamps_utc_on_a_server_in_another_time_zone(
    meltano_project: MeltanoProject, postgres_schema: PostgresSchema, tmp_path: Path
) -> None:
    """The documented pipe runs target-postgres with PGTZ=UTC: a server whose default zone is
    Europe/Berlin would otherwise store every timestamp as Berlin time."""
    target = meltano_project.plugin_executable("loaders", "target-postgres")
    tap = shlex.quote(str(VENV_BIN / "tap-dialfire"))
    config = target_config(postgres_schema)
    config["sqlalchemy_url"] += "?options=-c%20TimeZone%3DEurope%2FBerlin"
    (tmp_path / "target.json").write_text(json.dumps(config))
    with Sandbox(seed=23, contacts=20) as sb:
        (tmp_path / "tap.json").write_text(json.dumps(
            {"api_url": sb.url, "campaign_id": sb.campaign_id, "campaign_token": sb.token}
        ))
        run_timed(["bash", "-c", pipe_line(f"{tap} --config tap.json", target, tmp_path, False)],
                  env=clean_environment(), timeout=300,
                  what="tap-dialfire | target-postgres (server in Europe/Berlin)")
        assert_exact(postgres_schema, sb)
