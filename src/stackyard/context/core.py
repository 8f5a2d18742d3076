"""What every part of :class:`~stackyard.context.Context` stands on: the project, its
sessions and their connections."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Self, TypeVar

from stackyard.config.model import ProjectConfig
from stackyard.config.project import Project
from stackyard.config.secrets import Secrets
from stackyard.console import Console, NullConsole
from stackyard.session import Session, Sessions, write_profiles
from stackyard.warehouse import Warehouse

if TYPE_CHECKING:
    from stackyard.runbooks.backup import ProjectFiles

T = TypeVar("T")


class ContextBase:
    """What every part of :class:`~stackyard.context.Context` stands on (see there)."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        console: Console | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        project = Project.load(Path(path) if path else Path.cwd(), environ)
        self._sessions = Sessions(project, console or NullConsole())

    def __enter__(self) -> Self:
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

    def _read(self, target: str | None, what: str, read: Callable[[], T]) -> T:
        """``read()`` from a target, unless a run in another process holds its DuckDB file:
        then the refusal names that run (``what``: what cannot be done, in words).

        The file is not opened while such a run holds leases: between two of its steps no
        connection holds the file, and a read opening it then would fail the run's next step.
        """
        from stackyard.errors import WarehouseLockedError
        from stackyard.metadata.run_leases import RunLeases

        leases = RunLeases(self.warehouse(target))
        busy = leases.in_progress(what)
        if busy is not None:
            raise busy
        try:
            return read()
        except WarehouseLockedError as exc:
            raise (leases.in_progress(what) or exc) from None

    # ------------------------------------------------------------------ shared by runbooks

    def write_profiles(self) -> Path:
        """Generate ``transform/profiles.yml`` from the targets; return its path."""
        return write_profiles(self.project)

    def warehouse_file_present(self, target: str | None = None) -> bool:
        """Whether a DuckDB target has its file (other engines: always), without creating it.

        Raises:
            WarehouseUnreachableError: the file is missing though the target was run or
                loaded before (a mark of its runs, a backup or dlt state of it exists):
                reading would create it empty.
        """
        warehouse = self.warehouse(target)
        path: Path | None = getattr(warehouse, "path", None)
        if warehouse.STORAGE != "file" or path is None or path.exists():
            return True
        self.refuse_if_run_before(
            warehouse.target_name,
            f"the DuckDB file {path} of target '{warehouse.target_name}' is missing, but this "
            "target has been loaded before: its tables and run history are gone",
        )
        return False

    def warehouse_intact(self, target: str | None = None) -> bool:
        """:meth:`warehouse_file_present`, and a warehouse that is there (a DuckDB file, a
        Postgres database …) not made anew, empty, after it was lost: it holds none of the
        tables dlt's local state says were loaded, nor dlt's record of loads. A DuckDB file
        deleted and opened again by a later command, a database dropped and created again:
        monitors would watch nothing there and report all clear. Nor, for a target run or
        loaded before (a mark of its runs, a backup or dlt state of it), one without run
        history: a dbt project with no dlt source has no dlt state to compare.

        Raises:
            WarehouseUnreachableError: the file is missing or the warehouse was made anew,
                with the way back.
        """
        if not self.warehouse_file_present(target):
            return False
        from stackyard.errors import WarehouseUnreachableError
        from stackyard.runbooks.local_state import every_table_lost

        warehouse = self.warehouse(target)
        lost = every_table_lost(self._project_files(), warehouse)
        if lost:
            names = ", ".join(t for one in lost for t in one.tables)
            path: Path | None = getattr(warehouse, "path", None)
            where = (
                f"the DuckDB file {path} of target '{warehouse.target_name}'"
                if warehouse.STORAGE == "file" and path is not None
                else warehouse.describe()
            )
            anew = (
                "made anew, empty, after it was lost"
                if warehouse.STORAGE == "file"
                else "made anew, empty, after it was lost (its database dropped and created "
                "again, or emptied)"
            )
            raise WarehouseUnreachableError(
                f"{where} holds none of the tables dlt's state says were loaded ({names}): "
                f"it was {anew}",
                hint="`stackyard doctor` says what was lost and how to get it back "
                "(`stackyard restore latest` when a backup exists)",
            )
        from stackyard.runbooks.target_marks import run_history_lost

        if run_history_lost(self._project_files(), warehouse):
            raise WarehouseUnreachableError(
                f"{warehouse.describe()} has no run history, but this target has been run "
                "or loaded before: its warehouse was emptied or replaced",
                hint="`stackyard restore latest` brings back the last backup, if one exists; "
                "otherwise `stackyard run` builds the dbt project again (the run history "
                "cannot come back)",
            )
        return True

    def refuse_if_run_before(self, name: str, lost: str) -> None:
        """Raise ``lost`` (what is gone) when target ``name`` was run or loaded before (a mark
        of its runs, a backup or dlt state of it exists).

        Raises:
            WarehouseUnreachableError: with the way back.
        """
        from stackyard.errors import WarehouseUnreachableError
        from stackyard.runbooks.target_marks import run_before

        if run_before(self._project_files(), name):
            raise WarehouseUnreachableError(
                lost,
                hint="`stackyard doctor` says what was lost and how to get it back "
                "(`stackyard restore latest` when a backup exists)",
            )

    def _project_files(self) -> ProjectFiles:
        from stackyard.runbooks.backup import ProjectFiles

        return ProjectFiles(self.config, self.project_dir, self.transform_dir)
