"""``stackyard adopt dlt``: register a team's existing ``@dlt.source`` functions as python
sources, unchanged.

The module stays where it is and as it is (its checksum is compared before and after). Each
source becomes one ``kind: python`` entry in stackyard.yml, run as the source object, whole.
When the team already loaded it with plain dlt, the entry keeps that pipeline's name and
dataset, so stackyard picks up its state from the warehouse and incremental cursors carry on.
Where that pipeline is found, in this order: the module's own ``dlt.pipeline(...)`` call, the
warehouse's ``_dlt_loads`` / ``_dlt_pipeline_state`` tables, dlt's local pipeline folders.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackyard.config.edit import ProjectFile
from stackyard.config.project import Project
from stackyard.errors import UsageError, UserCodeError, did_you_mean
from stackyard.ingest.python_source import import_user_module, use_dlt_folders
from stackyard.runbooks.dlt_pipelines import (
    Pipeline,
    Query,
    from_local_folders,
    from_warehouse,
    pipeline_calls,
)


@dataclass(frozen=True)
class Argument:
    """One argument of a source function.

    Attributes:
        name: the parameter's name.
        kind: ``secret`` (``dlt.secrets.value``), ``config`` (``dlt.config.value``),
            ``required`` (no default) or ``optional``.
        set: whether it resolves now (the environment, ``.dlt/`` next to the module or
            project); always true for ``optional``.
    """

    name: str
    kind: str
    set: bool


@dataclass(frozen=True)
class FoundSource:
    """One ``@dlt.source`` function in the module and what it holds."""

    name: str
    function: str
    dlt_name: str
    section: str
    resources: tuple[str, ...]
    selected: tuple[str, ...]
    incremental: dict[str, str]
    settings: dict[str, Any]
    arguments: tuple[Argument, ...]
    pipeline: Pipeline | None
    problem: str | None = None

    def entry(self, path: str) -> dict[str, Any]:
        """The stackyard.yml entry for it."""
        entry: dict[str, Any] = {"kind": "python", "path": path, "function": self.function}
        if self.pipeline is not None:
            entry["pipeline_name"] = self.pipeline.name
            entry["schema"] = self.pipeline.dataset
        return entry

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape of one source."""
        return {
            "name": self.name,
            "function": self.function,
            "dlt_name": self.dlt_name,
            "section": self.section,
            "resources": list(self.resources),
            "selected": list(self.selected),
            "incremental": self.incremental,
            "settings": self.settings,
            "secrets": {a.name: a.set for a in self.arguments if a.kind == "secret"},
            "config": {a.name: a.set for a in self.arguments if a.kind == "config"},
            "required": {a.name: a.set for a in self.arguments if a.kind == "required"},
            "pipeline": None
            if self.pipeline is None
            else {
                "name": self.pipeline.name,
                "dataset": self.pipeline.dataset,
                "found_in": self.pipeline.found_in,
            },
            "problem": self.problem,
        }


