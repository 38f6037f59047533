"""`meltano run tap-dialfire target-dialfire-sql` into MariaDB, configured the way a user of the old
tool would: `TARGET_DIALFIRE_SQL_URL=mysql://user@host:3306/db` in the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialfire_sandbox import Sandbox
from tests.support.databases import MariaDBDatabase
from tests.support.processes import MeltanoProject
from tests.test_sql_end_to_end import Destination, assert_tables_hold_exactly

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]

RUN = ["run", "tap-dialfire", "target-dialfire-sql"]


def test_meltano_run_into_mariadb_updates_rows_in_place(
    meltano_project: MeltanoProject, meltano_state_db: Path, mariadb_database: MariaDBDatabase
) -> None:
    destination = Destination(mariadb_database.url, mariadb_database.engine)
    with Sandbox(seed=21, contacts=40) as sb:
        env = meltano_project.environment(meltano_state_db, {
            "TAP_DIALFIRE_API_URL": sb.url,
            "TAP_DIALFIRE_CAMPAIGN_ID": sb.campaign_id,
            "TAP_DIALFIRE_CAMPAIGN_TOKEN": sb.token,
            "TARGET_DIALFIRE_SQL_URL": f"mysql://root@127.0.0.1:3306/{mariadb_database.name}",
        })
        meltano_project.meltano(RUN, env)
        first = assert_tables_hold_exactly(destination, sb)

        sb.advance(minutes=5, new_transactions=12, attach_call_data=4, new_contacts=0,
                   new_inbound_calls=3)
        meltano_project.meltano(RUN, env)  # continues from the state Meltano stored
        second = assert_tables_hold_exactly(destination, sb)

    md5_before = {row["$id"]: row["$md5"] for row in first["contacts"]}
    assert any(row["$md5"] != md5_before[row["$id"]] for row in second["contacts"]), (
        "no contact was updated in place by the second run"
    )
    assert len(second["transactions"]) > len(first["transactions"])
