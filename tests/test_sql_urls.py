"""The old tool's `--url` forms work unchanged as target-dialfire-sql's `url` setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from target_dialfire_sql.errors import LoadError
from target_dialfire_sql.urls import describe, to_sqlalchemy_url


def test_old_mysql_url_becomes_pymysql_with_utf8mb4() -> None:
    url = to_sqlalchemy_url("mysql://dfire:pa%40ss@db.example:3306/reports?parseTime=true")
    assert url.drivername == "mysql+pymysql"
    assert (url.username, url.password) == ("dfire", "pa@ss")
    assert (url.host, url.port) == ("db.example", 3306)
    assert url.database == "reports"
    assert dict(url.query) == {"charset": "utf8mb4"}  # the Go driver's parseTime is dropped


def test_old_sqlserver_url_with_instance_and_database() -> None:
    url = to_sqlalchemy_url("sqlserver://sa:pw@sql.example:1433/SQLEXPRESS/dialfire")
    assert url.drivername == "mssql+pymssql"
    assert url.host == "sql.example\\SQLEXPRESS"
    assert (url.port, url.database, url.password) == (1433, "dialfire", "pw")


def test_sqlserver_url_with_database_only_or_as_query() -> None:
    assert to_sqlalchemy_url("sqlserver://sa:pw@h:1433/dialfire").database == "dialfire"
    url = to_sqlalchemy_url("sqlserver://sa:pw@h/INST?database=dialfire")
    assert (url.host, url.database) == ("h\\INST", "dialfire")


def test_sqlalchemy_urls_pass_through() -> None:
    text = "mssql+pymssql://sa:pw@h:1433/db"
    assert to_sqlalchemy_url(text).render_as_string(hide_password=False) == text


def test_a_file_path_is_an_sqlite_file_whose_folder_is_created(tmp_path: Path) -> None:
    url = to_sqlalchemy_url(str(tmp_path / "new" / "dialfire.db"))
    assert url.drivername == "sqlite"
    assert url.database == str(tmp_path / "new" / "dialfire.db")
    assert (tmp_path / "new").is_dir()


def test_postgres_is_refused_with_a_pointer_and_no_password() -> None:
    with pytest.raises(LoadError) as error:
        to_sqlalchemy_url("postgres://u:secret-pw@h:5432/db?sslmode=disable")
    assert "target-postgres" in str(error.value)
    assert "secret-pw" not in str(error.value)


def test_describe_masks_the_password() -> None:
    shown = describe(to_sqlalchemy_url("mysql://u:secret-pw@h:3306/db"))
    assert "secret-pw" not in shown
    assert shown.startswith("mysql+pymysql://u:***@h:3306/db")
