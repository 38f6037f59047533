"""Follow mode: the `dialfire-sync-every-minute` schedule and the cron line of docs/meltano.md,
run for two "minutes" against the sandbox and PostgreSQL (dbsync2's `db_sync`)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from dialfire_sandbox import Sandbox
from tests.support.databases import PostgresSchema
from tests.support.postgres_rows import differences, loaded_rows
from tests.support.processes import MELTANO, MeltanoProject, run_timed, sync_environment

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]



def assert_exact(schema: PostgresSchema, sb: Sandbox) -> None:
    problems = differences(loaded_rows(schema.engine, schema.name), sb.expected())
    assert not problems, "tables differ from the expected rows:\n" + "\n".join(problems)


def test_schedule_then_cron_line_follow_the_campaign_minute_by_minute(
    meltano_project: MeltanoProject,
    meltano_state_db: Path,
    postgres_schema: PostgresSchema,
    tmp_path: Path,
) -> None:
    with Sandbox(seed=41, contacts=30) as sb:
        env = sync_environment(meltano_project, meltano_state_db, sb, postgres_schema)
        meltano_project.meltano(["schedule", "run", "dialfire-sync-every-minute"], env)
        assert_exact(postgres_schema, sb)

        # The next minute, as cron runs it (docs/meltano.md), continuing from the same state.
        sb.advance(minutes=1, new_transactions=6, attach_call_data=2, new_contacts=1,
                   new_inbound_calls=1)
        sb.reset_stats()
        lock = tmp_path / "dialfire-sync.lock"
        cron_line = (
            f"cd {shlex.quote(str(meltano_project.root))} && flock -n {shlex.quote(str(lock))} "
            f"{shlex.quote(MELTANO)} --environment=dev run dialfire-sync"
        )
        run_timed(["bash", "-c", cron_line], env=env, what="cron line: meltano run dialfire-sync")
        requests = sb.stats()["requests"]
        assert requests["contacts_list"] == 0, f"the cron run listed contacts again: {requests}"
        assert requests["change_feed"] >= 1, requests
        assert_exact(postgres_schema, sb)
