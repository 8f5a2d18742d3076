"""``stackyard doctor``: the troubleshooting runbook as checks that each name the fix.

Each check either passes (a line saying what was verified) or yields a :class:`Finding`:
what is wrong, why it matters, and the command or edit that fixes it. ``--fix`` applies the
repairs that lose nothing not already lost: moving aside a DuckDB write-ahead log that will
not replay (DuckDB refuses to open the database until it is gone), and releasing leases whose
holder is gone or silent past the lease's own take-over time. ``--fix --dry-run`` says what
``--fix`` would do and changes nothing.
"""

from __future__ import annotations

import shutil
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from stackyard.errors import ConfigError, SecretMissingError, StackyardError
from stackyard.runbooks.backup import ProjectFiles
from stackyard.runbooks.doctor_report import (
    DoctorReport,
    Finding,
    history_lost,
    restore_latest,
    restore_newest,
)
from stackyard.runbooks.local_state import (
    lost_tables,
    pending_packages,
    set_aside,
    transient_tables,
)
from stackyard.runbooks.target_marks import run_before
from stackyard.warehouse.base import Warehouse


@dataclass
class _Notes:
    findings: list[Finding] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    would_repair: list[str] = field(default_factory=list)


class Doctor:
    """Runs every check on one target.

    Args:
        files: the project's folders and config.
        warehouse: the target's warehouse.
        secrets_file: ``.stackyard/secrets.toml``.
        fix: apply safe repairs.
        dry_run: with ``fix``, describe the repairs and change nothing.
    """

    def __init__(
        self,
        files: ProjectFiles,
        warehouse: Warehouse,
        secrets_file: Path,
        fix: bool = False,
        dry_run: bool = False,
    ) -> None:
        self.files = files
        self.warehouse = warehouse
        self.secrets_file = secrets_file
        self.fix = fix and not dry_run
        self.dry_run = dry_run
        self._notes = _Notes()

    def examine(self) -> DoctorReport:
        """Run the checks, in the order a person would: install, files, warehouse, data."""
        checks: list[Callable[[], None]] = [
            self._versions,
            self._secrets,
            self._dbt_project,
            self._wal,
            self._transient_tables,
        ]
        for check in checks:
            check()
        if self._reachable():
            self._pending_packages()
            self._lost_tables()
            self._blocks()
            self._leases()
            self._backup_age()
            self._last_run()
        n = self._notes
        return DoctorReport(
            self.warehouse.target_name,
            tuple(n.findings),
            tuple(n.passed),
            tuple(n.repaired),
            tuple(n.would_repair),
        )

    def _find(self, check: str, what: str, why: str, fix: str, severity: str = "error") -> None:
        self._notes.findings.append(Finding(check, severity, what, why, fix))

    # ------------------------------------------------------------------ install

    def _versions(self) -> None:
        from packaging.requirements import Requirement

        problems = 0
        for line in metadata.requires("stackyard") or []:
            requirement = Requirement(line)
            if requirement.marker is not None:
                continue  # an extra (dev tools): not needed to run
            try:
                installed = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                installed = ""
            if not installed or not requirement.specifier.contains(installed, prereleases=True):
                problems += 1
                self._find(
                    "versions",
                    f"{requirement.name} {installed or '(not installed)'} does not satisfy "
                    f"stackyard's requirement {requirement.specifier}",
                    "stackyard is tested with the pinned stack only; other versions change "
                    "behaviour (dbt and its adapters must share a minor version)",
                    f"pip install '{requirement.name}{requirement.specifier}' (or `stackyard "
                    "upgrade check` for the pinned versions)",
                )
        core = _minor("dbt-core")
        for adapter in ("dbt-duckdb", "dbt-postgres"):
            if core and _minor(adapter) and _minor(adapter) != core:
                problems += 1
                self._find(
                    "versions",
                    f"{adapter} {metadata.version(adapter)} with dbt-core {metadata.version('dbt-core')}",
                    "dbt loads adapters of its own minor version only",
                    f"pip install '{adapter}~={core}.0'",
                )
        if not problems:
            self._notes.passed.append(
                f"versions: Python {sys.version.split()[0]}, dbt-core "
                f"{metadata.version('dbt-core')}, dlt {metadata.version('dlt')}, duckdb "
                f"{metadata.version('duckdb')} satisfy stackyard's requirements"
            )

    def _secrets(self) -> None:
        from stackyard.config.model import SecretRef

        if self.secrets_file.exists():
            mode = stat.S_IMODE(self.secrets_file.stat().st_mode)
            if mode & 0o077:
                self._find(
                    "secrets",
                    f"{self.secrets_file} has mode {mode:o}: other users can read it",
                    "it holds passwords and keys; stackyard refuses to read it like this",
                    f"chmod 600 {self.secrets_file}",
                )
                return
        w = self.warehouse
        missing = []
        for field_name, value in w.config:
            if isinstance(value, SecretRef):
                try:
                    w.secrets.resolve(value, used_for=f"targets.{w.target_name}.{field_name}")
                except SecretMissingError:
                    missing.append((field_name, value.secret))
        for field_name, name in missing:
            self._find(
                "secrets",
                f"secret {name} (targets.{w.target_name}.{field_name}) is not set",
                "stackyard cannot connect to the target without it",
                f'export {name}=… or add `{name} = "…"` to {self.secrets_file} (mode 600)',
            )
        if not missing:
            self._notes.passed.append("secrets: every secret of the target is set, file mode safe")

    def _dbt_project(self) -> None:
        """Every run, build and dbt command reads ``dbt_project.yml`` first and stops at a
        file it cannot read, so a broken one is a finding, not a healthy project."""
        from stackyard.transform.dbt_project import read_dbt_project

        transform = self.files.transform_dir
        try:
            read_dbt_project(transform)
        except ConfigError as exc:
            self._find(
                "dbt_project",
                exc.message,
                "`stackyard run` and every dbt command stop on it before anything runs (exit 2)",
                exc.hint or f"fix {transform / 'dbt_project.yml'}",
            )
        else:
            self._notes.passed.append(f"dbt_project: {transform / 'dbt_project.yml'} reads")

    # ------------------------------------------------------------------ warehouse

    def _wal(self) -> None:
        if self.warehouse.STORAGE != "file":
            return
        import duckdb

        path: Path = self.warehouse.path  # type: ignore[attr-defined]
        wal = Path(f"{path}.wal")
        if not path.exists() or not wal.exists():
            self._notes.passed.append("wal: no write-ahead log waiting to replay")
            return
        try:
            duckdb.connect(str(path), read_only=True).close()
        except duckdb.Error as exc:
            if "WAL" not in str(exc):
                return  # not a WAL problem: the reachability check reports it
            self._unreplayable(path, wal, str(exc))
        else:
            self._notes.passed.append("wal: the write-ahead log replays")

    def _unreplayable(self, path: Path, wal: Path, error: str) -> None:
        since = _mtime(path)
        until = _mtime(wal)
        window = f"changes made between {since:%Y-%m-%d %H:%M:%S} and {until:%H:%M:%S} UTC"
        backups = self.files.backups(self.warehouse.target_name)
        offer = (
            f"; or restore the last backup (taken {backups[-1].created_at:%Y-%m-%d %H:%M} UTC): "
            f"stackyard restore {self.files.backup_folder(backups[-1])} --yes"
            if backups
            else "; no backup of this target exists to restore from"
        )
        stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        quarantine = path.parent / "quarantine" / f"{wal.name}.{stamp}"
        # dlt's local state runs ahead of the rows lost with the log: set aside with it, the
        # next run reads the state the database kept and loads the lost rows again.
        state = path.parent / "quarantine" / f"pipelines.{stamp}"
        if self.dry_run:
            self._notes.would_repair.append(
                f"move the write-ahead log {wal} aside to {quarantine}, and dlt's local state "
                f"of this target to {state}"
            )
        if self.fix:
            quarantine.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(wal, quarantine)
            moved = set_aside(self.files, self.warehouse.target_name, state)
            self._notes.repaired.append(
                f"moved the write-ahead log aside to {quarantine}"
                + (f" and dlt's local state ({len(moved)} pipeline(s)) to {state}" if moved else "")
                + "; the database opens as of its last checkpoint, and `stackyard run` loads "
                f"the lost rows of sources with cursors again; lost: {window}{offer}"
            )
            return
        self._find(
            "wal",
            f"the write-ahead log {wal} will not replay ({error.splitlines()[0][:200]})",
            f"DuckDB refuses to open {path.name} until it is gone; {window} are in it and "
            "cannot be read back",
            f"stackyard doctor --fix (moves it to {quarantine.parent}/; then `stackyard run` "
            f"re-loads sources with cursors){offer}",
        )

    def _transient_tables(self) -> None:
        """dbt-snowflake builds table models as TRANSIENT unless ``transient: false``: read
        from dbt's manifest (or, before the first build, dbt_project.yml) without a driver."""
        if not self.warehouse.TRANSIENT_TABLES_BY_DEFAULT:
            return
        if any(f.check == "dbt_project" for f in self._notes.findings):
            return  # a dbt_project.yml that cannot be read says nothing of its models
        transform = self.files.transform_dir
        manifest = transform / "target" / "manifest.json"
        transient = transient_tables(transform)
        where = f"target '{self.warehouse.target_name}' ({self.warehouse.KIND})"
        if not transient:
            self._notes.passed.append(f"transient: no table model of {where} is transient")
            return
        shown = ", ".join(transient[:8]) + (" …" if len(transient) > 8 else "")
        self._find(
            "transient",
            f"{len(transient) if manifest.is_file() else 'all'} table models on {where} are "
            f"built as TRANSIENT tables, dbt's default there: {shown}",
            "transient tables have no Fail-safe and at most one day of Time Travel, so "
            "`stackyard restore-table --as-of` cannot reach further back and a table lost "
            "after that is gone",
            f"add `+transient: false` under `models:` in {transform / 'dbt_project.yml'} "
            "(or per model), then `stackyard run` rebuilds them as permanent tables",
            severity="warning",
        )

    def _reachable(self) -> bool:
        if any(f.check in ("secrets", "wal") for f in self._notes.findings):
            return False  # connecting would only repeat that finding
        if self.warehouse.STORAGE == "file" and not self.warehouse.path.exists():  # type: ignore[attr-defined]
            return self._no_file()
        try:
            self.warehouse.query("SELECT 1")
        except StackyardError as exc:
            fix = exc.hint or "check the target in stackyard.yml and that the server runs"
            backups = self.files.backups(self.warehouse.target_name)
            if self.warehouse.STORAGE != "file" and backups:
                # A database dropped, or a server that will not start again, comes back from
                # the last backup; created again empty, dlt's cursors would skip its rows.
                last = f"{backups[-1].created_at:%Y-%m-%d %H:%M} UTC"
                fix = (
                    f"if the database was dropped or its server lost: `stackyard restore "
                    f"latest --yes` (last backup: {last}; on a new server, point the target at "
                    "it first) creates it again with dlt's state, whereas a database created "
                    f"empty would leave the cursors past rows it does not have; otherwise {fix}"
                )
            self._find(
                "warehouse",
                f"{self.warehouse.describe()} is not reachable: {exc.message}",
                "nothing can load, build or be checked until it is",
                fix,
            )
            return False
        if self.warehouse.STORAGE == "file" and self._loaded_before() and not self._has_tables():
            # Any command that opened the target after its file was lost (`status`, `sql`,
            # `health` …) created it again, empty: the loss is the same.
            return self._no_file(empty=True)
        self._notes.passed.append(f"warehouse: {self.warehouse.describe()} answers")
        return True

    def _has_tables(self) -> bool:
        found = self.warehouse.query("SELECT count(*) FROM information_schema.tables")
        return bool(found.rows[0][0])

    def _loaded_before(self) -> bool:
        """A mark of the target's runs, a backup of it or dlt pipeline folders of it exist."""
        return run_before(self.files, self.warehouse.target_name)

    def _no_file(self, empty: bool = False) -> bool:
        """A DuckDB target without its file (or, with ``empty``, with a file that holds no
        table at all): new, or lost. Connecting to a missing file would create it empty."""
        path = self.warehouse.path  # type: ignore[attr-defined]
        backups = self.files.backups(self.warehouse.target_name)
        if not self._loaded_before():
            self._notes.passed.append(f"warehouse: no {path.name} yet; the first run creates it")
            return False
        # Without dlt pipelines (a dbt project whose inputs are seeds or tables loaded
        # elsewhere) there is no cursor to run ahead of the lost data: a run rebuilds it.
        loaded = bool(self.files.pipelines_of(self.warehouse.target_name))
        fix = (
            restore_latest(backups)
            if backups
            else "no backup exists: load every source again from its beginning with "
            "`stackyard run --full-refresh` (a plain run would load only rows past the cursors)"
            if loaded
            else "no backup exists: `stackyard run` builds the dbt project again (tables "
            "that only lived in this file, and the run history, cannot come back)"
        )
        self._find(
            "warehouse",
            f"the DuckDB file {path} "
            + ("holds no table (created anew after it was lost)" if empty else "is missing")
            + ", but this target has been loaded before",
            "every table, the run history and the dlt state in it are gone; dlt's local state "
            "still points past the lost data, so a plain run would leave a gap"
            if loaded
            else "every table and the run history in it are gone",
            fix,
        )
        return False

    # ------------------------------------------------------------------ state and data

    def _blocks(self) -> None:
        # Row counts come from metadata, and DuckDB checks a block only when it reads it: a
        # file damaged where nothing had read since passed every check here.
        try:
            tables, rows = self.warehouse.read_every_block()
        except StackyardError as exc:
            backups = self.files.backups(self.warehouse.target_name)
            self._find(
                "blocks",
                exc.message,
                "queries reading those rows fail, and a backup would copy the damage",
                restore_newest(backups),
            )
            return
        if tables:
            self._notes.passed.append(
                f"blocks: every row of {tables} table{'s' if tables != 1 else ''} ({rows:,} rows) "
                "read back, checksums match"
            )

    def _pending_packages(self) -> None:
        pending = pending_packages(self.files, self.warehouse.target_name)
        for pipeline_name, package in pending:
            self._find(
                "pending",
                f"dlt load package {package} of pipeline {pipeline_name} was never loaded",
                "a run was interrupted; its rows are not in the warehouse yet",
                "stackyard run (finishes pending packages first; keyed tables merge, so "
                "nothing is duplicated)",
                severity="warning",
            )
        if not pending:
            self._notes.passed.append("pending: no unfinished dlt load packages")

    def _lost_tables(self) -> None:
        # The warehouse answers and holds tables, but not those dlt's state says it loaded
        # (a file created anew by a later command, a database dropped and created again).
        lost = lost_tables(self.files, self.warehouse)
        backups = self.files.backups(self.warehouse.target_name)
        for one in lost:
            self._find(
                "state",
                one.said(self.warehouse.target_name),
                "the warehouse lost them (its file or database, or a table dropped by hand) "
                "while dlt's cursors stayed ahead: `stackyard run` refuses to load the source, "
                "as it would bring back only rows newer than the cursors",
                (f"{restore_latest(backups)}, or " if backups else "")
                + f"load them again from the source: `stackyard reload {one.source} --yes`",
            )
        emptied = None if lost else history_lost(self.files, self.warehouse, backups)
        if emptied is not None:
            self._notes.findings.append(emptied)
        elif not lost:
            self._notes.passed.append("state: the warehouse has every table dlt's state loaded")

    def _leases(self) -> None:
        from stackyard.metadata.leases import read_leases, release_lease

        now = datetime.now(UTC)
        leases = read_leases(self.warehouse)
        stale = [(lease, why) for lease in leases if (why := lease.abandoned(now))]
        target = self.warehouse.target_name
        for lease, why in stale:
            kind = lease.kind
            held = f"the {kind.what} lease on '{lease.key}' ({kind.table})"
            if self.dry_run:
                self._notes.would_repair.append(f"release {held}, held by {lease.holder}")
            if self.fix:
                if release_lease(self.warehouse, lease):
                    self._notes.repaired.append(f"released {held}: {why}")
                else:
                    self._notes.passed.append(f"leases: {held} was renewed meanwhile; kept")
                continue
            self._find(
                "leases",
                f"{held} is held by {lease.holder}, but {why}",
                f"nothing else can run a {kind.what} of '{lease.key}' while it is held",
                f"stackyard doctor --fix --target {target} (releases it; see first with "
                f"--fix --dry-run){'; ' + kind.take_over if kind.take_over else ''}",
                severity="warning",
            )
        if not stale:
            held = f"{len(leases)} held, all alive" if leases else "none held"
            self._notes.passed.append(f"leases: no stale lease ({held})")

    def _backup_age(self) -> None:
        config = self.files.project.backups
        backups = self.files.backups(self.warehouse.target_name)
        if not backups:
            if "backups" in self.files.project.model_fields_set:
                self._find(
                    "backup",
                    f"target '{self.warehouse.target_name}' has never been backed up",
                    f"backups.rpo_hours is {config.rpo_hours:g}: a lost warehouse could not "
                    "be restored",
                    f"stackyard backup --target {self.warehouse.target_name}",
                )
            return
        last = backups[-1].created_at
        age = (datetime.now(UTC) - last).total_seconds() / 3600
        if age > config.rpo_hours:
            self._find(
                "backup",
                f"the last backup of target '{self.warehouse.target_name}' is {age:.1f} hours "
                f"old ({last:%Y-%m-%d %H:%M} UTC)",
                f"older than the recovery point objective (backups.rpo_hours: "
                f"{config.rpo_hours:g}): restoring now would lose more than that",
                f"stackyard backup --target {self.warehouse.target_name} (and schedule it)",
            )
        else:
            self._notes.passed.append(f"backup: last one {age:.1f} h old, within the RPO")

    def _last_run(self) -> None:
        from stackyard.metadata.history import History

        failing = History(self.warehouse).failing_freshness()
        for source, table, status, loaded, age in failing:
            name = source.removeprefix("dlt_")
            self._find(
                "freshness",
                f"source table {source}.{table} failed its freshness check ({status}: newest "
                f"row loaded {loaded}, {age:.0f} h ago)",
                "models built on it show stale data",
                f"stackyard run --select {name} (and check the source delivers new data)",
            )
        if not failing:
            self._notes.passed.append("freshness: no source table failed its last check")


def _minor(package: str) -> str:
    try:
        return ".".join(metadata.version(package).split(".")[:2])
    except metadata.PackageNotFoundError:
        return ""


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
