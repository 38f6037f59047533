"""Turn the destination a user gives into a SQLAlchemy URL.

Users of the old Sync Client V2 pass `--url mysql://u:p@host:3306/db` or
`sqlserver://u:p@host:1433/instance/db`; they should be able to paste that value unchanged.
Anything SQLAlchemy understands (`mysql+pymysql://…`, `mssql+pymssql://…`, `sqlite:///…`) passes
through, and a bare file path means an SQLite file, the default that needs no server.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from target_dialfire_sql.errors import LoadError

#: Query parameters of the old tool's Go drivers that mean nothing to PyMySQL / pymssql.
_GO_DRIVER_ONLY = {"parseTime", "loc", "tls", "timeout", "readTimeout", "writeTimeout",
                   "allowNativePasswords", "interpolateParams", "multiStatements",
                   "collation", "maxAllowedPacket", "encrypt", "TrustServerCertificate",
                   "connection timeout", "dial timeout", "app name", "log"}


def describe(url: str | URL) -> str:
    """The URL with its password masked: the only form of a URL we ever log or raise."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except Exception:  # not a URL: a file path carries no secret
        return str(url)
    return parsed.render_as_string(hide_password=True)


def to_sqlalchemy_url(destination: str) -> URL:
    """Map the `url` setting to a SQLAlchemy URL.

    - `mysql://` / `mariadb://` (the old tool's form) → `mysql+pymysql://…?charset=utf8mb4`
    - `sqlserver://u:p@h:1433/db`, `…/instance/db` or `…/instance?database=db` →
      `mssql+pymssql://…` (an instance becomes pymssql's `host\\instance`)
    - `postgres://` → refused with a pointer to target-postgres, which loads PostgreSQL
    - any other `scheme://` → handed to SQLAlchemy as is
    - anything else is a path to an SQLite file (its folder is created)
    """
    text = destination.strip()
    if not text:
        raise LoadError("the `url` setting is empty; give a database URL or an SQLite file path")
    if "://" not in text:
        return _sqlite_file(text)
    scheme = text.split("://", 1)[0].lower()
    if scheme in {"postgres", "postgresql"} or scheme.startswith("postgresql+"):
        raise LoadError(
            "target-dialfire-sql does not load PostgreSQL; use target-postgres (see the README) "
            "for " + describe(text.replace(scheme, "postgresql", 1))
        )
    try:
        url = make_url(text)
    except Exception as error:
        raise LoadError(
            f"the `url` setting is not a valid database URL ({error.__class__.__name__}); "
            "expected e.g. mysql://user:pass@host:3306/db or a file path"
        ) from None
    if scheme in {"mysql", "mariadb"}:
        return _mysql(url)
    if scheme == "sqlserver":
        return _sqlserver(url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return url


def _sqlite_file(path: str) -> URL:
    file = Path(path).expanduser()
    file.parent.mkdir(parents=True, exist_ok=True)
    return URL.create("sqlite", database=str(file))


def _mysql(url: URL) -> URL:
    query = {k: v for k, v in url.query.items() if k not in _GO_DRIVER_ONLY}
    query.setdefault("charset", "utf8mb4")
    return url.set(drivername="mysql+pymysql", query=query)


def _sqlserver(url: URL) -> URL:
    """Go's `sqlserver://` URL: path `instance/db` or `db`, or `?database=db`."""
    parts = [unquote(p) for p in (url.database or "").split("/") if p]
    query = {k: v for k, v in url.query.items() if k not in _GO_DRIVER_ONLY}
    named = query.pop("database", None)
    database = named if isinstance(named, str) else None
    instance = None
    if len(parts) == 2:
        instance, database = parts
    elif len(parts) == 1:
        if database:  # `sqlserver://h/instance?database=db`
            instance = parts[0]
        else:
            database = parts[0]
    elif len(parts) > 2:
        raise LoadError("a sqlserver:// URL has at most two path parts (instance/db); got "
                        + describe(url))
    host = url.host or "localhost"
    if instance:
        host = f"{host}\\{instance}"
    return sa.engine.URL.create(
        "mssql+pymssql",
        username=url.username,
        password=url.password,
        host=host,
        port=url.port,
        database=database,
        query=query,
    )
