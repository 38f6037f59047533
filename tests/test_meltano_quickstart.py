"""`bash scripts/quickstart.sh`, the README's first command, run as a user runs it.

It reuses the session's `meltano install` (through MELTANO_SYS_DIR_ROOT) so the test costs one
sync, and writes its SQLite file and Meltano state into the test's temporary directory.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from dialfire_sandbox import Sandbox
from tests.support.databases import MariaDBDatabase
from tests.support.processes import REPO_ROOT, MeltanoProject, run_timed
from tests.test_sql_end_to_end import Destination, assert_tables_hold_exactly

pytestmark = [pytest.mark.e2e]


STREAMS = ("contacts", "transactions", "connections", "recordings", "inbound_calls")
COUNT_LINE = re.compile(r"^\s+(\w+)\s+(\d+)$", re.MULTILINE)


def quickstart(
    project: MeltanoProject, tmp_path: Path, what: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    environment = project.environment(tmp_path / "meltano-state.db", env)
    return run_timed(["bash", str(REPO_ROOT / "scripts/quickstart.sh")], env=environment,
                     timeout=600, check=check, what=what)


def counts_in(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        return {t: conn.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}


def expected_counts(sb: Sandbox) -> dict[str, int]:
    return {f"dfire_{stream}": len(rows) for stream, rows in sb.expected().items()}


def test_quickstart_syncs_the_sandbox_into_sqlite_and_prints_row_counts_twice_in_a_row(
    meltano_project: MeltanoProject, tmp_path: Path
) -> None:
    db = tmp_path / "demo.db"
    with Sandbox(seed=7, contacts=30) as same_world:  # the demo's seed, as an oracle
        wanted = expected_counts(same_world)
    for attempt in ("first", "second"):
        result = quickstart(meltano_project, tmp_path, f"quickstart.sh, sandbox ({attempt} run)",
                            {"QUICKSTART_DB": str(db), "QUICKSTART_CONTACTS": "30"})
        printed = {table: int(n) for table, n in COUNT_LINE.findall(result.stdout)}
        assert printed == wanted, result.stdout
        assert counts_in(db) == wanted
        assert "starting the Dialfire sandbox" in result.stdout


def test_quickstart_with_a_campaign_in_the_environment_syncs_that_campaign(
    meltano_project: MeltanoProject, tmp_path: Path
) -> None:
    db = tmp_path / "campaign.db"
    with Sandbox(seed=31, contacts=25, token="a-real-looking-token") as campaign:
        env = {
            "TAP_DIALFIRE_API_URL": campaign.url,  # stands in for https://api.dialfire.com
            "TAP_DIALFIRE_CAMPAIGN_ID": campaign.campaign_id,
            "TAP_DIALFIRE_CAMPAIGN_TOKEN": campaign.token,
            "QUICKSTART_DB": str(db),
        }
        result = quickstart(meltano_project, tmp_path, "quickstart.sh, campaign (first run)", env)
        assert f"syncing Dialfire campaign {campaign.campaign_id}" in result.stdout
        assert "starting the Dialfire sandbox" not in result.stdout
        assert counts_in(db) == expected_counts(campaign)
        assert "a-real-looking-token" not in result.stdout + result.stderr

        # Run again after the campaign changed: incremental, from the state of the first run.
        campaign.advance(minutes=5, new_transactions=8, new_contacts=2, new_inbound_calls=2)
        campaign.reset_stats()
        result = quickstart(meltano_project, tmp_path, "quickstart.sh, campaign (second run)", env)
        assert "changes since the last run" in result.stdout
        assert campaign.stats()["requests"]["contacts_list"] == 0
        assert counts_in(db) == expected_counts(campaign)

        # The database file is gone but Meltano's state is not: start over, lose nothing.
        db.unlink()
        result = quickstart(meltano_project, tmp_path, "quickstart.sh, campaign (no file)", env)
        assert "no database yet" in result.stdout
        assert counts_in(db) == expected_counts(campaign)


def test_quickstart_refuses_half_a_campaign_with_one_clear_line(
    meltano_project: MeltanoProject, tmp_path: Path
) -> None:
    result = quickstart(meltano_project, tmp_path, "quickstart.sh, id without token",
                        {"TAP_DIALFIRE_CAMPAIGN_ID": "ABCDEFGHJKLMNPQR",
                         "QUICKSTART_DB": str(tmp_path / "never.db")}, check=False)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("quickstart: only one of TAP_DIALFIRE_CAMPAIGN_ID"), result.stderr
    assert not (tmp_path / "never.db").exists()


def test_quickstart_with_a_wrong_token_says_so_and_never_prints_the_token(
    meltano_project: MeltanoProject, tmp_path: Path
) -> None:
    with Sandbox(seed=32, contacts=5, token="the-right-token") as campaign:
        env = {
            "TAP_DIALFIRE_API_URL": campaign.url,
            "TAP_DIALFIRE_CAMPAIGN_ID": campaign.campaign_id,
            "TAP_DIALFIRE_CAMPAIGN_TOKEN": "a-wrong-secret-token",
            "QUICKSTART_DB": str(tmp_path / "refused.db"),
        }
        result = quickstart(meltano_project, tmp_path, "quickstart.sh, wrong token", env,
                            check=False)
    assert result.returncode != 0
    assert "refused campaign" in result.stderr and campaign.campaign_id in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("quickstart: meltano run")
    assert "a-wrong-secret-token" not in result.stdout + result.stderr


@pytest.mark.mariadb
def test_after_the_quickstart_a_load_into_another_database_still_gets_everything(
    meltano_project: MeltanoProject, tmp_path: Path, mariadb_database: MariaDBDatabase
) -> None:
    """The quickstart's position covers its SQLite file only. A user who then follows
    docs/meltano.md (`TARGET_DIALFIRE_SQL_URL=mysql://… meltano run tap-dialfire
    target-dialfire-sql`) must get every row into the new database, not just the changes since
    the quickstart ran."""
    with Sandbox(seed=33, contacts=25, token="a-real-looking-token") as campaign:
        env = {
            "TAP_DIALFIRE_API_URL": campaign.url,
            "TAP_DIALFIRE_CAMPAIGN_ID": campaign.campaign_id,
            "TAP_DIALFIRE_CAMPAIGN_TOKEN": campaign.token,
            "QUICKSTART_DB": str(tmp_path / "campaign.db"),
        }
        quickstart(meltano_project, tmp_path, "quickstart.sh, campaign", env)
        campaign.advance(minutes=5, new_transactions=8, new_contacts=1, new_inbound_calls=1)
        meltano_project.meltano(
            ["run", "tap-dialfire", "target-dialfire-sql"],
            meltano_project.environment(tmp_path / "meltano-state.db", {
                **env,
                "TARGET_DIALFIRE_SQL_URL": f"mysql://root@127.0.0.1:3306/{mariadb_database.name}",
            }),
        )
        assert_tables_hold_exactly(
            Destination(mariadb_database.url, mariadb_database.engine), campaign
        )


def test_quickstart_with_another_campaign_into_the_same_file_loads_all_of_it(
    meltano_project: MeltanoProject, tmp_path: Path
) -> None:
    """A user tries a test campaign first, then the real one, with the same SQLite file: the
    second campaign must not continue from the first campaign's position."""
    db = tmp_path / "campaign.db"
    with Sandbox(seed=34, contacts=10, token="first-token") as first, \
            Sandbox(seed=35, contacts=20, token="second-token") as second:
        for campaign in (first, second):
            quickstart(meltano_project, tmp_path, f"quickstart.sh, campaign {campaign.campaign_id}",
                       {"TAP_DIALFIRE_API_URL": campaign.url,
                        "TAP_DIALFIRE_CAMPAIGN_ID": campaign.campaign_id,
                        "TAP_DIALFIRE_CAMPAIGN_TOKEN": campaign.token,
                        "QUICKSTART_DB": str(db)})
        with sqlite3.connect(db) as conn:
            stored = {r[0] for r in conn.execute('select "$id" from dfire_contacts')}
        assert {c["$id"] for c in second.expected()["contacts"]} <= stored
