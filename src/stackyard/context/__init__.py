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
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackyard.context.runbooks import RunbookMethods
from stackyard.errors import UsageError, did_you_mean
from stackyard.metadata.history import History, RunSummary
from stackyard.results import RunResult
from stackyard.warehouse import QueryResult
from stackyard.warehouse.statements import statement_count

if TYPE_CHECKING:
    from stackyard.infra.service import AccessControl
    from stackyard.metadata.run_leases import Lease
    from stackyard.monitors.health import HealthReport
    from stackyard.monitors.service import Monitoring
    from stackyard.runbooks.ci import CiResult
    from stackyard.runbooks.deploy import DeployResult
    from stackyard.runbooks.reload import ReloadPlan
    from stackyard.runbooks.security import SecurityReport
    from stackyard.runbooks.sources import SourceAddResult, SourcesRunbook
    from stackyard.runbooks.users import UsersRunbook
    from stackyard.transform.dbt import Dbt
    from stackyard.transform.inventory import Inventory


class Context(RunbookMethods):
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

    # ------------------------------------------------------------------ dbt

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
        state: Path | None = None,
        engine: str = "auto",
        will_retry: bool = False,
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
            state: a folder holding another version's dbt ``manifest.json`` (e.g. main's,
                from ``stackyard dbt-manifest``): ``state:`` selectors compare to it, a
                selection matching nothing builds nothing, and only the sources the selected
                models read are loaded.
            will_retry: an orchestrator runs it again if it fails: a failed run's alerts
                are held (``RunResult.will_retry``).
            engine: how the build runs: ``auto`` (table and view models and data tests as
                compiled SQL on the warehouse, the rest by dbt), ``dbt`` (``dbt build``) or
                ``sql`` (as ``auto``, refusing when a node needs dbt).

        Returns:
            The run's result; ``result.exit_code`` is 0 or 1.

        Raises:
            ConfigError: the project cannot run as configured (exit code 2).
            WarehouseUnreachableError: the target cannot be reached (exit code 2).
            RunLeaseHeldError: another run holds a lease this one needs (exit code 1).
            EngineRefusedError: ``engine="sql"`` and a node only dbt builds (exit code 2).
        """
        from stackyard.runner.run import RunJob
        from stackyard.runner.selection import check_selection

        # dbt reads a space in one selector as a union: `--select 'shop_db orders+'` is two, and
        # a source name among them was otherwise taken for a dbt selector that matched nothing.
        select = [part for name in select for part in (name.split() or [name])]
        state = state.resolve() if state is not None else None  # dbt reads it from transform/
        if state is not None and not (state / "manifest.json").is_file():
            raise UsageError(
                f"--state {state} holds no manifest.json",
                hint="write one from the version to compare with: `stackyard dbt-manifest "
                f"--out {state}` in a checkout of it",
            )
        if state is None and any("state:" in s for s in select):
            raise UsageError(
                "a state: selector compares with another version's manifest: it needs --state",
                hint="write main's with `stackyard dbt-manifest --out main-state` in a checkout "
                "of main, then pass `--state main-state`",
            )
        from stackyard.transform.dbt import profile_name

        # Without a dbt project (or with a dbt_project.yml that cannot be read) the run fails
        # at its build: refused before a load moves a cursor, so exit 2 still means nothing
        # was attempted.
        profile_name(self.project.transform_dir)
        session = self.session(target)
        from stackyard.runbooks.upgrade_test import put_back_state

        # A killed `upgrade test` left the clone's cursors in this target's dlt state.
        put_back_state(self._project_files(), session.warehouse.target_name)

        def list_nodes(selectors: list[str]) -> list[str]:
            dbt = session.dbt()
            dbt.state = state
            return dbt.list_nodes(selectors)

        check_selection(self.project, select, list_nodes, empty_ok=state is not None)
        if self.config.monitors.enabled:
            from stackyard.monitors.lineage import Lineage
            from stackyard.monitors.targets import refuse_entries_naming_one_table

            # Refused before a load moves a cursor, from the models the last parse found (the
            # pass after the build checks again, against this build's models).
            lineage = Lineage.load(self.project.transform_dir, session.warehouse.target_name)
            refuse_entries_naming_one_table(self.config, lineage)
        if engine not in ("dbt", "auto", "sql"):
            raise UsageError(
                f"--engine takes dbt, auto or sql, not {engine!r}"
                + did_you_mean(engine, ("dbt", "auto", "sql"))
            )
        chosen = [s for s in select if s in self.config.sources] or [
            n for n, s in self.config.sources.items() if s.enabled and not select
        ]
        from stackyard.runbooks.source_schemas import check_functions

        check_functions(self.config, self.project_dir, chosen)
        if full_refresh and refresh is None:
            refresh = {s: () for s in chosen}
        job = RunJob(
            session,
            force_build=force_build,
            refresh=refresh,
            lease_wait=lease_wait,
            retry_loads=retry_loads,
            variables=variables,
            state=state,
            engine=engine,
            will_retry=will_retry,
        )
        result = job.execute(select)
        from stackyard.runbooks.target_marks import mark_run

        # Kept outside the warehouse, so that losing it (a DuckDB file deleted, a database
        # dropped and created again) is told from never running.
        mark_run(self.project_dir, session.warehouse.target_name, result.run_id)
        return result

    def dbt_manifest(self, out: Path, target: str | None = None) -> Path:
        """Parse the dbt project (nothing runs against the warehouse) and copy its
        ``manifest.json`` into ``out``, for ``stackyard run --state`` elsewhere.

        Raises:
            TransformError: the project does not parse.
        """
        import shutil

        dbt = self.session(target).dbt()
        dbt.manifest()
        out.mkdir(parents=True, exist_ok=True)
        path = out / "manifest.json"
        shutil.copyfile(self.project.transform_dir / "target" / "manifest.json", path)
        return path

    def deploy_prefect(self, *, force: bool = False, dry_run: bool = False) -> DeployResult:
        """Write prefect.yaml and the flows module (docs/orchestration.md); a file edited by
        hand is overwritten only with ``force`` (kept as ``<file>.bak``)."""
        from stackyard.runbooks.deploy import deploy_prefect

        return deploy_prefect(self.project, force=force, dry_run=dry_run)

    def ci_github(self, *, force: bool = False, dry_run: bool = False) -> CiResult:
        """Write the GitHub Actions workflow: checks on pull requests, apply on main; a
        workflow edited by hand is overwritten only with ``force`` (kept as ``<file>.bak``)."""
        from stackyard.runbooks.ci import write_github_workflow

        return write_github_workflow(self.project_dir, self.config, force=force, dry_run=dry_run)

    def transform_inventory(self, target: str | None = None) -> Inventory:
        """What the dbt project holds, as dbt parses it (packages installed first when the
        project asks for some that are missing).

        Raises:
            TransformError: the packages cannot be installed, or the project does not parse.
        """
        from stackyard.transform.dbt_packages import wanted_packages
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
        """The most recent runs on a target, newest first.

        Raises:
            WarehouseUnreachableError: the target's DuckDB file is gone after it was loaded.
            WarehouseLockedError: another process holds the DuckDB file (a run in progress:
                named, with what it runs and since when).
        """
        if not self.warehouse_file_present(target):
            return []
        history = History(self.warehouse(target))
        runs = self._read(target, "the run history cannot be read", lambda: history.recent(limit))
        if not runs and not history.kept():  # a database dropped and created again
            name = self.target_name(target)
            self.refuse_if_run_before(
                name,
                f"target '{name}' has no run history, but it has been run or loaded before: "
                "its warehouse was emptied or replaced",
            )
        return runs

    def leases(self, target: str | None = None) -> list[Lease]:
        """The run leases held on a target now: sources and the transformation being run
        (while a run in another process holds a DuckDB file, as that run mirrors them)."""
        from stackyard.errors import WarehouseLockedError
        from stackyard.metadata.run_leases import RunLeases

        if not self.warehouse_file_present(target):
            return []
        leases = RunLeases(self.warehouse(target))
        try:
            return leases.mirrored() or leases.held()  # the file is not opened under a run
        except WarehouseLockedError:
            mirrored = leases.mirrored()  # written since the first look
            if not mirrored:
                raise
            return mirrored

    def sql(self, query: str, target: str | None = None) -> QueryResult:
        """Run one SQL statement on a target and return its rows."""
        if not query.strip():
            raise UsageError("the query is empty", hint='pass it quoted: stackyard sql "select 1"')
        self.warehouse_file_present(target)  # a lost file is named, not created empty
        warehouse = self.warehouse(target)
        statements = statement_count(query, warehouse.DIALECT)
        result = self._read(target, "the query cannot run", lambda: warehouse.show_query(query))
        # Every statement runs (restore-table's printed swap is several) and the engine
        # returns the last one's rows: said, so the others' output is not silently missing.
        return replace(result, statements=max(statements, 1))

    # ------------------------------------------------------------------ runbooks

    def sources(self, target: str | None = None) -> SourcesRunbook:
        """The "Adding Data Sources" runbook (add / remove / list / show) on a target."""
        from stackyard.runbooks.sources import SourcesRunbook

        self.warehouse_file_present(target)  # a lost file is named, not listed as empty
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

    def health(self, target: str | None = None) -> HealthReport:
        """Each table's latest verdicts (``stackyard health``); none yet on a target never run.

        Raises:
            WarehouseUnreachableError: the target's DuckDB file is gone after it was loaded,
                or its warehouse was made anew, empty, after it was lost (a database dropped
                and created again).
        """
        from stackyard.monitors.health import HealthReport

        if not self.warehouse_file_present(target):
            return HealthReport()  # reading would create the file
        return self._read(
            target, "table health cannot be read", lambda: self.monitoring().health(target)
        )

    def monitoring(self) -> Monitoring:
        """Monitors on demand, table health, known incidents and the HTML report."""
        from stackyard.monitors.service import Monitoring

        return Monitoring(self.project, self._sessions, self.warehouse_intact)


def check_security(
    path: str | Path | None = None,
    target: str | None = None,
    *,
    rotation_days: int = 90,
    live_state: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> SecurityReport:
    """``stackyard security check`` on a project, even one whose stackyard.yml does not
    validate: the config refuses a secret written in it (a URL with a password), which is a
    finding of this check, not a reason to stop. Such a file gets the checks that need only
    the project's files (see :func:`stackyard.runbooks.security.unvalidated_security_check`).

    Args:
        path: the project folder, a folder inside it, or its stackyard.yml.
        target: a target whose warehouse access is read; ``None`` checks the project only.
        rotation_days: keys older than this many days are reported.
        live_state: a recorded live state (SHOW output) instead of connecting.
        environ: environment for secret lookup; default: ``os.environ``.

    Returns:
        The report; ``report.ok`` is ``False`` when anything was found.

    Raises:
        ProjectNotFoundError: no stackyard.yml was found.
        ConfigError: stackyard.yml is invalid and holds no secret.
    """
    from stackyard.config.loader import find_project_file
    from stackyard.errors import ConfigError, ProjectNotFoundError
    from stackyard.runbooks.security import unvalidated_security_check

    try:
        context = Context(path, environ=environ)
    except ProjectNotFoundError:
        raise
    except ConfigError as exc:
        config_file = find_project_file(Path(path) if path else Path.cwd())
        return unvalidated_security_check(
            config_file, exc, rotation_days=rotation_days, environ=environ
        )
    with context:
        return context.security_check(target, rotation_days=rotation_days, live_state=live_state)
