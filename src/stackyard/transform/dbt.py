"""dbt, in process: the generated profiles.yml and the programmatic runner.

``transform/`` is a plain dbt project. stackyard writes its ``profiles.yml`` from the targets
in stackyard.yml (secrets as ``env_var`` references, never values) and invokes dbt through
``dbtRunner``, not a subprocess per step (https://docs.getdbt.com/reference/programmatic-invocations).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from stackyard.config.private import write_private
from stackyard.config.project import PROFILES_MARKER
from stackyard.errors import ConfigError, TransformError
from stackyard.results import FreshnessResult, NodeResult
from stackyard.transform.dbt_cut import DbtCut
from stackyard.transform.dbt_packages import packages_installed, packages_path, wanted_packages
from stackyard.transform.dbt_project import read_dbt_project
from stackyard.transform.state import kept_per_target, read_manifest

PROFILES_FILE = "profiles.yml"
_HEADER = (
    f"{PROFILES_MARKER}: edit the targets there, not here.\n"
    "# Secrets are env_var() references; `stackyard run` sets them for dbt. To run dbt by\n"
    "# hand, export the named variables first.\n"
)

# dbt keeps process-wide state (flags, adapters, the event manager): one invocation at a time.
_DBT_LOCK = threading.Lock()


def profile_name(transform_dir: Path) -> str:
    """The ``profile:`` the dbt project asks for.

    Raises:
        ConfigError: ``dbt_project.yml`` is missing or cannot be read (file, line and column
            named).
    """
    return str(read_dbt_project(transform_dir).get("profile") or "stackyard")


def write_profiles(
    transform_dir: Path,
    outputs: Mapping[str, dict[str, Any]],
    default_target: str,
    folder: Path | None = None,
) -> Path:
    """Write ``profiles.yml`` into ``folder`` (default: the dbt project's) when its content
    changed; return its path.

    Raises:
        ConfigError: the file there is not one stackyard wrote (it is never overwritten).
    """
    profile = {profile_name(transform_dir): {"target": default_target, "outputs": dict(outputs)}}
    text = _HEADER + yaml.safe_dump(profile, sort_keys=False)
    folder = folder or transform_dir
    path = folder / PROFILES_FILE
    if path.is_file() and not path.read_text(encoding="utf-8").startswith(PROFILES_MARKER):
        raise ConfigError(
            f"{path} was not written by stackyard, so it is left as it is",
            hint="set transform.profiles_dir in stackyard.yml to another folder (e.g. "
            ".stackyard/dbt) for the profiles stackyard generates",
        )
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        # Owner-only wherever it is: it names the warehouse's users, and .stackyard/dbt is
        # kept private as all of .stackyard/.
        write_private(path, text)
    return path


class Dbt:
    """Runs dbt commands against one target of one project."""

    def __init__(
        self,
        transform_dir: Path,
        target: str,
        env: Mapping[str, str],
        on_node: Callable[[str, str, str], None] | None = None,
        *,
        profiles_dir: Path | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        self.transform_dir = transform_dir
        self.target = target
        self.env = dict(env)
        self.on_node = on_node
        self.profiles_dir = profiles_dir or transform_dir
        self.variables = dict(variables or {})
        # A folder holding another version's manifest.json: `state:` selectors compare to it.
        self.state: Path | None = None
        # dbt's parsed Manifest, reused by the commands that follow instead of parsing again
        # (https://docs.getdbt.com/reference/programmatic-invocations#reusing-objects); set by
        # compile_selection, cleared by its caller.
        self.parsed: Any = None
        self.cut = DbtCut()  # Ctrl-C from the thread waiting on this one's invocation

    def ensure_packages(self) -> list[str]:
        """Run ``dbt deps`` when the project asks for packages that are not installed.

        Returns:
            The packages installed now (empty when none were needed).

        Raises:
            TransformError: they could not be installed; the message names where from.
        """
        wanted = wanted_packages(self.transform_dir)
        if not wanted or packages_installed(self.transform_dir):
            return []
        try:
            self._invoke(["deps"])
        except TransformError as exc:
            hosts = sorted({w.rsplit("(", 1)[-1].rstrip(")") for w in wanted})
            raise TransformError(
                f"dbt deps could not install the packages {self.transform_dir.name} asks for "
                f"({', '.join(wanted)}): {exc.message}",
                hint=f"check that this machine reaches {', '.join(hosts)}; or install them "
                f"where it does and copy the {packages_path(self.transform_dir)}/ folder "
                "into the dbt project (stackyard then uses it as it is)",
            ) from exc
        return wanted

    def build(
        self,
        select: Sequence[str] = (),
        exclude: Sequence[str] = (),
        full_refresh: bool = False,
        *,
        indirect_selection: str | None = None,
    ) -> list[NodeResult]:
        """``dbt build``: models, tests, seeds and snapshots in dependency order.

        Args:
            select: dbt selectors; empty for the whole project.
            exclude: dbt selectors to leave out.
            full_refresh: rebuild incremental models and seeds from scratch.
            indirect_selection: dbt's ``--indirect-selection`` (``empty``: the selected
                nodes only, not the tests on them).

        Raises:
            TransformError: dbt could not start (a compile error, a bad profile).
        """
        args = ["build", *self._selection(select, exclude)]
        if full_refresh:
            args.append("--full-refresh")
        if indirect_selection:
            args += ["--indirect-selection", indirect_selection]
        result = self._invoke(args)
        return [_node_result(r) for r in getattr(result, "results", [])]

    def compile_selection(
        self, select: Sequence[str] = (), exclude: Sequence[str] = (), full_refresh: bool = False
    ) -> tuple[list[str], dict[str, Any]]:
        """``dbt compile`` of what ``dbt build`` would select.

        Returns:
            The unique ids compiled (in dbt's order) and the manifest with their SQL.

        Raises:
            TransformError: the project does not compile.
        """
        import json

        self.parsed = self._invoke(["parse"])
        args = ["compile", *self._selection(select, exclude)]
        if full_refresh:
            args.append("--full-refresh")
        result = self._invoke(args)
        ids = [str(r.node.unique_id) for r in getattr(result, "results", [])]
        path = self.transform_dir / "target" / "manifest.json"
        return ids, dict(json.loads(path.read_text(encoding="utf-8")))

    def freshness(
        self, select: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> list[FreshnessResult]:
        """``dbt source freshness`` for the selected sources."""
        args = ["source", "freshness", *self._selection(select, exclude)]
        result = self._invoke(args, failure_ok=True)
        out = []
        for r in getattr(result, "results", []):
            node = getattr(r, "node", None)
            age = getattr(r, "age", None)
            max_loaded = getattr(r, "max_loaded_at", None)
            out.append(
                FreshnessResult(
                    source=getattr(node, "source_name", "?"),
                    table=getattr(node, "name", "?"),
                    status=str(getattr(r.status, "value", r.status)),
                    max_loaded_at=max_loaded.isoformat() if max_loaded else None,
                    age_hours=round(age / 3600, 2) if age is not None else None,
                    message=str(getattr(r, "message", "") or ""),
                )
            )
        return out

    def compile(self) -> None:
        """``dbt compile``: render every model's SQL into ``target/manifest.json``.

        Raises:
            TransformError: the project does not compile.
        """
        self._invoke(["compile"])

    def list_models(self, select: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
        """Names of the models a selection picks, less those ``exclude`` picks (``dbt ls``)."""
        if not select:
            return []
        args = ["ls", "--resource-type", "model", "--output", "name", "--select", *select]
        result = self._invoke([*args, "--exclude", *exclude] if exclude else args)
        return sorted(str(n) for n in (result or []))

    def list_nodes(self, select: Sequence[str]) -> list[str]:
        """Names of every resource (model, seed, snapshot, test, source) a selection picks."""
        if not select:
            return []
        result = self._invoke(["ls", "--output", "name", "--select", *select])
        return sorted(str(n) for n in (result or []))

    def selected_ids(self, select: Sequence[str]) -> list[str]:
        """Unique ids of every resource a selection picks (``dbt ls``)."""
        import json

        if not select:
            return []
        result = self._invoke(
            ["ls", "--output", "json", "--output-keys", "unique_id", "--select", *select]
        )
        return sorted(str(json.loads(str(line))["unique_id"]) for line in (result or []))

    def source_parents(self, ids: Sequence[str]) -> set[str]:
        """The dbt source names (``source('NAME', …)``) the given nodes read directly, from
        the manifest the last command for this target wrote."""
        manifest = read_manifest(self.transform_dir, self.target) or {}
        nodes, sources = manifest.get("nodes", {}), manifest.get("sources", {})
        found: set[str] = set()
        for uid in ids:
            for parent in nodes.get(uid, {}).get("depends_on", {}).get("nodes", []):
                if parent in sources:
                    found.add(str(sources[parent]["source_name"]))
        return found

    def run_window(
        self,
        select: Sequence[str],
        *,
        event_time_start: str | None = None,
        event_time_end: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> list[NodeResult]:
        """``dbt run`` of the selected models over one time window (a backfill partition).

        Microbatch models get ``--event-time-start/--event-time-end``; other incremental
        models read the window from ``variables`` (``var('backfill_start')`` …).
        """
        import json

        args = ["run", "--select", *select]
        if event_time_start and event_time_end:
            args += ["--event-time-start", event_time_start, "--event-time-end", event_time_end]
        if variables:
            args += ["--vars", json.dumps({**self.variables, **variables})]
        result = self._invoke(args)
        return [_node_result(r) for r in getattr(result, "results", [])]

    def run_range(
        self,
        model: str,
        start: str,
        end: str,
        *,
        microbatch: bool,
    ) -> RangeOutcome:
        """One ``dbt run`` of one model over ``[start, end)``, however many partitions it spans.

        A microbatch model gets ``--event-time-start/--event-time-end`` and dbt cuts the range
        into its batches, reporting each batch as successful or failed; another incremental
        model reads the range from the ``backfill_start``/``backfill_end`` vars.

        Raises:
            TransformError: dbt could not start (a compile error, a bad profile).
        """
        import json

        args = ["run", "--select", model]
        if microbatch:
            args += ["--event-time-start", start, "--event-time-end", end]
        else:
            args += ["--vars", json.dumps({"backfill_start": start, "backfill_end": end})]
        result = self._invoke(args)
        raw = list(getattr(result, "results", []))
        nodes = [_node_result(r) for r in raw]
        batches = getattr(raw[0], "batch_results", None) if raw else None
        return RangeOutcome(
            nodes=tuple(nodes),
            successful=tuple(_utc_pair(b) for b in getattr(batches, "successful", ()) or ()),
            failed=tuple(_utc_pair(b) for b in getattr(batches, "failed", ()) or ()),
            batched=batches is not None,
        )

    def compile_sql(self, select: Sequence[str]) -> dict[str, str]:
        """``{model name: compiled SQL}`` of the selected models (``dbt compile``)."""
        result = self._invoke(["compile", "--select", *select])
        return {
            r.node.name: str(r.node.compiled_code or "") for r in getattr(result, "results", [])
        }

    def manifest(self) -> dict[str, Any]:
        """The parsed project (``dbt parse``), as dbt's manifest.json."""
        import json

        self._invoke(["parse"])
        path = self.transform_dir / "target" / "manifest.json"
        return dict(json.loads(path.read_text(encoding="utf-8")))

    def _selection(self, select: Sequence[str], exclude: Sequence[str]) -> list[str]:
        args: list[str] = []
        if select:
            args += ["--select", *select]
        if exclude:
            args += ["--exclude", *exclude]
        return args

    def _invoke(self, args: list[str], failure_ok: bool = False) -> Any:
        from dbt.cli.main import dbtRunner

        full = [
            *args,
            "--project-dir",
            str(self.transform_dir),
            "--profiles-dir",
            str(self.profiles_dir),
            "--target",
            self.target,
            "--log-level",
            "none",
            "--log-level-file",
            "info",
            "--no-use-colors",
        ]
        if self.variables and "--vars" not in args and args[0] != "deps":
            import json

            full += ["--vars", json.dumps(self.variables)]
        if self.state is not None and args[0] in _STATE_COMMANDS:
            full += ["--state", str(self.state)]
        kept = kept_per_target(self.transform_dir, self.target)
        with _DBT_LOCK, _environment({**self.env, **_QUIET_DBT}), self.cut.invocation(), kept:
            runner = dbtRunner(manifest=self.parsed, callbacks=[self._callback])
            outcome = runner.invoke(full)
        if isinstance(outcome.exception, KeyboardInterrupt):
            # dbt caught Ctrl-C (or SIGTERM, taken as one) and returned it: still an
            # interrupt, exit 130, not "dbt could not run" (a failed step, exit 1).
            raise outcome.exception
        if outcome.exception is not None:
            raise TransformError(
                f"dbt {' '.join(args[:2])} could not run: {_first_lines(outcome.exception)}",
                hint=f"see {self.transform_dir / 'logs' / 'dbt.log'}; run `dbt {args[0]}"
                f"{self._as_typed()}` inside {self.transform_dir} to reproduce",
            )
        return outcome.result

    def _as_typed(self) -> str:
        """The flags a person needs to run dbt by hand as stackyard ran it."""
        folder = self.profiles_dir.resolve()
        profiles = "" if folder == self.transform_dir.resolve() else f" --profiles-dir {folder}"
        return f"{profiles} --target {self.target}"

    def _callback(self, event: Any) -> None:
        if self.cut.on_event(event) or self.on_node is None or event.info.name != "NodeFinished":
            return
        info = event.data.node_info
        self.on_node(info.resource_type, info.node_name, info.node_status)


# The commands whose selection may use `state:` (dbt refuses --state on the others).
_STATE_COMMANDS = frozenset({"build", "ls", "list", "run", "test", "compile", "seed", "snapshot"})

_QUIET_DBT = {
    # No telemetry or version lookups: they would wait on the network for nothing.
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DBT_VERSION_CHECK": "false",
    "DO_NOT_TRACK": "1",
}


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@dataclass(frozen=True)
class RangeOutcome:
    """What one ``dbt run`` over a range did: the node's result and, for a microbatch model,
    which of dbt's batches (UTC ``(start, end)`` pairs) succeeded and which failed."""

    nodes: tuple[NodeResult, ...]
    successful: tuple[tuple[datetime, datetime], ...] = ()
    failed: tuple[tuple[datetime, datetime], ...] = ()
    batched: bool = False


def _utc_pair(batch: Any) -> tuple[datetime, datetime]:
    def utc(moment: datetime) -> datetime:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    return utc(batch[0]), utc(batch[1])


def _node_result(r: Any) -> NodeResult:
    node = r.node
    status = str(getattr(r.status, "value", r.status))
    return NodeResult(
        unique_id=node.unique_id,
        name=node.name,
        resource_type=str(getattr(node.resource_type, "value", node.resource_type)),
        status=status,
        message=str(r.message or "") if status not in ("success", "pass") else "",
        failures=r.failures,
        seconds=round(float(r.execution_time or 0.0), 3),
    )


def _first_lines(exc: BaseException, limit: int = 6) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return "\n".join(lines[:limit]) or type(exc).__name__
