"""Real databases for tests: a fresh PostgreSQL schema or MariaDB database per test.

Under ``CI=true`` an unreachable database fails the test instead of skipping it, so a broken
service can never turn the suite green.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({error.__class__.__name__}: {error})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI=true this is a failure, not a skip")
    pytest.skip(message)


@dataclass(frozen=True)
class PostgresSchema:
    """A schema created for one test; `url` reaches the server, `name` is the schema."""

    url: str
    name: str
    engine: sa.Engine
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    database: str = "test"


@dataclass(frozen=True)
class MariaDBDatabase:
    """A database created for one test; `url` points into it."""

    url: str
    name: str
    engine: sa.Engine


@pytest.fixture
def postgres_schema() -> Iterator[PostgresSchema]:
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as error:  # any driver error means the service is not usable
        engine.dispose()
        _unavailable("PostgreSQL at 127.0.0.1:5432", error)
    name = f"t_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'create schema "{name}"'))
    try:
        yield PostgresSchema(url=POSTGRES_URL, name=name, engine=engine)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'drop schema if exists "{name}" cascade'))
        engine.dispose()


@pytest.fixture
def mariadb_database() -> Iterator[MariaDBDatabase]:
    admin = sa.create_engine(MARIADB_URL)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as error:
        admin.dispose()
        _unavailable("MariaDB at 127.0.0.1:3306", error)
    name = f"t_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"create database `{name}` character set utf8mb4"))
    url = MARIADB_URL.rsplit("/", 1)[0] + f"/{name}?charset=utf8mb4"
    engine = sa.create_engine(url)
    try:
        yield MariaDBDatabase(url=url, name=name, engine=engine)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"drop database if exists `{name}`"))
        admin.dispose()
