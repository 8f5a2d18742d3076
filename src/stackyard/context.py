"""The façade: one object that loads a project and does everything stackyard does.

The CLI, the Python API and tests all go through :class:`Context`; a CLI command parses its
options, calls one method here, and renders what it returns.

>>> from stackyard import Context                      # doctest: +SKIP
>>> result = Context("demo").run(target="dev")         # doctest: +SKIP
>>> result.ok, result.count("test", "pass")            # doctest: +SKIP
(True, 61)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackyard.config.model import ProjectConfig
from stackyard.config.project import Project
from stackyard.config.secrets import Secrets
from stackyard.console import Console, NullConsole
from stackyard.errors import UsageError
from stackyard.metadata.history import History, RunSummary
from stackyard.results import RunResult
from stackyard.session import Session, Sessions, write_profiles
from stackyard.warehouse import QueryResult, Warehouse

if TYPE_CHECKING:
    from stackyard.infra.service import AccessControl
    from stackyard.lineage.diff import SchemaDiff
    from stackyard.lineage.service import LineageService
    from stackyard.metadata.run_leases import Lease
    from stackyard.monitors.service import Monitoring
    from stackyard.runbooks.backfill.runbook import BackfillRunbook
    from stackyard.runbooks.backup import BackupRunbook, ProjectFiles
    from stackyard.runbooks.ci import CiResult
    from stackyard.runbooks.deploy import DeployResult
    from stackyard.runbooks.doctor import DoctorReport
    from stackyard.runbooks.evolve import EvolveRunbook
    from stackyard.runbooks.incidents import IncidentRunbook
    from stackyard.runbooks.perf import PerfReport
    from stackyard.runbooks.reload import ReloadPlan
    from stackyard.runbooks.restore import RestoreRunbook
    from stackyard.runbooks.restore_table import TableRestoreRunbook
    from stackyard.runbooks.security import SecurityReport
    from stackyard.runbooks.sources import SourceAddResult, SourcesRunbook
    from stackyard.runbooks.upgrade import UpgradeReport
    from stackyard.runbooks.upgrade_test import UpgradeTestResult
    from stackyard.runbooks.users import UsersRunbook
    from stackyard.transform.dbt import Dbt
    from stackyard.transform.inventory import Inventory


class Context:
    """A loaded stackyard project, and the owner of its warehouse connections.

    Use it in a ``with`` block (the CLI does) so every connection it opened is closed at the
    end; :meth:`close` does the same by hand.

    Args:
        path: the project folder, a folder inside it, or its stackyard.yml; default: the
            current folder, searching upward.
        console: where progress goes; default: nowhere.
        environ: environment for secret lookup; default: ``os.environ``.

    Raises:
        ProjectNotFoundError: no stackyard.yml was found.
        ConfigError: stackyard.yml is invalid (the message lists every problem by line).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        console: Console | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        project = Project.load(Path(path) if path else Path.cwd(), environ)
        self._sessions = Sessions(project, console or NullConsole())

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the project

    @property
    def console(self) -> Console:
        """Where progress goes."""
        return self._sessions.console

    @console.setter
    def console(self, console: Console) -> None:
        self._sessions.use_console(console)

    @property
    def project(self) -> Project:
        """The project as read (re-read after a command of this Context changed it)."""
        return self._sessions.project

    @property
    def config(self) -> ProjectConfig:
        """stackyard.yml, validated."""
        return self.project.config

    @property
    def config_file(self) -> Path:
        """The project's stackyard.yml."""
        return self.project.config_file

    @property
    def project_dir(self) -> Path:
        """The project folder."""
        return self.project.project_dir

    @property
    def secrets(self) -> Secrets:
        """The project's secrets."""
        return self.project.secrets

    @property
    def transform_dir(self) -> Path:
        """The dbt project folder."""
        return self.project.transform_dir

    # ------------------------------------------------------------------ targets

    def target_name(self, target: str | None) -> str:
        """The target to use: the one given, else ``defaults.target``.

        Raises:
            UsageError: the name is not a target in stackyard.yml.
        """
        return self.project.target_name(target)

    def session(self, target: str | None = None) -> Session:
        """The session of a target: its warehouse, console and dbt."""
        return self._sessions.get(target)

    def warehouse(self, target: str | None = None) -> Warehouse:
        """The warehouse of a target (connected lazily, on first query)."""
        return self.session(target).warehouse

    def close(self) -> None:
        """Close every warehouse connection this context opened."""
        self._sessions.close()

    # ------------------------------------------------------------------ dbt

    def write_profiles(self) -> Path:
        """Generate ``transform/profiles.yml`` from the targets; return its path."""
        return write_profiles(self.project)

    def dbt(
        self, target: str | None = None, on_node: Callable[[str, str, str], None] | None = None
    ) -> Dbt:
        """A :class:`~stackyard.transform.dbt.Dbt` runner for a target, profiles refreshed."""
        return self.session(target).dbt(on_node)

    # ------------------------------------------------------------------ jobs

    def run(
        self,
        target: str | None = None,
        select: Sequence[str] = (),
        force_build: bool = False,
        full_refresh: bool = False,
        refresh: Mapping[str, Sequence[str]] | None = None,
        variables: Mapping[str, Any] | None = None,
        lease_wait: float = 0.0,
        retry_loads: bool = True,
    ) -> RunResult:
        """Load every selected source, build and test the dbt project, check freshness,
        and record the run in the warehouse.

        Args:
            target: target name; default ``defaults.target``.
            select: source names and/or dbt selectors; empty for everything.
            force_build: run ``dbt build`` even when nothing changed since the last run.
            full_refresh: the selected sources (every enabled one without a selection) start
                over: dlt state reset, tables replaced; dbt rebuilds with ``--full-refresh``.
            refresh: finer than ``full_refresh``: ``{source: tables}`` to start over.
            variables: dbt vars over ``transform.vars``.
            lease_wait: seconds to wait for a run holding a lease to end (0: refuse).
            retry_loads: retry failed loads per ``retries:`` (off: the orchestrator does).

        Returns:
            The run's result; ``result.exit_code`` is 0 or 1.

        Raises:
            ConfigError: the project cannot run as configured (exit code 2).
            WarehouseUnreachableError: the target cannot be reached (exit code 2).
            RunLeaseHeldError: another run holds a lease this one needs (exit code 1).
        """
        from stackyard.runner.run import RunJob
        from stackyard.runner.selection import check_selection

        session = self.session(target)
        check_selection(self.project, select, lambda s: session.dbt().list_nodes(s))
        if full_refresh and refresh is None:
            chosen = [s for s in select if s in self.config.sources] or [
                n for n, s in self.config.sources.items() if s.enabled and not select
            ]
            refresh = {s: () for s in chosen}
        job = RunJob(
            session,
            force_build=force_build,
            refresh=refresh,
            lease_wait=lease_wait,
            retry_loads=retry_loads,
            variables=variables,
        )
        return job.execute(select)

    def deploy_prefect(self) -> DeployResult:
        """Write prefect.yaml and the flows module (docs/orchestration.md)."""
        from stackyard.runbooks.deploy import deploy_prefect

        return deploy_prefect(self.project)

    def ci_github(self) -> CiResult:
        """Write the GitHub Actions workflow: checks on pull requests, apply on main."""
        from stackyard.runbooks.ci import write_github_workflow

        return write_github_workflow(self.project_dir, self.config)

    def transform_inventory(self, target: str | None = None) -> Inventory:
        """What the dbt project holds, as dbt parses it (packages installed first when the
        project asks for some that are missing).

        Raises:
            TransformError: the packages cannot be installed, or the project does not parse.
        """
        from stackyard.transform.dbt import wanted_packages
        from stackyard.transform.inventory import inventory

        dbt = self.session(target).dbt()
        manifest = dbt.manifest()
        return inventory(manifest, tuple(wanted_packages(self.transform_dir)))

    def reload_plan(self, spec: str, target: str | None = None) -> ReloadPlan:
        """The steps ``stackyard reload SOURCE[.TABLE]`` would take (nothing is changed)."""
        from stackyard.runbooks.reload import reload_plan

        return reload_plan(self.config, spec, self.target_name(target))

    def reload(self, plan: ReloadPlan) -> RunResult:
        """Carry out a reload plan: one run of its source, started over."""
        return self.run(target=plan.target, select=plan.select, refresh=plan.refresh)

    def status(self, target: str | None = None, limit: int = 10) -> list[RunSummary]:
        """The most recent runs on a target, newest first."""
        return History(self.warehouse(target)).recent(limit)

    def leases(self, target: str | None = None) -> list[Lease]:
        """The run leases held on a target now: sources and the transformation being run."""
        from stackyard.metadata.run_leases import RunLeases

        return RunLeases(self.warehouse(target)).held()

    def sql(self, query: str, target: str | None = None) -> QueryResult:
        """Run one SQL statement on a target and return its rows."""
        if not query.strip():
            raise UsageError("the query is empty", hint='pass it quoted: stackyard sql "select 1"')
        return self.warehouse(target).query(query)

    # ------------------------------------------------------------------ runbooks

    def sources(self, target: str | None = None) -> SourcesRunbook:
        """The "Adding Data Sources" runbook (add / remove / list / show) on a target."""
        from stackyard.runbooks.sources import SourcesRunbook

        return SourcesRunbook(self.session(target))

    def source_add(
        self,
        name: str,
        kind: str,
        options: dict[str, Any],
        *,
        load: bool = True,
        target: str | None = None,
    ) -> SourceAddResult:
        """Add a source end to end: config, first load, dbt source and staging models, checks.

        Args:
            name: the new source's name.
            kind: a registered source kind (``stackyard source add --help`` lists them).
            options: the kind's keys as in stackyard.yml (None for options not given).
            load: run the first load and generate models (``--no-load`` turns it off).
            target: where to load; default ``defaults.target``.
        """
        runbook = self.sources(target)
        result = runbook.add(name, runbook.entry(name, kind, options), load=load)
        self._sessions.reload()  # stackyard.yml changed: later calls see the new source
        return result

    def access(self) -> AccessControl:
        """Warehouse access control: plan, apply, policy checks, review."""
        from stackyard.infra.service import AccessControl

        return AccessControl(self.project, self._sessions)

    def users(self) -> UsersRunbook:
        """The "Adding Users" runbook: add, rotate-key, remove."""
        from stackyard.runbooks.users import UsersRunbook

        return UsersRunbook(self.project, self._sessions)

    def security_check(
        self,
        target: str | None = None,
        *,
        rotation_days: int = 90,
        live_state: Path | None = None,
    ) -> SecurityReport:
        """The security checks (``stackyard security check``); see runbooks/security.py."""
        from stackyard.runbooks.security import security_check

        return security_check(
            self.project,
            self.access(),
            target,
            rotation_days=rotation_days,
            live_state=live_state,
        )

    def monitoring(self) -> Monitoring:
        """Monitors on demand, table health, known incidents and the HTML report."""
        from stackyard.monitors.service import Monitoring

        return Monitoring(self.project, self._sessions)

    # ------------------------------------------------------------------ recovery runbooks

    def _project_files(self) -> ProjectFiles:
        from stackyard.runbooks.backup import ProjectFiles

        return ProjectFiles(self.config, self.project_dir, self.transform_dir)

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
                return RunJob(sessions.get(name), force_build=True).execute(())
            finally:
                sessions.close()
                self.write_profiles()  # back to the real targets

        return upgrade_test(self._project_files(), self.session(name), run_on)

    # ------------------------------------------------------------------ lineage and evolution

    def lineage(self, target: str | None = None) -> LineageService:
        """Column lineage, impact and schema diff of the dbt project, on a target."""
        from stackyard.lineage.service import LineageService

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
            return service.schema_diff(approves, against_warehouse=self.warehouse(against))
        return service.schema_diff(approves, against_ref=against)

    def approve_schema_change(self, node: str, column: str, change: str, reason: str) -> None:
        """Record an approved breaking change in stackyard.yml (``schema_changes.approved``).

        Raises:
            ConfigError: the entry would make stackyard.yml invalid (e.g. an unknown change).
        """
        from stackyard.config.edit import ProjectFile

        edit = ProjectFile(self.config_file)
        edit.approve_change({"node": node, "column": column, "change": change, "reason": reason})
        edit.save()
        self._sessions.reload()

    def evolve(self, target: str | None = None) -> EvolveRunbook:
        """The schema-evolution runbook (rename / retype a model's column in phases)."""
        from stackyard.runbooks.evolve import EvolveRunbook

        session = self.session(target)

        def build(select: list[str]) -> list[str]:
            dbt = session.dbt()
            with session.released():
                results = dbt.build(select=select)
            return [r.name for r in results if r.failed]

        return EvolveRunbook(
            project_dir=self.project_dir,
            transform_dir=self.transform_dir,
            graph=lambda: self.lineage(session.target).graph(),
            build=build,
            query=lambda sql: list(session.warehouse.query(sql).rows),
            approve=self.approve_schema_change,
            quote=session.warehouse.quote,
        )

    def incidents(self, target: str | None = None) -> IncidentRunbook:
        """Incident response: open, list, show, trace, resolve, post-mortem."""
        from stackyard.runbooks.incidents import IncidentRunbook

        session = self.session(target)
        return IncidentRunbook(session, lambda: self.lineage(session.target).graph())

    def backfill(self, target: str | None = None) -> BackfillRunbook:
        """Backfills of date ranges on a target: run, status, rollback."""
        from stackyard.runbooks.backfill.runbook import BackfillRunbook

        return BackfillRunbook(self.session(target))
