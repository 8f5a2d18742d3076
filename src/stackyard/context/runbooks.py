"""The maintenance runbooks of :class:`~stackyard.context.Context`: recovery, the doctor,
upgrades, performance, lineage and schema evolution, incidents and backfills."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackyard.context.core import ContextBase
from stackyard.results import RunResult

if TYPE_CHECKING:
    from stackyard.lineage.diff import SchemaDiff
    from stackyard.lineage.service import LineageService
    from stackyard.runbooks.adopt_dlt import DltAdoptReport
    from stackyard.runbooks.backfill.runbook import BackfillRunbook
    from stackyard.runbooks.backup import BackupRunbook
    from stackyard.runbooks.doctor_report import DoctorReport
    from stackyard.runbooks.evolve import EvolveRunbook
    from stackyard.runbooks.incidents import IncidentRunbook
    from stackyard.runbooks.perf import PerfReport
    from stackyard.runbooks.restore import RestoreRunbook
    from stackyard.runbooks.restore_table import TableRestoreRunbook
    from stackyard.runbooks.upgrade import UpgradeReport
    from stackyard.runbooks.upgrade_test import UpgradeTestResult


class RunbookMethods(ContextBase):
    """The runbooks that keep a platform alive (a part of :class:`Context`)."""

    # ------------------------------------------------------------------ recovery runbooks

    def backups(self, target: str | None = None) -> BackupRunbook:
        """The backup runbook of a target: ``plan()`` then ``run(plan)``."""
        from stackyard.runbooks.backup import BackupRunbook

        return BackupRunbook(self._project_files(), self.session(target))

    def restores(self, target: str | None = None) -> RestoreRunbook:
        """The restore runbook of a target: ``plan(backup)`` then ``run(plan)``."""
        from stackyard.runbooks.restore import RestoreRunbook

        return RestoreRunbook(self._project_files(), self.session(target))

    def table_restores(self, target: str | None = None) -> TableRestoreRunbook:
        """The runbook that brings one table back, beside the original."""
        from stackyard.runbooks.restore_table import TableRestoreRunbook

        return TableRestoreRunbook(self._project_files(), self.session(target))

    def doctor(
        self, target: str | None = None, fix: bool = False, dry_run: bool = False
    ) -> DoctorReport:
        """Check versions, secrets, the warehouse, dlt state, leases, backups and freshness.

        Args:
            target: the target to check; default ``defaults.target``.
            fix: apply the safe repairs (move an unreadable DuckDB WAL aside, release stale
                leases).
            dry_run: with ``fix``, say what it would repair and change nothing.
        """
        from stackyard.runbooks.doctor import Doctor

        secrets_file = self.project_dir / ".stackyard" / "secrets.toml"
        files = self._project_files()
        doctor = Doctor(files, self.warehouse(target), secrets_file, fix=fix, dry_run=dry_run)
        return doctor.examine()

    def upgrade_check(self, constraints: Path | None = None) -> UpgradeReport:
        """Compare the installed stack with the pinned one (or ``constraints``) and list the
        breaking changes in between that this project would notice."""
        from stackyard.runbooks.upgrade import check

        return check(self.config, self.transform_dir, constraints)

    def perf(self, target: str | None = None, runs: int = 20) -> PerfReport:
        """Slowest models and sources with trends, models reading far more than they write,
        and partition/cluster keys from downstream filters (read-only)."""
        from stackyard.runbooks.perf import read_perf

        self.warehouse_file_present(target)  # a lost file is named, not created empty
        return read_perf(self._project_files(), self.warehouse(target), runs)

    def upgrade_test(self, target: str | None = None) -> UpgradeTestResult:
        """Run the project on a clone of a target with the installed versions; the target
        itself, its dlt state and dbt's artifacts are left as they were."""
        from stackyard.config.project import Project
        from stackyard.runbooks.upgrade_test import upgrade_test
        from stackyard.runner.run import RunJob
        from stackyard.session import Sessions

        name = self.target_name(target)

        def run_on(config: Any) -> RunResult:
            targets = {**self.config.targets, name: config}
            clone = Project(
                self.config_file,
                self.config.model_copy(update={"targets": targets}),
                self.secrets,
            )
            sessions = Sessions(clone, self.console)
            try:
                # Every node by dbt: a new dbt or adapter is tested whole, materialisations
                # included, not only the compile the SQL build starts from.
                return RunJob(sessions.get(name), force_build=True, engine="dbt").execute(())
            finally:
                sessions.close()
                self.write_profiles()  # back to the real targets

        return upgrade_test(self._project_files(), self.session(name), run_on)

    # ------------------------------------------------------------------ lineage and evolution

    def lineage(self, target: str | None = None) -> LineageService:
        """Column lineage, impact and schema diff of the dbt project, on a target.

        Raises:
            UsageError: the target's DuckDB file was never made (no run yet): dbt describes
                the models' columns against it (this was "dbt compile could not run", exit 1).
        """
        from stackyard.errors import UsageError
        from stackyard.lineage.service import LineageService

        if not self.warehouse_file_present(target):
            raise UsageError(
                f"target '{self.target_name(target)}' has no warehouse yet: column lineage "
                "reads the columns of the models it has built",
                hint="`stackyard run` first",
            )
        return LineageService(self.session(target))

    def schema_diff(self, target: str | None = None, against: str | None = None) -> SchemaDiff:
        """How the project now changes the shape of its models and sources.

        Args:
            target: whose warehouse describes the SQL; default ``defaults.target``.
            against: a target name (compare with what it has built) or a git ref (compare
                with the project there); default: what ``target`` has built.
        """
        service = self.lineage(target)
        approves = self.config.schema_changes.approves
        if against and against in self.config.targets:
            return service.schema_diff(approves, against_target=self.lineage(against))
        return service.schema_diff(approves, against_ref=against)

    def schema_approve(
        self, spec: str, change: str, reason: str, target: str | None = None
    ) -> dict[str, str]:
        """``stackyard schema approve``: approve a breaking change of ``NODE[.COLUMN]`` once
        its names are checked against the project and ``target``'s warehouse.

        Returns:
            The entry written, with the node and column as ``schema diff`` names them; with
            ``already`` when stackyard.yml approves it already (nothing is written).

        Raises:
            UsageError: no such node or column (with the closest names); nothing is written.
            ConfigError: the entry would make stackyard.yml invalid (e.g. an unknown change).
        """
        node, column = self.lineage(target).change_subject(spec)
        entry = {"node": node, "column": column, "change": change, "reason": reason}
        if self.config.schema_changes.approves(node, column, change):
            # Approved before: a second run wrote the same entry again.
            return {**entry, "already": "approved"}
        self.approve_schema_change(node, column, change, reason)
        return entry

    def approve_schema_change(self, node: str, column: str, change: str, reason: str) -> None:
        """Record an approved breaking change in stackyard.yml (``schema_changes.approved``),
        the names taken as given (:meth:`schema_approve` checks them first; ``evolve``'s
        contract passes the old name of a column it has just removed).

        Raises:
            ConfigError: the entry would make stackyard.yml invalid (e.g. an unknown change).
        """
        from stackyard.config.edit import ProjectFile

        edit = ProjectFile(self.config_file)
        edit.approve_change({"node": node, "column": column, "change": change, "reason": reason})
        edit.save()
        self._sessions.reload()

    def evolve(self, target: str | None = None, *, full_refresh: bool = False) -> EvolveRunbook:
        """The schema-evolution runbook (rename / retype a model's column in phases); with
        ``full_refresh``, every build rebuilds incremental models whole."""
        from stackyard.runbooks.evolve import EvolveRunbook

        session = self.session(target)

        def build(select: list[str]) -> list[str]:
            dbt = session.dbt()
            with session.released():
                results = dbt.build(select=select, full_refresh=full_refresh)
            # dbt's message says why: "dbt build failed on orders" alone left the user to dig
            # through dbt's log.
            return [
                f"{r.name} ({_why(r.message)})" if _why(r.message) else r.name
                for r in results
                if r.failed
            ]

        return EvolveRunbook(
            project_dir=self.project_dir,
            transform_dir=self.transform_dir,
            graph=lambda: self.lineage(session.target).graph(),
            build=build,
            query=lambda sql: list(session.warehouse.query(sql).rows),
            approve=self.approve_schema_change,
            quote=session.warehouse.quote,
            dialect=session.warehouse.DIALECT,
            exact_case=not session.warehouse.CASE_INSENSITIVE_COLUMNS,
            target=session.target,
        )

    def incidents(self, target: str | None = None) -> IncidentRunbook:
        """Incident response: open, list, show, trace, resolve, post-mortem."""
        from stackyard.runbooks.incidents import IncidentRunbook

        self.warehouse_file_present(target)  # a lost file is named, not created empty
        session = self.session(target)
        return IncidentRunbook(session, lambda: self.lineage(session.target).graph())

    def backfill(self, target: str | None = None) -> BackfillRunbook:
        """Backfills of date ranges on a target: run, status, rollback."""
        from stackyard.runbooks.backfill.runbook import BackfillRunbook

        self.warehouse_file_present(target)  # a lost file is named, not created empty
        return BackfillRunbook(self.session(target))

    def adopt_dlt(
        self, spec: str, *, name: str | None = None, dry_run: bool = False
    ) -> DltAdoptReport:
        """Register a module's existing ``@dlt.source`` functions as python sources
        (``stackyard adopt dlt``); see runbooks/adopt_dlt.py.

        The default target is read for an existing pipeline's state when it exists already
        (a DuckDB file is never created just to look).
        """
        from stackyard.runbooks.adopt_dlt import adopt_dlt

        warehouse = self.warehouse()
        path = getattr(warehouse, "path", None)
        missing = isinstance(path, Path) and not path.exists()
        report = adopt_dlt(
            self.project,
            spec,
            name=name,
            dry_run=dry_run,
            query=None if missing else (lambda sql: warehouse.query(sql).rows),
        )
        if report.written:
            self._sessions.reload()  # stackyard.yml changed: later calls see the sources
        return report


def _why(message: str) -> str:
    r"""The first two lines of dbt's message on a failed node, which name the node and the
    database's error (the rest is the SQL around it), on one line.

    >>> _why("Runtime Error in model x (x.sql)\n  Binder Error: no column y\n  LINE 3: ...")
    'Runtime Error in model x (x.sql): Binder Error: no column y'
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return ": ".join(lines[:2])[:300]
