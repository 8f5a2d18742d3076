"""The differential harness for every source kind: sql_database on SQLite, Postgres and
MariaDB; filesystem CSV, JSONL and Parquet; rest_api on a local HTTP server; a user's Python
source (run by test_harness_sql.py and test_harness_files_api.py: two files, so that parallel
test workers share them). Random histories of upstream changes (inserts, updates, deletes, rows at the last
cursor value, a column added, a column renamed, an integer column widened) and faults (the
source unreachable for a run, the run killed with SIGKILL at a random moment) are interleaved
with ``stackyard run``, ``reload`` and ``run --full-refresh``; after every command the
warehouse must equal the model (tests/integrity/model_kinds.py): no row dropped, duplicated,
rounded or turned into NULL, and the rows the command reports equal what it loaded.

By default only the named history of each kind runs (kill -9 in four kinds);
STACKYARD_INTEGRITY_LONG=1 adds many random ones.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests.integrity.conftest import PROFILE
from tests.integrity.helpers import cli_json
from tests.integrity.model_kinds import SourceModel, canonical
from tests.integrity.upstreams import TABLES, open_kind, rows_of

_pick = st.integers(0, 7)
CHANGE = st.one_of(
    st.tuples(st.just("insert_accounts"), st.integers(1, 3)),
    st.tuples(st.just("update_account"), _pick),
    st.tuples(st.just("delete_account"), _pick),
    st.tuples(st.just("new_events"), st.integers(1, 3)),
    st.tuples(st.just("events_at_boundary"), st.integers(1, 2)),
    st.tuples(st.just("change_plans"), _pick),
    st.tuples(st.just("add_column"), _pick),
    st.tuples(st.just("rename_column"), _pick),
    st.tuples(st.just("widen"), _pick),
)
COMMAND = st.one_of(
    st.just(("run", None)),
    st.just(("run", None)),
    st.just(("reload", None)),
    st.just(("full_refresh", None)),
    st.just(("outage", None)),
)
# kill -9 costs a process start and a wait: one branch of fifteen (one_of flattens)
STEP = st.one_of(CHANGE, COMMAND, st.tuples(st.just("kill"), st.sampled_from([0.5, 2.0, 4.0])))

# One history per kind that meets every change and fault once (the named example): rows at
# the last cursor value, before and after a load; a column added, then renamed; a delete; an
# outage; an integer column widened (the load fails, or CSV rejects the row) and the reload
# that takes the new type; a kill -9 (only for the kinds in KILLED: each costs a process).
EVERYTHING = [
    ("insert_accounts", 2), ("events_at_boundary", 2), ("run", None),
    ("events_at_boundary", 1), ("update_account", 1), ("add_column", 0), ("outage", None),
    ("rename_column", 2), ("delete_account", 0), ("widen", 1), ("new_events", 2), ("run", None),
    ("reload", None), ("kill", 2.0), ("insert_accounts", 1), ("full_refresh", None),
]  # fmt: skip
KILLED = {"sqlite", "postgres", "csv", "rest"}


class Harness:
    def __init__(self, kind_name: str, root: Path, server_url: str | None) -> None:
        from stackyard.project import init_project

        self.stack = ExitStack()
        self.project = root / f"p-{time.monotonic_ns()}"
        init_project(self.project)
        self.kind = open_kind(kind_name, self.project, self.stack, server_url)
        self.model = SourceModel(self.kind)
        config = yaml.safe_load((self.project / "stackyard.yml").read_text())
        config["monitors"] = {"enabled": False}
        entry = self.kind.entry()
        # The outage step expects the run to fail, not to wait out the default retries.
        entry["retries"] = {**entry.get("retries", {}), "count": 0}
        config["sources"] = {"src": entry}
        (self.project / "stackyard.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.trail: list[str] = []
        self.counts_unknown = False

    def close(self) -> None:
        self.stack.close()

    def step(self, name: str, arg: Any) -> None:
        self.trail.append(f"{name}({arg!r})" if arg is not None else name)
        if name == "outage":
            self.kind.set_reachable(False)
            self.command("run")
            self.kind.set_reachable(True)
            self.kind.publish(self.model.up)
        elif name == "kill":
            self.kill(arg)
        elif name in ("run", "reload", "full_refresh"):
            self.command(name)
        else:
            getattr(self.model, name)(arg)
            self.kind.publish(self.model.up)

    def command(self, name: str) -> None:
        expected = self.model.run(refresh=name != "run")
        if name == "reload":
            args = ["reload", "src", "--yes"]
        else:
            args = ["run", *(["--full-refresh"] if name == "full_refresh" else [])]
        code, result = cli_json(*args, "-p", str(self.project), env=self.kind.env)
        where = " → ".join(self.trail)
        assert code == expected.exit_code, f"{where}: exit {code}, promised {expected}: {result}"
        counts = result["counts"]
        if not self.counts_unknown:
            printed = (counts["rows_loaded"], counts["rows_rejected"])
            promised = (expected.rows_loaded, expected.rows_rejected)
            assert printed == promised, f"{where}: counts {printed}, promised {promised}"
        self.counts_unknown = False
        self.check(where)
        self.check_history(where, result["run_id"], counts)

    def check_history(self, where: str, run_id: str, counts: dict[str, int]) -> None:
        """The run's history row and its per-table loads say what it printed, and the rows
        carrying its load ids are that many."""
        import duckdb

        con = duckdb.connect(str(self.project / ".stackyard/dev.duckdb"), read_only=True)
        try:
            history = con.execute(
                "SELECT rows_loaded, rows_rejected FROM stackyard.runs WHERE run_id = ?", [run_id]
            ).fetchall()
            loads = con.execute(
                "SELECT coalesce(sum(row_count), 0), string_agg(load_ids, ',') "
                "FROM stackyard.loads WHERE run_id = ?",
                [run_id],
            ).fetchall()[0]
            present = {
                r[0]
                for r in con.sql(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'src'"
                ).fetchall()
            }
            ids = [i for i in (loads[1] or "").replace(" ", "").split(",") if i]
            carried = sum(
                con.execute(
                    f"SELECT count(*) FROM src.{t} WHERE _dlt_load_id IN "
                    f"(SELECT unnest(?::VARCHAR[]))",
                    [ids],
                ).fetchall()[0][0]
                for t in TABLES
                if t in present
            )
        finally:
            con.close()
        printed = (counts["rows_loaded"], counts["rows_rejected"])
        assert history == [printed], f"{where}: history {history}, printed {printed}"
        assert loads[0] == printed[0], f"{where}: loads say {loads[0]}, printed {printed[0]}"
        assert carried == printed[0], f"{where}: {carried} rows carry the run's load ids"

    def check(self, where: str) -> None:
        wanted = self.model.tables()
        for table in TABLES:
            found = canonical(rows_of(self.project, table))
            assert found == wanted[table], (
                f"{where}: src.{table} holds {found}, promised {wanted[table]}"
            )

    def kill(self, after_seconds: float) -> None:
        """A run killed with SIGKILL after a while; the next run must finish the job."""
        run = subprocess.Popen(
            [sys.executable, "-m", "stackyard.cli.main", "run", "-p", str(self.project)],
            env={**os.environ, **self.kind.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            run.wait(timeout=after_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        self.counts_unknown = True  # a pending load package may be finished by the next run
        self.command("run")


def server_url_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """The upstream database URL of a sql_database kind, from the shared fixtures (a
    throwaway Postgres or MariaDB database)."""
    if kind == "postgres":
        database = request.getfixturevalue("pg_database")
        return (
            f"postgresql://{database['user']}@{database['host']}:{database['port']}/"
            f"{database['database']}"
        )
    if kind == "mariadb":
        return str(request.getfixturevalue("mariadb_database"))
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'upstream.sqlite'}"
    return None


def history(kind: str, root: Path, server_url: str | None, steps: list[tuple[str, Any]]) -> None:
    """Set up a project with the kind's source, load it, apply the steps, load again."""
    harness = Harness(kind, root, server_url)
    try:
        harness.model.insert_accounts(3)
        harness.model.new_events(2)
        harness.model.change_plans(0)
        harness.kind.publish(harness.model.up)
        for step in [("run", None), *steps, ("run", None)]:
            harness.step(*step)
    finally:
        harness.close()


def check_histories(kind: str, root: Path, server_url: str | None) -> None:
    """The named history of the kind (every change and fault once), then random ones: none
    by default, many with STACKYARD_INTEGRITY_LONG=1."""
    named = [s for s in EVERYTHING if s[0] != "kill" or kind in KILLED]

    @settings(settings.get_profile(PROFILE + "-kinds"))
    @given(st.lists(STEP, min_size=2, max_size=6))
    @example(named)
    def histories(steps: list[tuple[str, Any]]) -> None:
        history(kind, root, server_url, steps)

    histories()
