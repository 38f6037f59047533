"""target-dialfire-sql as users run it: the console script, settings from the environment,
one clear line and a non-zero exit on failure, STATE only for committed rows."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import MariaDBDatabase

TARGET = str(Path(sys.executable).with_name("target-dialfire-sql"))

MESSAGES = [
    {"type": "SCHEMA", "stream": "contacts", "key_properties": ["$id"],
     "schema": {"type": "object", "properties": {"$id": {"type": "string"},
                                                 "Tätigkeit": {"type": ["string", "null"]}}}},
    {"type": "RECORD", "stream": "contacts", "record": {"$id": "A1", "Tätigkeit": "Vertrieb"}},
    {"type": "STATE", "value": {"bookmarks": {"contacts": {"replication_key_value": "1"}}}},
]


def run_target(
    args: list[str], messages: list[dict[str, Any]], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_DIALFIRE_SQL_")}
    return subprocess.run(
        [TARGET, *args],
        input="".join(json.dumps(m) + "\n" for m in messages),
        capture_output=True,
        text=True,
        env={**clean_env, **(env or {})},
        timeout=120,
        check=False,
    )


def printed_states(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "ERROR" in line]


def test_settings_come_from_the_environment_with_config_env(tmp_path: Path) -> None:
    database = tmp_path / "env.db"
    result = run_target(
        ["--config", "ENV"],
        MESSAGES,
        env={"TARGET_DIALFIRE_SQL_URL": str(database),
             "TARGET_DIALFIRE_SQL_TABLE_PREFIX": "dfire_"},
    )
    assert result.returncode == 0, result.stderr
    assert printed_states(result.stdout) == [MESSAGES[2]["value"]]
    with sqlite3.connect(database) as connection:
        stored = connection.execute('SELECT "$id", "Tätigkeit" FROM dfire_contacts').fetchall()
    assert stored == [("A1", "Vertrieb")]


def test_a_failed_write_exits_non_zero_with_one_line_and_no_state(tmp_path: Path) -> None:
    database = tmp_path / "fail.db"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"url": str(database)}))
    bad = {"type": "RECORD", "stream": "contacts", "record": {"$id": "K" * 300}}
    result = run_target(["--config", str(config)], [*MESSAGES[:2], bad, MESSAGES[2]])
    assert result.returncode == 1
    assert result.stdout.strip() == ""  # no STATE: the batch holding A1 was not committed
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert "table contacts, column '$id'" in errors[0].replace('"', "")
    assert "Traceback" not in result.stderr
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT COUNT(*) FROM contacts").fetchone() == (0,)


def test_an_unreachable_database_names_the_url_without_its_password(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"url": "mysql://dialfire:s3cret-Pa55@127.0.0.1:1/reports"}))
    result = run_target(["--config", str(config)], MESSAGES)
    assert result.returncode == 1
    assert "s3cret-Pa55" not in result.stderr + result.stdout
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert "cannot connect to mysql+pymysql://dialfire:***@127.0.0.1:1/reports" in errors[0]
    assert "Traceback" not in result.stderr


def test_about_lists_the_settings_with_url_secret() -> None:
    result = subprocess.run(
        [TARGET, "--about", "--format", "json"], capture_output=True, text=True, check=True
    )
    settings = json.loads(result.stdout)["settings"]["properties"]
    assert settings["url"]["secret"] is True
    assert settings["url"]["default"] == "output/dialfire.db"
    assert settings["table_prefix"]["default"] == ""
    assert {"batch_size_rows", "default_target_schema", "load_method"} <= set(settings)


def test_a_record_that_breaks_its_schema_exits_non_zero_naming_the_problem(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"url": str(tmp_path / "invalid.db")}))
    schema_message = {
        "type": "SCHEMA", "stream": "contacts", "key_properties": ["$id"],
        "schema": {"type": "object", "properties": {"$id": {"type": "string"},
                                                    "Umsatz": {"type": ["number", "null"]}}},
    }
    bad = {"type": "RECORD", "stream": "contacts", "record": {"$id": "A1", "Umsatz": "viel"}}
    result = run_target(["--config", str(config)], [schema_message, bad, MESSAGES[2]])
    assert result.returncode == 1
    assert result.stdout.strip() == ""
    last = error_lines(result.stderr)[-1]
    assert "target-dialfire-sql: the input was refused" in last
    assert "'viel' is not of type 'number'" in last


@pytest.mark.mariadb
def test_the_old_tools_mysql_url_loads_into_mariadb(
    tmp_path: Path, mariadb_database: MariaDBDatabase
) -> None:
    """`--url mysql://user@host:3306/db` from dbsync2 works unchanged, twice (an upsert)."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "url": f"mysql://root@127.0.0.1:3306/{mariadb_database.name}", "table_prefix": "dfire_",
    }))
    changed = {"type": "RECORD", "stream": "contacts",
               "record": {"$id": "A1", "Tätigkeit": "Geschäftsführung"}}
    for messages in ([*MESSAGES], [MESSAGES[0], changed, MESSAGES[2]]):
        result = run_target(["--config", str(config)], messages)
        assert result.returncode == 0, result.stderr
        assert printed_states(result.stdout) == [MESSAGES[2]["value"]]
    with mariadb_database.engine.connect() as connection:
        stored = connection.exec_driver_sql(
            "SELECT `$id`, `Tätigkeit` FROM dfire_contacts"
        ).fetchall()
    assert [tuple(row) for row in stored] == [("A1", "Geschäftsführung")]