@dataclass(frozen=True)
class DltAdoptReport:
    """``adopt dlt`` as a whole."""

    project_dir: Path
    module: Path
    path: str
    sources: tuple[FoundSource, ...]
    written: bool
    unchanged: bool
    dlt_folders: tuple[Path, ...] = field(default=())

    @property
    def exit_code(self) -> int:
        """0 ok; 1 when the module's file changed (it never should)."""
        return 0 if self.unchanged else 1

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape."""
        return {
            "project": str(self.project_dir),
            "module": str(self.module),
            "path": self.path,
            "sources": [s.to_dict() for s in self.sources],
            "dlt_folders": [str(f) for f in self.dlt_folders],
            "written": self.written,
            "module_unchanged": self.unchanged,
            "ok": self.exit_code == 0,
        }


def adopt_dlt(
    project: Project,
    spec: str,
    *,
    name: str | None = None,
    dry_run: bool = False,
    query: Query | None = None,
) -> DltAdoptReport:
    """Find the ``@dlt.source`` functions in a module and register each as a python source.

    Args:
        project: the stackyard project to register them in.
        spec: ``MODULE[:FUNCTION]``: a .py file (relative to the current folder or the
            project) or a dotted module under the project.
        name: the stackyard source name (one source only); default: the function's name.
        dry_run: report only; stackyard.yml is not written.
        query: reads the default target, to find an existing pipeline's state there.

    Raises:
        UsageError: the module or function is missing, or a name is taken; nothing is
            written then.
        UserCodeError: importing the module raised.
    """
    module_spec, function = split_spec(spec)
    file = module_file(module_spec, project.project_dir)
    before = _checksum(file)
    path = Path(os.path.relpath(file, project.project_dir)).as_posix()
    # Named as the user would type it from here, not as stackyard.yml will name it.
    module = import_user_module(file, "adopt", os.path.relpath(file), subject="stackyard adopt dlt")
    folders = tuple(use_dlt_folders(project.project_dir, file.parent))
    factories = _factories(module)
    if function is not None:
        if function not in factories:
            raise UsageError(
                f"{path} has no @dlt.source function '{function}'"
                f"{did_you_mean(function, list(factories))}",
                hint=f"its sources: {', '.join(factories) or 'none'}",
            )
        factories = {function: factories[function]}
    if not factories:
        raise UsageError(
            f"{path} has no @dlt.source function",
            hint="give the file that defines the team's @dlt.source functions",
        )
    if name is not None and len(factories) > 1:
        raise UsageError(
            f"--name names one source, and {path} has {len(factories)}",
            hint="add :FUNCTION to adopt one at a time",
        )
    calls = pipeline_calls(file.read_text(encoding="utf-8"))
    found = []
    for function_name, factory in factories.items():
        source_name = name or _source_name(function_name)
        if source_name in project.config.sources:
            raise UsageError(
                f"sources.{source_name} exists in stackyard.yml already",
                hint="choose another name with --name N",
            )
        found.append(
            _inspect(source_name, function_name, factory, calls, len(factories), project, query)
        )
    written = False
    if not dry_run:
        edit = ProjectFile(project.config_file)
        for source in found:
            edit.add_source(source.name, source.entry(path))
        edit.save()
        written = True
    unchanged = _checksum(file) == before
    return DltAdoptReport(
        project.project_dir, file, path, tuple(found), written, unchanged, folders
    )


def split_spec(spec: str) -> tuple[str, str | None]:
    """``MODULE[:FUNCTION]`` split in two.

    >>> split_spec("pipelines/shop.py:shop")
    ('pipelines/shop.py', 'shop')
    >>> split_spec("pipelines.shop")
    ('pipelines.shop', None)
    """
    module, colon, function = spec.rpartition(":")
    if colon and function.isidentifier():
        return module, function
    return spec, None


def module_file(spec: str, project_dir: Path) -> Path:
    """The .py file a ``MODULE`` names: a path (from the current folder, else the project),
    or a dotted module under the project.

    Raises:
        UsageError: no such file.
    """
    candidates = [Path(spec), project_dir / spec]
    if not spec.endswith(".py") and re.fullmatch(r"[\w.]+", spec):
        dotted = project_dir / Path(*spec.split("."))
        candidates += [dotted.with_suffix(".py"), dotted / "__init__.py"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise UsageError(
        f"no Python module '{spec}' (looked for {', '.join(str(c) for c in candidates)})",
        hint="give the .py file that holds the @dlt.source functions, or a dotted module "
        "under the project",
    )


def _factories(module: Any) -> dict[str, Any]:
    """The ``@dlt.source`` functions defined in the module (not imported into it)."""
    from dlt.extract.reference import SourceFactory

    return {
        attr: value
        for attr, value in vars(module).items()
        if isinstance(value, SourceFactory)
        and getattr(getattr(value, "__wrapped__", None), "__module__", None) == module.__name__
    }


def _inspect(
    source_name: str,
    function: str,
    factory: Any,
    calls: dict[str | None, tuple[str, str | None]],
    count: int,
    project: Project,
    query: Query | None,
) -> FoundSource:
    from dlt.common.configuration.exceptions import ConfigFieldMissingException

    missing: set[str] = set()
    problem = None
    source = None
    try:
        source = factory()
    except ConfigFieldMissingException as exc:
        missing = set(exc.fields)
    except TypeError as exc:  # a required argument without a default: an option to give
        # dlt resolves nothing then: what it would read is not known to be set either.
        missing = {p.name for p in _params(factory) if _kind(p) != "optional"}
        problem = (
            f"{function}() needs options ({exc}): give them under "
            f"sources.{source_name}.options in stackyard.yml"
        )
    except Exception as exc:  # the user's code: report it as theirs
        raise UserCodeError(
            f"{function}() raised {type(exc).__name__}: {exc}",
            hint="it is called once, with no arguments, to list its resources",
        ) from exc
    arguments = tuple(
        Argument(p.name, kind, kind == "optional" or p.name not in missing)
        for p in _params(factory)
        for kind in [_kind(p)]
    )
    resources: tuple[str, ...] = ()
    selected: tuple[str, ...] = ()
    incremental: dict[str, str] = {}
    settings: dict[str, Any] = {}
    dlt_name = factory.name or function
    if source is not None:
        dlt_name = source.name
        resources = tuple(source.resources)
        selected = tuple(source.selected_resources)
        for resource_name, resource in source.resources.items():
            cursor = _cursor(resource)
            if cursor:
                incremental[resource_name] = cursor
        settings = {
            "max_table_nesting": source.max_table_nesting,
            "root_key": source.root_key,
            "schema_contract": source.schema_contract,
        }
    if problem is None and missing:
        problem = (
            f"not set: {', '.join(sorted(missing))}; put them in .dlt/secrets.toml or "
            f".dlt/config.toml under [sources.{_section(factory)}], or under "
            f"sources.{source_name}.options in stackyard.yml ({{secret: NAME}} for a secret)"
        )
    named = calls.get(function) or (calls.get(None) if count == 1 else None)
    pipeline = None
    if named is not None:
        pipeline = Pipeline(named[0], named[1] or f"{named[0]}_dataset", "the module's code")
    else:
        pipeline = from_warehouse(dlt_name, query) or from_local_folders(dlt_name)
    return FoundSource(
        name=source_name,
        function=function,
        dlt_name=dlt_name,
        section=_section(factory),
        resources=resources,
        selected=selected,
        incremental=incremental,
        settings={k: v for k, v in settings.items() if v is not None},
        arguments=arguments,
        pipeline=pipeline,
        problem=problem,
    )


def _section(factory: Any) -> str:
    """The config section dlt reads the source's arguments from (``sources.<section>``): the
    one it was given, else its module's last name part."""
    ref = getattr(factory, "ref", None)
    return str(factory.section or getattr(ref, "section", None) or "")


