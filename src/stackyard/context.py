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
from stackyard.errors import ConfigError, UsageError, did_you_mean
from stackyard.metadata.history import History, RunSummary
from stackyard.results import RunResult
from stackyard.session import Session, Sessions, write_profiles
from stackyard.warehouse import QueryResult, Warehouse

if TYPE_CHECKING:
    from stackyard.infra.service import AccessControl
    from stackyard.monitors.service import Monitoring
    from stackyard.runbooks.reload import ReloadPlan
    from stackyard.runbooks.sources import SourceAddResult, SourcesRunbook
    from stackyard.runbooks.users import UsersRunbook
    from stackyard.transform.dbt import Dbt


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

        Returns:
            The run's result; ``result.exit_code`` is 0 or 1.

        Raises:
            ConfigError: the project cannot run as configured (exit code 2).
            WarehouseUnreachableError: the target cannot be reached (exit code 2).
        """
        from stackyard.runner.run import RunJob

        session = self.session(target)
        self._check_selection(select)
        if full_refresh and refresh is None:
            chosen = [s for s in select if s in self.config.sources] or [
                n for n, s in self.config.sources.items() if s.enabled and not select
            ]
            refresh = {s: () for s in chosen}
        return RunJob(session, force_build=force_build, refresh=refresh).execute(select)

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

    def _check_selection(self, select: Sequence[str]) -> None:
        known = self._model_names()
        for name in select:
            if not name.strip():
                raise UsageError("--select got an empty name")
            plain = not any(ch in name for ch in ":+*@/.,")
            if (
                plain
                and known is not None
                and name not in self.config.sources
                and (name not in known)
            ):
                choices = sorted(self.config.sources) + sorted(known)
                raise UsageError(
                    f"--select '{name}' is neither a source nor a dbt model"
                    f"{did_you_mean(name, choices)}",
                    hint=f"sources: {', '.join(sorted(self.config.sources)) or '(none)'}; or a "
                    "dbt selector such as orders+ or tag:finance",
                )
            if name in self.config.sources and not self.config.sources[name].enabled:
                raise ConfigError(
                    f"source '{name}' is disabled (enabled: false in {self.config_file.name})",
                    hint="set enabled: true to load it",
                )

    def _model_names(self) -> set[str] | None:
        """Model, seed and snapshot names from dbt's last manifest (None before any build)."""
        import json

        path = self.transform_dir / "target" / "manifest.json"
        if not path.is_file():
            return None
        nodes = json.loads(path.read_text(encoding="utf-8")).get("nodes", {})
        return {n["name"] for n in nodes.values() if n.get("resource_type") != "test"}

    def access(self) -> AccessControl:
        """Warehouse access control: plan, apply, policy checks, review."""
        from stackyard.infra.service import AccessControl

        return AccessControl(self.project, self._sessions)

    def users(self) -> UsersRunbook:
        """The "Adding Users" runbook: add, rotate-key, remove."""
        from stackyard.runbooks.users import UsersRunbook

        return UsersRunbook(self.project, self._sessions)

    def monitoring(self) -> Monitoring:
        """Monitors on demand, table health, known incidents and the HTML report."""
        from stackyard.monitors.service import Monitoring

        return Monitoring(self.project, self._sessions)
