"""A session per target: the one owner of a warehouse connection.

:class:`Sessions` (held by :class:`stackyard.Context`) creates one :class:`Session` per target
on first use and closes them all at the end. A :class:`Session` bundles what work on one target
needs: the project as read, the warehouse, the console, and dbt. Code below the Context
receives a Session (or a :class:`Sessions` when it must pick targets itself) and never closes a
connection: dlt and dbt open their own, so around their work a session *releases* its
connection (:meth:`Session.released`) and the next query opens a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackyard.config.project import Project
from stackyard.console import Console
from stackyard.warehouse import Warehouse, open_warehouse

if TYPE_CHECKING:
    from stackyard.transform.dbt import Dbt


class Session:
    """Work on one target of one project.

    Args:
        project: the project as read when the session opened.
        target: the target's name (validated).
        console: where progress goes.
    """

    def __init__(self, project: Project, target: str, console: Console) -> None:
        self.project = project
        self.target = target
        self.console = console
        self.warehouse: Warehouse = open_warehouse(
            target, project.config.targets[target], project.project_dir, project.secrets
        )
        if self.warehouse.lease_file() is not None:
            self.warehouse.connect_guard = self._refuse_during_a_run

    def _refuse_during_a_run(self) -> None:
        """Refuse to open a file another process's run holds leases on, naming that run:
        every command (doctor, report, backfill …), not only the reads that say so first."""
        from stackyard.metadata.run_leases import RunLeases

        busy = RunLeases(self.warehouse).in_progress("this command cannot open it")
        if busy is not None:
            raise busy

    def dbt(
        self,
        on_node: Callable[[str, str, str], None] | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> Dbt:
        """A dbt runner for this target: ``profiles.yml`` refreshed from the targets, the
        project's packages installed when missing, ``transform.vars`` (and ``variables`` over
        them) passed to every command."""
        from stackyard.transform.dbt import Dbt

        write_profiles(self.project)
        self.warehouse.before_dbt()
        dbt = Dbt(
            self.project.transform_dir,
            self.target,
            self.warehouse.secret_env(),
            on_node=on_node,
            profiles_dir=self.project.profiles_dir,
            variables={**self.project.config.transform.vars, **(variables or {})},
        )
        dbt.ensure_packages()
        return dbt

    def release(self) -> None:
        """Free the connection now; the next query opens a new one."""
        self.warehouse.close()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Free the connection for a block in which dlt or dbt open their own.

        DuckDB admits one configuration per database file in a process, so holding our
        connection while dbt-duckdb or dlt open theirs would fail; Postgres would hold a
        connection idle for the whole load.
        """
        self.release()
        try:
            yield
        finally:
            self.release()

    def close(self) -> None:
        """End the session (the owner calls this)."""
        self.warehouse.end()


class Sessions:
    """The sessions of one project, one per target, created on first use.

    Args:
        project: the project.
        console: where progress goes.
    """

    def __init__(self, project: Project, console: Console) -> None:
        self.project = project
        self.console = console
        self._open: dict[str, Session] = {}

    def get(self, target: str | None = None) -> Session:
        """The session of a target (default: ``defaults.target``).

        Raises:
            UsageError: the target is not in stackyard.yml.
        """
        name = self.project.target_name(target)
        if name not in self._open:
            self._open[name] = Session(self.project, name, self.console)
        return self._open[name]

    def use_console(self, console: Console) -> None:
        """Report progress to another console from now on (every session)."""
        self.console = console
        for session in self._open.values():
            session.console = console

    def reload(self) -> None:
        """Re-read stackyard.yml after this project's owner changed it; sessions stay open."""
        self.project = self.project.reloaded()
        for session in self._open.values():
            session.project = self.project

    def close(self) -> None:
        """Close every session's connection."""
        for session in self._open.values():
            session.close()
        self._open.clear()


def write_profiles(project: Project) -> Path:
    """Generate ``transform/profiles.yml`` from a project's targets; return its path."""
    from stackyard.transform.dbt import write_profiles as write

    outputs = {
        name: open_warehouse(name, config, project.project_dir, project.secrets).dbt_output()
        for name, config in project.config.targets.items()
    }
    return write(
        project.transform_dir, outputs, project.config.defaults.target, project.profiles_dir
    )
