"""The Meltano SDK's standard target tests, run against real SQLite files and a real MariaDB."""

from __future__ import annotations

from pathlib import Path

import pytest
from singer_sdk.testing import TargetTestRunner, get_target_test_class

from target_dialfire_sql.target import TargetDialfireSQL
from tests.support.databases import MariaDBDatabase

_Standard = get_target_test_class(TargetDialfireSQL, config={"url": "unused.db"})


class TestStandardTargetSQLite(_Standard):  # type: ignore[misc,valid-type]
    """Each standard test loads into its own SQLite file."""

    @pytest.fixture
    def runner(self, tmp_path: Path) -> TargetTestRunner:
        return TargetTestRunner(
            target_class=TargetDialfireSQL, config={"url": str(tmp_path / "standard.db")}
        )


@pytest.mark.mariadb
class TestStandardTargetMariaDB(_Standard):  # type: ignore[misc,valid-type]
    """Each standard test loads into its own MariaDB database."""

    @pytest.fixture
    def runner(self, mariadb_database: MariaDBDatabase) -> TargetTestRunner:
        return TargetTestRunner(
            target_class=TargetDialfireSQL, config={"url": mariadb_database.url}
        )
