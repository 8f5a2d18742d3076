"""dbt's import and parse of the project, in a thread while a first run's sources load.

A first run (no ``target/partial_parse.msgpack`` yet) pays dbt's cold start before its build:
importing dbt and parsing every file of the project, several seconds before the first node
(docs/performance.md). Neither needs the loaded data, so the run starts them as it starts
loading. Much of loading is native work (DuckDB, ConnectorX, pyarrow) that leaves the
interpreter free, so most of the parse leaves the critical path.

The parsed manifest is handed to the build only when nothing it was parsed from changed in
between (the same fingerprint the run uses to decide whether to build); otherwise it is
dropped and dbt parses again, partially, from the file the early parse wrote. A parse that
fails is dropped too: the build parses again and reports the error where it belongs.

Later runs have a partial parse file and start dbt only when something is built, so they do
not parse ahead: a run with nothing new must not pay for importing dbt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from stackyard.session import Session
from stackyard.transform.dbt import Dbt, packages_installed, wanted_packages
from stackyard.warehouse.base import Warehouse


class ParseAhead:
    """One early parse; :meth:`take` waits for it and returns what the build may reuse."""

    def __init__(self, dbt: Dbt, fingerprint: Callable[[], str]) -> None:
        self.dbt = dbt
        self._fingerprint = fingerprint
        self._parsed_from = fingerprint()
        self._parsed: Any = None
        self._thread = threading.Thread(target=self._parse, name="dbt-parse-ahead", daemon=True)
        self._thread.start()

    @classmethod
    def start(
        cls,
        session: Session,
        make_dbt: Callable[[], Dbt],
        fingerprint: Callable[[], str],
    ) -> ParseAhead | None:
        """Start parsing when it pays: a first run on an engine that needs no preparation
        for dbt (Spark starts its session for dbt) and no package to install first.

        Returns:
            The parse under way, or ``None`` when the run should start dbt as usual.
        """
        transform_dir = session.project.transform_dir
        if (transform_dir / "target" / "partial_parse.msgpack").exists():
            return None
        if type(session.warehouse).before_dbt is not Warehouse.before_dbt:
            return None
        if wanted_packages(transform_dir) and not packages_installed(transform_dir):
            return None
        return cls(make_dbt(), fingerprint)

    def _parse(self) -> None:
        try:
            # No manifest.json: a load reads the last one (for schema drift) while this
            # runs, and must not find it half written; the build writes it as usual.
            self._parsed = self.dbt.parse(write_json=False)
        except Exception:  # the build parses again and reports it where it belongs
            self._parsed = None

    def take(self) -> Any:
        """Wait for the parse; its manifest when the project is still the one parsed, else
        ``None``."""
        self._thread.join()
        if self._parsed is None or self._fingerprint() != self._parsed_from:
            return None
        return self._parsed