def _params(factory: Any) -> list[inspect.Parameter]:
    return [
        p
        for p in inspect.signature(factory).parameters.values()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]


def _kind(param: inspect.Parameter) -> str:
    import dlt

    if param.default is dlt.secrets.value:
        return "secret"
    if param.default is dlt.config.value:
        return "config"
    return "required" if param.default is inspect.Parameter.empty else "optional"


def _cursor(resource: Any) -> str | None:
    """The cursor of a resource's ``dlt.sources.incremental``: given as hints, or (most
    often) as the default of an argument of its function, bound only when it runs."""
    from dlt.extract.incremental import IncrementalResourceWrapper

    wrapper = resource.incremental
    bound = getattr(wrapper, "incremental", None) if wrapper is not None else None
    cursor = getattr(bound or wrapper, "cursor_path", None)
    gen = getattr(getattr(resource, "_pipe", None), "gen", None)
    if not cursor and callable(gen):
        try:
            param = IncrementalResourceWrapper.get_incremental_arg(inspect.signature(gen))
        except (TypeError, ValueError):  # a builtin or an object without a signature
            param = None
        cursor = getattr(param.default, "cursor_path", None) if param is not None else None
    return str(cursor) if cursor else None


def _source_name(function: str) -> str:
    """A stackyard source name from a function's name.

    >>> _source_name("GitHubIssues")
    'githubissues'
    """
    name = re.sub(r"[^a-z0-9_]+", "_", function.lower()).strip("_") or "source"
    return name if name[0].isalpha() else f"s_{name}"


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
