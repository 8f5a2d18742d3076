"""Shared fixtures: real engines only. Postgres and MariaDB tests skip with the reason when the
server is unreachable, except under CI=true, where an unreachable server fails them."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_DSN = os.environ.get("STACKYARD_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(what: str, reason: str) -> None:
    """Skip, or fail under CI, when a real component is missing."""
    message = f"{what} unreachable: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: real components are required)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_admin_dsn() -> str:
    """The DSN of a Postgres superuser connection, after checking the server answers."""
    import psycopg

    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", f"{PG_DSN}: {exc}")
    return PG_DSN


@pytest.fixture()
def pg_database(pg_admin_dsn: str) -> Iterator[dict[str, object]]:
    """A throwaway Postgres database, dropped afterwards; yields its connection settings."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    name = f"stackyard_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = conninfo_to_dict(pg_admin_dsn)
    try:
        yield {
            "host": info.get("host", "127.0.0.1"),
            "port": int(info.get("port", 5432)),
            "user": info.get("user", "postgres"),
            "database": name,
        }
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write(path: Path, text: str) -> Path:
    """Write dedented text, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def example_on_postgres(root: Path, db: dict[str, object], *, default: bool = False) -> None:
    """Point the example project's ``prod`` target at a throwaway Postgres database (its
    user, no password); ``default``: make it the default target too."""
    text = (root / "stackyard.yml").read_text()
    text = text.replace("user: stackyard", f"user: {db['user']}")
    text = text.replace("database: shop", f"database: {db['database']}")
    text = text.replace("    password: {secret: SHOP_PROD_PASSWORD}", "")
    if default:
        text = text.replace("  target: dev", "  target: prod")
    (root / "stackyard.yml").write_text(text)


MYSQL_URL = os.environ.get("STACKYARD_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


@pytest.fixture()
def mariadb_database() -> Iterator[str]:
    """A throwaway MariaDB database, dropped afterwards; yields its SQLAlchemy URL."""
    import sqlalchemy

    admin = sqlalchemy.create_engine(MYSQL_URL)
    name = f"stackyard_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"CREATE DATABASE `{name}`"))
    except sqlalchemy.exc.OperationalError as exc:
        unavailable("MariaDB", f"{MYSQL_URL}: {str(exc).splitlines()[0]}")
    base = MYSQL_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


# The secrets scan end-to-end tests use (tests/secret_scan.py).
from tests.secret_scan import secret_scan  # noqa: E402,F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the longest first: Spark, then the other end-to-end (`slow`) files.

    `make test` hands whole files to workers in collection order (`--dist loadfile
    --no-loadscope-reorder`), each docs page as a file of its own (see below). Started last,
    the Spark file alone would keep one worker busy long after the others have finished;
    started first, the short files fill the gap.
    """

    def weight(item: pytest.Item) -> int:
        file_markers = {mark.name for mark in item.iter_markers()}
        return 0 if "spark" in file_markers else 1 if "slow" in file_markers else 2

    slow_files: dict[str, int] = {}
    for item in items:
        file = item.nodeid.split("::", 1)[0]
        slow_files[file] = min(slow_files.get(file, 2), weight(item))
    items.sort(key=lambda item: slow_files[item.nodeid.split("::", 1)[0]])


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`--dist loadfile`, except that each docs page goes to a worker as a file of its own.

    tests/test_docs.py runs every page of the docs as one test; each lasts as long as a whole
    file of end-to-end tests, and as one file they ran one after another on one worker (about
    1,000 s). (pytest-xdist's own `loadgroup` cannot do this with pytest 9: the group it adds
    to a test's id is lost.)
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    from tests.test_docs import worker_unit

    class FilesAndPages(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return worker_unit(nodeid) or str(super()._split_scope(nodeid))

    return FilesAndPages(config, log)
