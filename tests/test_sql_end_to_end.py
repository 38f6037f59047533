"""`tap-dialfire | target-dialfire-sql` as real processes, against the sandbox, into a real SQLite
file and a real MariaDB database: the tables must hold exactly the sandbox's expected rows after
the first load and again after a second load that starts from the state the target emitted."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from dialfire_sandbox import Sandbox
from tests.support.postgres_rows import STREAMS, differences, key_of, normalise
from tests.support.processes import clean_environment

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
PREFIX = "dfire_"
JSON_COLUMNS = {"data", "$extra"}  # the object columns of docs/records.md


@dataclass(frozen=True)
class Destination:
    url: str
    engine: sa.Engine


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Destination]:
    if request.param == "sqlite":
        path = tmp_path / "dialfire.db"
        engine = sa.create_engine(f"sqlite:///{path}")
        yield Destination(str(path), engine)
        engine.dispose()
    else:
        database = request.getfixturevalue("mariadb_database")
        yield Destination(database.url, database.engine)


def sync(
    tmp_path: Path, sb: Sandbox, destination: Destination, state: dict[str, Any] | None
) -> dict[str, Any]:
    """One `tap | target` run; returns the last STATE the target emitted."""
    run = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
    run.mkdir()
    tap_config = {"api_url": sb.url, "campaign_id": sb.campaign_id, "campaign_token": sb.token}
    (run / "tap.json").write_text(json.dumps(tap_config))
    (run / "target.json").write_text(json.dumps({"url": destination.url, "table_prefix": PREFIX}))
    tap_args = [str(BIN / "tap-dialfire"), "--config", str(run / "tap.json")]
    if state is not None:
        (run / "state.json").write_text(json.dumps(state))
        tap_args += ["--state", str(run / "state.json")]
    env = clean_environment()
    with (run / "tap.err").open("w") as tap_err:
        tap = subprocess.Popen(tap_args, stdout=subprocess.PIPE, stderr=tap_err, env=env, cwd=run)
        target = subprocess.run(
            [str(BIN / "target-dialfire-sql"), "--config", str(run / "target.json")],
            stdin=tap.stdout, capture_output=True, text=True, env=env, cwd=run, timeout=300,
            check=False,
        )
        assert tap.stdout is not None
        tap.stdout.close()
        tap_code = tap.wait(timeout=60)
    assert tap_code == 0, (run / "tap.err").read_text()[-3000:]
    assert target.returncode == 0, target.stderr[-3000:]
    states = [json.loads(line) for line in target.stdout.splitlines() if line.strip()]
    assert states, "the target emitted no STATE"
    return states[-1]


def loaded_rows(destination: Destination) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows in the oracle's form: JSON text parsed, tinyint(1) as booleans."""
    result: dict[str, list[dict[str, Any]]] = {}
    with destination.engine.connect() as connection:
        for stream in STREAMS:
            table = sa.Table(f"{PREFIX}{stream}", sa.MetaData(), autoload_with=connection)
            booleans = {
                c.name for c in table.columns
                if isinstance(c.type, mysql.TINYINT) and c.type.display_width == 1
            }
            rows = []
            for mapping in connection.execute(sa.select(table)).mappings():
                row: dict[str, Any] = {}
                for column, value in mapping.items():
                    if column == "$changed":
                        continue
                    if column in JSON_COLUMNS and isinstance(value, str):
                        value = json.loads(value)
                    elif column in booleans and value is not None:
                        value = bool(value)
                    row[column] = normalise(value)
                rows.append(row)
            result[stream] = sorted(rows, key=lambda r: r[key_of(stream)])
    return result


def assert_tables_hold_exactly(destination: Destination, sb: Sandbox) -> dict[str, list[dict]]:
    loaded = loaded_rows(destination)
    problems = differences(loaded, sb.expected())
    assert not problems, "the tables differ from the sandbox's expected rows:\n" + "\n".join(
        problems
    )
    return loaded


def test_second_load_updates_changed_rows_in_place(
    sandbox_factory: Any, destination: Destination, tmp_path: Path
) -> None:
    sb: Sandbox = sandbox_factory(seed=7, contacts=60)
    state = sync(tmp_path, sb, destination, None)
    first = assert_tables_hold_exactly(destination, sb)
    assert all(first[stream] for stream in STREAMS)

    # No new contacts: old inbound calls stay as they were (see tests/test_tap_sync.py).
    sb.advance(minutes=5, new_transactions=12, attach_call_data=4, new_contacts=0,
               new_inbound_calls=3)
    second_state = sync(tmp_path, sb, destination, state)
    second = assert_tables_hold_exactly(destination, sb)

    assert second_state != state
    before = {row["$id"]: row for row in first["contacts"]}
    updated = [row for row in second["contacts"] if row != before.get(row["$id"], row)]
    assert updated, "some contacts changed and were updated in place"
    assert len(second["contacts"]) == len(first["contacts"])
    assert len(second["transactions"]) > len(first["transactions"])


def test_a_new_custom_field_becomes_a_column(
    sandbox_factory: Any, destination: Destination, tmp_path: Path
) -> None:
    sb: Sandbox = sandbox_factory(seed=3, contacts=40)
    state = sync(tmp_path, sb, destination, None)
    assert "Lieblingsfarbe" not in loaded_rows(destination)["contacts"][0]

    sb.advance(minutes=5, new_transactions=10, new_contacts=0, new_inbound_calls=0,
               new_field={"name": "Lieblingsfarbe", "fieldType": "text"})
    sync(tmp_path, sb, destination, state)
    loaded = assert_tables_hold_exactly(destination, sb)
    assert all("Lieblingsfarbe" in row for row in loaded["contacts"])
    assert any(row["Lieblingsfarbe"] for row in loaded["contacts"])
