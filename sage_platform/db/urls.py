"""Database URL spelling for each driver.

psycopg 3 serves the platform's own code; Dagster's storage needs ``postgresql+psycopg2://``
because dagster-postgres with SQLAlchemy 2.1 breaks on psycopg 3 (a NOTIFY syntax error).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

_SCHEMES = ("postgresql", "postgres")


def _scheme_and_rest(url: str) -> tuple[str, str]:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    return scheme.split("+", 1)[0], rest


def libpq_url(url: str) -> str:
    """The plain ``postgresql://`` form that psycopg and libpq tools (pg_dump) accept."""
    base, rest = _scheme_and_rest(url)
    if base not in _SCHEMES:
        raise ValueError(f"only PostgreSQL URLs are supported, got scheme {base!r}")
    return f"postgresql://{rest}"


def sqlalchemy_url(url: str, driver: str = "psycopg") -> str:
    base, rest = _scheme_and_rest(url)
    if base not in _SCHEMES:
        raise ValueError(f"only PostgreSQL URLs are supported, got scheme {base!r}")
    return f"postgresql+{driver}://{rest}"


def with_database(url: str, database: str) -> str:
    """The same server with another database name."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"
