"""`meltano run tap-dialfire target-postgres`, end to end: the sandbox over loopback, Meltano and
its plugins installed from meltano.yml alone, and the machine's PostgreSQL.

Each test gets a fresh schema (`postgres_schema`) and its own Meltano system database, so the
state one test stores is never seen by another.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dialfire_sandbox import Sandbox
from tests.support import processes
from tests.support.databases import PostgresSchema
from tests.support.postgres_rows import (
    STREAMS,
    column_types,
    differences,
    loaded_rows,
    table_names,
)
from tests.support.processes import (
    MELTANO,
    BackgroundCommand,
    MeltanoProject,
    start_background,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


STATE_ID = "dev:tap-dialfire-to-target-postgres"
RUN = ["run", "tap-dialfire", "target-postgres"]


def pipeline_env(
    project: MeltanoProject, state_db: Path, sb: Sandbox, schema: PostgresSchema, **extra: str
) -> dict[str, str]:
    return processes.sync_environment(project, state_db, sb, schema, **extra)


def assert_tables_hold_exactly(schema: PostgresSchema, sb: Sandbox) -> dict[str, list[dict]]:
    loaded = loaded_rows(schema.engine, schema.name)
    problems = differences(loaded, sb.expected())
    assert not problems, "tables differ from the expected rows:\n" + "\n".join(problems)
    return loaded


def stored_state(project: MeltanoProject, env: dict[str, str]) -> dict:
    result = project.meltano(["state", "get", STATE_ID], env)
    return json.loads(result.stdout)


def test_meltano_install_and_run_load_exactly_the_expected_rows(
    meltano_project: MeltanoProject, meltano_state_db: Path, postgres_schema: PostgresSchema
) -> None:
    print(f"[wall time] meltano install (once per session): {meltano_project.install_seconds:.1f}s")
    with Sandbox(seed=11, contacts=40) as sb:
        env = pipeline_env(meltano_project, meltano_state_db, sb, postgres_schema)
        meltano_project.meltano(RUN, env)

        assert table_names(postgres_schema.engine, postgres_schema.name) >= {
            f"dfire_{stream}" for stream in STREAMS
        }
        loaded = assert_tables_hold_exactly(postgres_schema, sb)
        assert all(loaded[stream] for stream in STREAMS), {s: len(r) for s, r in loaded.items()}
        assert stored_state(meltano_project, env).get("singer_state", {}).get("bookmarks")


def test_second_run_reads_only_the_change_feed_and_updates_rows_in_place(
    meltano_project: MeltanoProject, meltano_state_db: Path, postgres_schema: PostgresSchema
) -> None:
    with Sandbox(seed=12, contacts=40) as sb:
        env = pipeline_env(meltano_project, meltano_state_db, sb, postgres_schema)
        meltano_project.meltano(RUN, env)
        first = assert_tables_hold_exactly(postgres_schema, sb)

        sb.advance(minutes=5, new_transactions=12, attach_call_data=4, new_contacts=3,
                   new_inbound_calls=3)
        sb.reset_stats()
        meltano_project.meltano(RUN, env)
        requests = sb.stats()["requests"]

        second = assert_tables_hold_exactly(postgres_schema, sb)
        assert requests["contacts_list"] == 0, f"the second run listed contacts again: {requests}"
        assert requests["change_feed"] >= 1, requests
        assert requests["contacts_fetch"] >= 1, requests
        for stream in ("contacts", "transactions", "inbound_calls"):
            assert len(second[stream]) > len(first[stream]), f"no new {stream} arrived"
        md5_before = {row["$id"]: row["$md5"] for row in first["contacts"]}
        changed_in_place = [
            row["$id"] for row in second["contacts"]
            if row["$id"] in md5_before and row["$md5"] != md5_before[row["$id"]]
        ]
        assert changed_in_place, "no existing contact was updated by the second run"


def test_new_custom_field_becomes_a_new_column(
    meltano_project: MeltanoProject, meltano_state_db: Path, postgres_schema: PostgresSchema
) -> None:
    with Sandbox(seed=13, contacts=30) as sb:
        env = pipeline_env(meltano_project, meltano_state_db, sb, postgres_schema)
        meltano_project.meltano(RUN, env)
        assert "Vertragswert (EUR)" not in column_types(
            postgres_schema.engine, postgres_schema.name, "dfire_contacts"
        )

        sb.advance(minutes=5, new_transactions=10, new_contacts=2,
                   new_field={"name": "Vertragswert (EUR)", "fieldType": "number"})
        sb.advance(minutes=2, new_transactions=5)
        meltano_project.meltano(RUN, env)

        types = column_types(postgres_schema.engine, postgres_schema.name, "dfire_contacts")
        assert types.get("Vertragswert (EUR)") == "numeric", types
        assert_tables_hold_exactly(postgres_schema, sb)


def test_columns_have_sql_types(
    meltano_project: MeltanoProject, meltano_state_db: Path, postgres_schema: PostgresSchema
) -> None:
    with Sandbox(seed=14, contacts=20) as sb:
        env = pipeline_env(meltano_project, meltano_state_db, sb, postgres_schema)
        meltano_project.meltano(RUN, env)
        expected_types = {
            "dfire_contacts": {"$id": "text", "$created_date": "timestamp without time zone",
                               "$extra": "jsonb"},
            "dfire_transactions": {"fired": "timestamp without time zone",
                                   "pause_time_sec": "numeric", "isHI": "boolean",
                                   "revoked": "boolean", "sequence_nr": "bigint",
                                   "data": "jsonb", "task_log_index": "bigint"},
            "dfire_connections": {"started": "timestamp without time zone",
                                  "duration": "numeric", "isThirdPartyConnection": "boolean"},
            "dfire_recordings": {"started": "timestamp without time zone", "location": "text"},
            "dfire_inbound_calls": {"started": "timestamp without time zone",
                                    "dispatch_error": "boolean"},
        }
        for table, wanted in expected_types.items():
            types = column_types(postgres_schema.engine, postgres_schema.name, table)
            assert {c: types.get(c) for c in wanted} == wanted, table
        contacts = sb.expected()["contacts"]
        types = column_types(postgres_schema.engine, postgres_schema.name, "dfire_contacts")
        numeric_fields = [
            column for column in contacts[0]
            if not column.startswith("$")
            and any(isinstance(r[column], int | float) and not isinstance(r[column], bool)
                    for r in contacts)
        ]
        assert numeric_fields, "the sandbox campaign has no number field to check"
        assert {c: types[c] for c in numeric_fields} == dict.fromkeys(numeric_fields, "numeric")


def test_run_killed_half_way_then_run_again_ends_with_exact_rows(
    meltano_project: MeltanoProject,
    meltano_state_db: Path,
    postgres_schema: PostgresSchema,
    background: list[BackgroundCommand],
) -> None:
    with Sandbox(seed=15, contacts=200) as sb:
        env = pipeline_env(meltano_project, meltano_state_db, sb, postgres_schema,
                           TAP_DIALFIRE_MAX_WORKERS="1", TARGET_POSTGRES_BATCH_SIZE_ROWS="25")
        # One fetch of 20 contacts at a time, each slowed down: the kill lands in the middle.
        sb.add_fault(endpoint="contacts_fetch", kind="latency", count=10_000, latency_ms=600)
        run = start_background([MELTANO, *RUN], env=env, cwd=meltano_project.root,
                               what="meltano run (tap killed half-way)")
        background.append(run)
        tap = run.wait_for_descendant("tap-dialfire", with_argument="--catalog", timeout=120)
        deadline = time.monotonic() + 120
        while sb.stats()["requests"]["contacts_fetch"] < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        fetched_before_kill = sb.stats()["requests"]["contacts_fetch"]
        tap.kill()
        code, _out, _err = run.finish(timeout=120)

        assert code != 0, "meltano run reported success although its tap was killed"
        contacts_total = len(sb.expected()["contacts"])
        assert fetched_before_kill * 20 < contacts_total, (
            f"the tap fetched {fetched_before_kill} batches before the kill: not half-way"
        )
        partial = loaded_rows(postgres_schema.engine, postgres_schema.name)
        assert len(partial["contacts"]) < contacts_total
        # Whatever Meltano saved, it must not claim a change-feed position: the listing that
        # every later run would continue from was never finished.
        after_kill = meltano_project.meltano(["state", "get", STATE_ID], env, check=False)
        print(f"after the kill: {fetched_before_kill} fetches, rows "
              f"{ {s: len(r) for s, r in partial.items()} }, state {after_kill.stdout.strip()}")
        if after_kill.returncode == 0 and after_kill.stdout.strip():
            bookmarks = json.loads(after_kill.stdout).get("singer_state", {}).get("bookmarks", {})
            assert not bookmarks.get("contacts", {}).get("feed_position"), bookmarks

        sb.clear_faults()
        meltano_project.meltano(RUN, env)
        assert_tables_hold_exactly(postgres_schema, sb)


#: A PostgreSQL whose sessions default to German time, as many Dialfire customers' servers do
#: (`timezone = 'Europe/Berlin'` in postgresql.conf), simulated for this connection only.
BERLIN_SERVER = "?options=-c%20TimeZone%3DEurope%2FBerlin"


def test_timestamps_stay_utc_on_a_server_in_another_time_zone(
    meltano_project: MeltanoProject, meltano_state_db: Path, postgres_schema: PostgresSchema
) -> None:
    """target-postgres binds zone-aware datetimes, and PostgreSQL turns them into the session's
    local time for a `timestamp` column: without a UTC session every timestamp moves an hour or
    two. meltano.yml gives target-postgres `PGTZ=UTC`."""
    with Sandbox(seed=16, contacts=20) as sb:
        env = pipeline_env(meltano_project, meltano_state_db, sb, postgres_schema,
                           TARGET_POSTGRES_SQLALCHEMY_URL=postgres_schema.url + BERLIN_SERVER)
        meltano_project.meltano(RUN, env)
        assert_tables_hold_exactly(postgres_schema, sb)


LONG_FIELD = "Geburtstag vom Geschäftsführer oder Inhaber des Unternehmens falls bekannt"


def test_a_field_name_over_63_bytes_loads_through_the_documented_stream_map(
    meltano_project: MeltanoProject, meltano_state_db: Path, postgres_schema: PostgresSchema
) -> None:
    """PostgreSQL cuts names at 63 bytes and target-postgres then fails on every run; the
    `stream_maps` workaround of docs/meltano.md ("Known limits") must load such a field."""
    short = "Geburtstag GF (lang)"
    assert f'"{short}": "record.get(\'{LONG_FIELD}\')"' in (
        processes.REPO_ROOT / "docs" / "meltano.md").read_text()
    maps: dict[str, dict[str, str]] = {s: {"__alias__": f"dfire_{s}"} for s in STREAMS}
    maps["contacts"].update({short: f"record.get({LONG_FIELD!r})", LONG_FIELD: "__NULL__"})
    with Sandbox(seed=17, contacts=15) as sb:
        sb.advance(minutes=2, new_transactions=6,
                   new_field={"name": LONG_FIELD, "fieldType": "text"})
        env = pipeline_env(meltano_project, meltano_state_db, sb, postgres_schema,
                           TARGET_POSTGRES_STREAM_MAPS=json.dumps(maps))
        meltano_project.meltano(RUN, env)
        meltano_project.meltano(RUN, env)  # the table exists now: no column is added twice
        expected = sb.expected()
        expected["contacts"] = [
            {(short if k == LONG_FIELD else k): v for k, v in row.items()}
            for row in expected["contacts"]
        ]
        assert any(row[short] for row in expected["contacts"]), "no contact has the field"
        problems = differences(loaded_rows(postgres_schema.engine, postgres_schema.name),
                               expected)
        assert not problems, "\n".join(problems)
