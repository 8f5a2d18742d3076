"""``stackyard upgrade test``: run the project on a clone of a target with the installed stack.

The clone is a copy of the DuckDB file (after a checkpoint) or a Postgres database created
from the target as its template; it gets a target of its own (``<target>_upgrade_test``), so
dlt's pipelines and stackyard's history for it never mix with the real target's, and dbt's
artifacts in ``transform/target`` are put back afterwards. The clone is dropped at the end
unless ``keep`` is set.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from stackyard.config.private import private_folder
from stackyard.errors import (
    ConfigError,
    Interrupted,
    UsageError,
    WarehouseError,
    WarehouseUnreachableError,
)
from stackyard.metadata.leases import holder_alive, this_process
from stackyard.results import RunResult
from stackyard.runbooks.backup import ProjectFiles
from stackyard.session import Session

STACK = ("dbt-core", "dlt", "duckdb", "sqlglot", "psycopg")


@dataclass(frozen=True)
class UpgradeTestResult:
    """The run on the clone.

    Attributes:
        target: the target that was cloned.
        clone: the clone (a file or a database), dropped after the run.
        versions: the versions the run used.
        run: the run's result.
    """

    target: str
    clone: str
    versions: dict[str, str]
    run: RunResult

    @property
    def exit_code(self) -> int:
        """The run's exit code: 0 when everything loaded, built and passed."""
        return self.run.exit_code

    @property
    def summary(self) -> str:
        """What happened, in one paragraph."""
        stack = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        verdict = "passed" if self.run.ok else "FAILED"
        return (
            f"upgrade test {verdict} on a clone of target '{self.target}' with {stack}: "
            f"{sum(x.rows for x in self.run.loads):,} rows loaded, "
            f"{self.run.count('model', 'success')} models built, "
            f"{self.run.count('test', 'pass')} tests passed, "
            f"{self.run.count('test', 'fail', 'error')} failed; the target was not touched"
            + self._failures()
        )

    def _failures(self) -> str:
        """What failed, one line each, and what to do: the clone and its run history are
        dropped, so this is the only place the failures are shown."""
        if self.run.ok:
            return ""
        lines = [f"load {x.source}: {x.error}" for x in self.run.loads if x.status == "failed"]
        lines += [
            f"{n.resource_type} {n.name}: {n.status}" + (f" ({n.message})" if n.message else "")
            for n in self.run.nodes
            if n.failed
        ]
        # The loads and nodes above say more than their steps; a build that failed as a whole
        # (a project that does not compile) has no failed node, only its step.
        covered = ("load", "dbt build") if lines else ("load",)
        lines += [
            f"{s.name}: {s.detail}"
            for s in self.run.steps
            if s.status == "failed" and not s.name.startswith(covered)
        ]
        shown = [f"\n  ✘ {line.splitlines()[0]}" for line in lines[:10]]
        if len(lines) > 10:
            shown.append(f"\n  … and {len(lines) - 10} more (`--json` lists them all)")
        return "".join(shown) + (
            "\nnext: run `stackyard run` on the target itself: if it fails the same way, the "
            "new versions are not the cause; otherwise fix what is listed (see `stackyard "
            "upgrade check`) and test again"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data for ``--json``."""
        return {
            "target": self.target,
            "clone": self.clone,
            "versions": self.versions,
            "ok": self.run.ok,
            "run": self.run.to_dict(),
        }


def installed_versions() -> dict[str, str]:
    """The installed versions of the stack's main packages."""
    found = {}
    for name in STACK:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


@contextmanager
def cloned(files: ProjectFiles, session: Session) -> Iterator[Any]:
    """A target config for a clone of the session's target, dropped on exit.

    Raises:
        UsageError: the engine cannot be cloned from here.
        WarehouseUnreachableError: the target's Postgres database does not exist.
        WarehouseError: Postgres could not create the clone (sessions on the target).
    """
    warehouse = session.warehouse
    config: Any = warehouse.config
    if warehouse.STORAGE == "file":
        clone = (
            files.project_dir / ".stackyard" / "upgrade-test" / f"{warehouse.target_name}.duckdb"
        )
        private_folder(clone.parent)
        clone.unlink(missing_ok=True)
        # No file yet (or a lost one): the clone starts empty. Connecting to checkpoint would
        # create the target's file, and a lost file would then look like a new, empty one.
        if warehouse.path.exists():  # type: ignore[attr-defined]
            warehouse.execute("CHECKPOINT")
            shutil.copyfile(warehouse.path, clone)  # type: ignore[attr-defined]
        session.release()
        try:
            yield config.model_copy(update={"path": str(clone)})
        finally:
            shutil.rmtree(clone.parent, ignore_errors=True)
        return
    if warehouse.STORAGE != "server":
        raise UsageError(
            f"upgrade test clones DuckDB and Postgres targets; {warehouse.KIND} has no driver here",
            hint="clone it yourself (Snowflake: CREATE DATABASE … CLONE) and add it as a target",
        )
    import psycopg

    name = f"{config.database[:45]}__upgrade_test"
    admin = {**warehouse.connect_kwargs(), "dbname": "postgres"}  # type: ignore[attr-defined]
    session.release()
    quoted, source = warehouse.quote(name), warehouse.quote(config.database)
    try:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {quoted} TEMPLATE {source}")
    except psycopg.errors.InvalidCatalogName as exc:
        raise WarehouseUnreachableError(
            f"cannot clone {config.database}: {exc}",
            hint="check the database in stackyard.yml and that it exists (createdb "
            f"{config.database}); a target lost on its server comes back with `stackyard "
            "restore latest --yes`",
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        # Retrying never helps: the target's user may not create databases.
        raise ConfigError(
            f"cannot clone {config.database}: {exc}; nothing was done",
            hint=f"the target's user needs CREATEDB to clone it: `ALTER ROLE "
            f'"{admin.get("user")}" CREATEDB` as a superuser, then run the test again',
        ) from None
    except psycopg.Error as exc:
        raise WarehouseError(
            f"cannot clone {config.database}: {exc}",
            hint="CREATE DATABASE … TEMPLATE needs no other sessions on the target; retry when "
            "no run or BI tool is connected",
        ) from None
    try:
        yield config.model_copy(update={"database": name})
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")


def upgrade_test(
    files: ProjectFiles,
    session: Session,
    run_on: Callable[[Any], RunResult],
) -> UpgradeTestResult:
    """Run the project on a clone of the session's target.

    The run uses the target's own name (so dlt's pipelines and cursors are the target's, and
    match the clone's data); the pipeline folders and dbt's artifacts are copied aside first
    and put back afterwards, so the real target's state is as it was.

    Args:
        files: the project's folders and config.
        session: the session of the target to clone.
        run_on: runs the project on the target with its config replaced by the given one.
    """
    warehouse = session.warehouse
    target = warehouse.target_name
    put_back_state(files, target)  # an earlier test that was killed: its state first
    saved_state = _saved(files, target)
    partial = saved_state.with_name(saved_state.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    folders = [p.relative_to(files.pipelines_dir) for p in files.pipelines_of(target)]
    for where in folders:
        shutil.copytree(files.pipelines_dir / where, partial / _PIPELINES / where, symlinks=True)
    partial.mkdir(parents=True, exist_ok=True)
    (partial / _FOLDERS).write_text("".join(f"{w.as_posix()}\n" for w in folders), "utf-8")
    (partial / _HOLDER).write_text(this_process("upgrade test", target), encoding="utf-8")
    # Complete only once renamed: a copy cut short is discarded, the real state untouched.
    partial.rename(saved_state)
    # The "anything new?" answers and the monitors' kept measurements too: the clone's run
    # would record them as its own (a file the target did not have is removed afterwards).
    from stackyard.monitors.reuse import CACHE_FILE

    run_state = [files.project_dir / ".stackyard" / n for n in ("probes.json", CACHE_FILE)]
    kept = [*files.dbt_artifacts(), *(p for p in run_state if p.is_file())]
    absent = [p for p in run_state if not p.is_file()]
    artifacts = {p: p.read_bytes() for p in kept}
    try:
        with cloned(files, session) as config:
            result = run_on(config)
            clone = str(getattr(config, "path", None) or getattr(config, "database", ""))
    except KeyboardInterrupt as exc:
        # The run's own advice (run again) was about the clone, which is dropped by now.
        raise Interrupted(
            f"the upgrade test on a clone of '{target}' was stopped; the clone is dropped and "
            f"'{target}' itself was not touched",
            hint="run `stackyard upgrade test` again to test the upgrade",
        ) from exc
    finally:
        put_back_state(files, target, mine=True)
        for path, content in artifacts.items():
            path.write_bytes(content)
        for path in absent:
            path.unlink(missing_ok=True)
    return UpgradeTestResult(warehouse.target_name, clone, installed_versions(), result)


def put_back_state(files: ProjectFiles, target: str, *, mine: bool = False) -> bool:
    """Put a target's dlt state back as it was before an upgrade test, if one left it aside.

    The test runs the clone under the target's own pipeline names, so while it runs the
    target's pipeline folders hold the clone's cursors. A test that was killed (``kill -9``,
    a lost machine) could not put them back: the next run then started from the clone's
    cursors and skipped rows the real target never received. Runs and the next test call
    this first; a test still running (its process alive) is left alone.

    Args:
        files: the project's folders.
        target: the target.
        mine: called by the test that set the state aside (its own process).

    Returns:
        Whether the state was put back.
    """
    saved = _saved(files, target)
    holder = saved / _HOLDER
    if not holder.is_file():
        return False
    if not mine and holder_alive(holder.read_text(encoding="utf-8")):
        return False
    for pipeline in files.pipelines_of(target):
        shutil.rmtree(pipeline)
    for where in (saved / _FOLDERS).read_text(encoding="utf-8").splitlines():
        shutil.copytree(saved / _PIPELINES / where, files.pipelines_dir / where, symlinks=True)
    # Done once the holder is gone: a put-back cut short before is done again, whole.
    holder.unlink()
    shutil.rmtree(saved)
    if not any(saved.parent.iterdir()):
        saved.parent.rmdir()
    return True


def _saved(files: ProjectFiles, target: str) -> Path:
    return files.project_dir / ".stackyard" / "upgrade-test-state" / target


_PIPELINES = "pipelines"
_FOLDERS = "folders"
_HOLDER = "holder"

__all__ = ["UpgradeTestResult", "put_back_state", "upgrade_test"]
