"""The façade: one object that loads a project and does everything stackyard does.

The CLI, the Python API and tests all go through :class:`Context`; a CLI command parses its
options, calls one method here, and renders what it returns.

>>> from stackyard import Context                      # doctest: +SKIP
>>> result = Context("demo").run(target="dev")         # doctest: +SKIP
>>> result.ok, result.count("test", "pass")            # doctest: +SKIP
(True, 61)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackyard.config.loader import find_project_file, load_project_config
from stackyard.config.model import ProjectConfig
from stackyard.config.secrets import Secrets
from stackyard.console import Console, NullConsole
from stackyard.errors import ConfigError, UsageError, did_you_mean
from stackyard.results import RunResult
from stackyard.runner.history import History, RunSummary
from stackyard.warehouse import QueryResult, Warehouse, open_warehouse

if TYPE_CHECKING:
    from stackyard.infra.service import AccessControl
    from stackyard.monitors.service import Monitoring
    from stackyard.runbooks.reload import ReloadPlan
    from stackyard.runbooks.sources import SourceAddResult, SourcesRunbook


class Context:
    """A loaded stackyard project.

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
        self.config_file = find_project_file(Path(path) if path else Path.cwd())
        self.project_dir = self.config_file.parent
        self.config: ProjectConfig = load_project_config(self.config_file)
        self.console: Console = console or NullConsole()
        self.secrets = Secrets(self.project_dir, environ)
        self._warehouses: dict[str, Warehouse] = {}

    # ------------------------------------------------------------------ targets

    @property
    def transform_dir(self) -> Path:
        """The dbt project folder."""
        return self.project_dir / self.config.transform.path

    def target_name(self, target: str | None) -> str:
        """The target to use: the one given, else ``defaults.target``.

        Raises:
            UsageError: the name is not a target in stackyard.yml.
        """
        name = target or self.config.defaults.target
        if name not in self.config.targets:
            known = sorted(self.config.targets)
            raise UsageError(
                f"unknown target '{name}'{did_you_mean(name, known)}",
                hint=f"targets in {self.config_file.name}: {', '.join(known)}",
            )
        return name

    def warehouse(self, target: str | None = None) -> Warehouse:
        """The warehouse of a target (connected lazily, on first query)."""
        name = self.target_name(target)
        if name not in self._warehouses:
            self._warehouses[name] = open_warehouse(
                name, self.config.targets[name], self.project_dir, self.secrets
            )
        return self._warehouses[name]

    def close(self) -> None:
        """Close every warehouse connection this context opened."""
        for warehouse in self._warehouses.values():
            warehouse.close()

    # ------------------------------------------------------------------ dbt

    def write_profiles(self) -> Path:
        """Generate ``transform/profiles.yml`` from the targets; return its path."""
        from stackyard.transform.dbt import write_profiles

        outputs = {name: self.warehouse(name).dbt_output() for name in self.config.targets}
        return write_profiles(self.transform_dir, outputs, self.config.defaults.target)

    def dbt(self, target: str | None = None, **kwargs: Any) -> Any:
        """A :class:`~stackyard.transform.dbt.Dbt` runner for a target, profiles refreshed."""
        from stackyard.transform.dbt import Dbt

        self.write_profiles()
        warehouse = self.warehouse(target)
        return Dbt(self.transform_dir, warehouse.target_name, warehouse.secret_env(), **kwargs)

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

        warehouse = self.warehouse(target)
        self._check_selection(select)
        if full_refresh and refresh is None:
            chosen = [s for s in select if s in self.config.sources] or [
                n for n, s in self.config.sources.items() if s.enabled and not select
            ]
            refresh = {s: () for s in chosen}
        job = RunJob(
            project=self.config,
            project_dir=self.project_dir,
            transform_dir=self.transform_dir,
            warehouse=warehouse,
            secrets=self.secrets,
            console=self.console,
            make_dbt=lambda **kw: self.dbt(warehouse.target_name, **kw),
            force_build=force_build,
            refresh=refresh,
        )
        return job.execute(select)

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

    # ------------------------------------------------------------------ sources runbook

    def sources(self, target: str | None = None) -> SourcesRunbook:
        """The "Adding Data Sources" runbook (add / remove / list / show) on a target."""
        from stackyard.runbooks.sources import SourcesRunbook

        warehouse = self.warehouse(target)
        return SourcesRunbook(
            project_file=self.config_file,
            transform_dir=self.transform_dir,
            warehouse=warehouse,
            secrets=self.secrets,
            console=self.console,
            make_dbt=lambda **kw: self._fresh_dbt(warehouse.target_name, **kw),
        )

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
            kind: ``sql_database``, ``filesystem``, ``rest_api`` or ``python``.
            options: the kind's keys as in stackyard.yml (None for options not given).
            load: run the first load and generate models (``--no-load`` turns it off).
            target: where to load; default ``defaults.target``.
        """
        runbook = self.sources(target)
        return runbook.add(name, runbook.entry(name, kind, options), load=load)

    def _fresh_dbt(self, target: str, **kwargs: Any) -> Any:
        # `source add` changes stackyard.yml; profiles and config are re-read first.
        self.config = load_project_config(self.config_file)
        return self.dbt(target, **kwargs)

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
        """Warehouse access control: plan, apply, policy checks, users and keys, review."""
        from stackyard.infra.service import AccessControl

        return AccessControl(self)

    def monitoring(self) -> Monitoring:
        """Monitors on demand, table health, known incidents and the HTML report."""
        from stackyard.monitors.service import Monitoring

        return Monitoring(self)
