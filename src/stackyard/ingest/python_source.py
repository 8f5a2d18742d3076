"""The ``python`` kind: the user's own ``@dlt.source`` in a ``.py`` file, run as its own code
would run it with plain dlt: the source object whole (its settings, its resource selection),
its config section, its arguments, and the ``.dlt/`` folder its team keeps next to it."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from stackyard.config.base import SecretRef
from stackyard.config.secrets import Secrets
from stackyard.config.sources import PythonSource
from stackyard.errors import ConfigError, UserCodeError, did_you_mean
from stackyard.ingest.boundary_copies import copies_step

if TYPE_CHECKING:
    from stackyard.ingest.sources import BuildContext


def build_python(name: str, config: PythonSource, context: BuildContext) -> list[Any]:
    """The ``python`` kind: the user's own ``@dlt.source``, as one source object. A record
    with two fields dlt loads into one column (``userName`` and ``user_name``: dlt keeps
    the last value) goes to the rejected rows, as a REST record does; so does one with a
    ``Decimal`` its column would round or an integer past 64 bits
    (:mod:`stackyard.ingest.decimal_scale`)."""
    from stackyard.ingest.decimal_scale import declared_scales, without_rounded
    from stackyard.ingest.rest_json import without_twice_named
    from stackyard.ingest.stamping import whole_pages

    source = python_source(name, config, context.project_dir, context.secrets)
    resources = getattr(source, "selected_resources", None)
    for resource in resources.values() if resources is not None else [source]:

        def set_aside(
            item: Any, table: str = resource.name, scales: Any = declared_scales(resource)
        ) -> Any:
            item, rejected = without_twice_named(item, table)
            item, rounded = without_rounded(item, table, scales)
            if rejected or rounded:
                context.build.reject([*rejected, *rounded])
            return item

        # Before the incremental step: a rejected record does not move the cursor.
        resource.add_step(whole_pages(set_aside), insert_at=1)
    return [source]


def python_source(name: str, config: PythonSource, project_dir: Path, secrets: Secrets) -> Any:
    """The ``DltSource`` the user's function returns, with stackyard's keys applied.

    Raises:
        ConfigError: the file or function is missing.
        SecretMissingError: an option names a secret that is not set.
        UserCodeError: the user's code raised while importing or building the source.
    """
    path = project_dir / config.path
    module = import_user_module(path, name, config.path)
    use_dlt_folders(project_dir, path.parent)
    function = getattr(module, config.function, None)
    if function is None:
        public = [n for n in vars(module) if not n.startswith("_")]
        raise ConfigError(
            f"sources.{name}.function: {config.path} has no '{config.function}'"
            f"{did_you_mean(config.function, public)}"
        )
    options = {
        key: resolved(value, secrets, f"sources.{name}.options.{key}")
        for key, value in config.options.items()
    }
    try:
        source = function(**options)
    except Exception as exc:  # the user's code: report it as theirs
        raise UserCodeError(
            f"source '{name}': {config.path}:{config.function}() raised {type(exc).__name__}: {exc}"
        ) from exc
    resources = getattr(source, "selected_resources", None)
    for resource in resources.values() if resources is not None else [source]:
        key = config.primary_keys().get(resource.name) or resource._hints.get("primary_key")
        # dlt appends by default; with a key, merging on it is the same for new rows and
        # keeps a row delivered again (a re-run, an API returning a page twice) single.
        if key and resource.write_disposition == "append":
            resource.apply_hints(primary_key=key, write_disposition="merge")
        elif key:
            resource.apply_hints(primary_key=key)
        if key:
            latest_version_wins(resource)
        incremental = resource.incremental
        # Without a key dlt skips the rows at the last cursor value it has seen by a set of
        # hashes, so a later copy alike in every column was never loaded: its check is off
        # and the copies are counted instead (boundary_copies). An adopted pipeline keeps
        # dlt's own check (the whole row hashed), which its earlier loads stored.
        hashed_by_us = not config.pipeline_name and not key
        if incremental is not None and hashed_by_us and incremental.primary_key is None:
            incremental.primary_key = ()
            resource.add_step(copies_step())
    return source


def latest_version_wins(resource: Any) -> None:
    """Of the rows one load brings under a key, keep the one with the highest cursor, as the
    SQL and REST kinds do (``dedup_sort``): dlt kept whichever it read first, so an older
    version read before a newer one in the same run replaced it. Left alone when the
    resource sorts them itself or types its columns with a model."""
    columns = resource._hints.get("columns")
    if columns is not None and not isinstance(columns, dict):
        return
    if any(isinstance(h, dict) and h.get("dedup_sort") for h in (columns or {}).values()):
        return
    cursor = cursor_column(resource)
    if cursor is not None:
        resource.apply_hints(columns={cursor: {"name": cursor, "dedup_sort": "desc"}})


def cursor_column(resource: Any) -> str | None:
    """The column of the resource's incremental cursor: given to ``@dlt.resource`` or
    ``apply_hints``, or as the default of the function's argument; None for a path into a
    nested field, or without one.

    >>> import dlt
    >>> @dlt.resource
    ... def r(updated=dlt.sources.incremental("updated_at")):
    ...     yield {}
    >>> cursor_column(r), cursor_column(dlt.resource([{}], name="s"))
    ('updated_at', None)
    """
    import inspect

    from dlt.extract.incremental import Incremental, IncrementalResourceWrapper

    found = resource.incremental
    if isinstance(found, IncrementalResourceWrapper):
        found = found.incremental
        if found is None:
            try:
                signature = inspect.signature(resource._pipe.gen)
            except (TypeError, ValueError):  # a generator already started: no arguments
                return None
            parameter = IncrementalResourceWrapper.get_incremental_arg(signature)
            found = parameter.default if parameter is not None else None
    path = getattr(found, "cursor_path", None) if isinstance(found, Incremental) else None
    return path if isinstance(path, str) and path.isidentifier() else None


def whole_source(pipeline: Any, source: Any, resources: list[Any]) -> tuple[Any, bool]:
    """What to hand ``pipeline.run`` for a user's source: the source object itself, so its
    own settings (``max_table_nesting``, ``root_key``, schema contract, the resources its
    author selected) apply as with plain dlt.

    Args:
        pipeline: the dlt pipeline it loads with.
        source: the ``DltSource``.
        resources: the resources to load (all selected ones, or those a reload names).

    Returns:
        The source to run, and whether it sets its own schema contract (which a run-level
        contract would override).
    """
    if [r.name for r in resources] != list(source.selected_resources):
        source = source.with_resources(*(r.name for r in resources))
    from dlt.common.schema.utils import normalize_schema_name

    known = pipeline.default_schema_name
    ours = normalize_schema_name(pipeline.pipeline_name)
    if known == ours and source.name not in pipeline.schema_names:
        # Loaded by stackyard before, resource by resource: its state (cursors) sits under
        # the schema dlt named after the pipeline; keep using it rather than starting a
        # second schema from scratch.
        source = source.clone(with_name=known)
    return source, bool(source.schema_contract)


def import_user_module(
    path: Path, name: str, shown: str, *, subject: str | None = None
) -> ModuleType:
    """Import the user's file as dlt would see it when the team runs it.

    dlt names a source's config section after its module's last name part: the file's stem,
    as when the team runs it with plain dlt (``sources.<stem>.<arg>`` in ``.dlt/``).

    Args:
        path: the file.
        name: the stackyard source it is imported for (it names the module's namespace).
        shown: the file as stackyard.yml or the user gave it, for messages.
        subject: what a failure is reported against (default: the source).

    Raises:
        ConfigError: the file does not exist or is not Python.
        UserCodeError: importing it raised.
    """
    if not path.is_file():
        raise ConfigError(
            f"sources.{name}.path: {shown} does not exist",
            hint="give the .py file that holds the @dlt.source function",
        )
    spec = importlib.util.spec_from_file_location(
        f"stackyard_user_sources.{name}.{path.stem}", path
    )
    if spec is None or spec.loader is None:
        raise ConfigError(f"sources.{name}.path: {shown} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    # dlt's decorators look their module up in sys.modules to name sections; the file's own
    # folder is importable, as when it is run with `python file.py`.
    sys.modules[spec.name] = module
    folder = str(path.parent.resolve())
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: report it as theirs
        # The hint is run from wherever the user is, so it names the file from there.
        raise UserCodeError(
            f"{subject or f'source {name!r}'}: importing {shown} failed: "
            f"{type(exc).__name__}: {exc}",
            hint=f"run `python {_from_here(path)}` to see the full error",
        ) from exc
    finally:
        if added:
            sys.path.remove(folder)
    return module


def _from_here(path: Path) -> str:
    """``path`` as typed from the current folder (absolute when that is shorter)."""
    absolute = path.resolve()
    relative = os.path.relpath(absolute)
    return relative if len(relative) <= len(str(absolute)) else str(absolute)


def dlt_folders(project_dir: Path, module_dir: Path) -> list[Path]:
    """The ``.dlt/`` folders a team's source reads its settings from: next to the module,
    then the project's. dlt itself reads only the current folder's (or DLT_PROJECT_DIR's)."""
    found: list[Path] = []
    for folder in (module_dir, project_dir):
        settings = (folder / ".dlt").resolve()
        if settings.is_dir() and settings not in found:
            found.append(settings)
    return found


def use_dlt_folders(project_dir: Path, module_dir: Path) -> list[Path]:
    """Let dlt resolve ``dlt.secrets.value`` / ``dlt.config.value`` arguments from the
    ``.dlt/secrets.toml`` and ``config.toml`` next to the module or the project, whatever
    the current folder. They come after the environment and dlt's own providers, so a
    variable set for a run still wins (https://dlthub.com/docs/general-usage/credentials/setup).

    Returns:
        The ``.dlt`` folders added.
    """
    import tomllib

    from dlt.common.configuration.container import Container
    from dlt.common.configuration.providers import CustomLoaderDocProvider
    from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

    providers = Container()[PluggableRunContext].providers
    folders = dlt_folders(project_dir, module_dir)
    for folder in folders:
        for file, secret in (("secrets.toml", True), ("config.toml", False)):
            toml = folder / file
            if not toml.is_file():
                continue
            data = tomllib.loads(toml.read_text(encoding="utf-8"))
            # Replaced on every load (by name), so an edited file is read again.
            providers[f"{toml}"] = CustomLoaderDocProvider(
                str(toml), _returning(data), supports_secrets=secret, locations=[str(toml)]
            )
    return folders


def _returning(data: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: data


def resolved(value: Any, secrets: Secrets, used_for: str) -> Any:
    """An option with every ``{secret: NAME}`` in it replaced by the secret's value.

    Raises:
        SecretMissingError: a named secret is not set.
    """
    if isinstance(value, dict):
        if set(value) == {"secret"}:
            return secrets.resolve(SecretRef(secret=value["secret"]), used_for=used_for)
        return {k: resolved(v, secrets, f"{used_for}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolved(v, secrets, used_for) for v in value]
    return value


def defined_names(path: Path) -> tuple[list[str], set[str] | None]:
    """The public functions a ``.py`` file defines at its top level, and every name it binds
    there (functions, imports, assignments), read without running it; None for the names
    when they cannot be told so (a ``*`` import, ``globals()``, a module ``__getattr__``, a file
    that does not parse).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = Path(d) / "s.py"
    ...     _ = f.write_text("import dlt\\nfrom x import y as z\\nw = 1\\ndef shop(): pass\\n")
    ...     functions, names = defined_names(f)
    >>> functions, sorted(names)
    (['shop'], ['dlt', 'shop', 'w', 'z'])
    """
    import ast

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return [], None
    functions: list[str] = []
    names: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            if not isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                functions.append(node.name)
            pending += node.decorator_list  # their bodies bind no name of the module
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if any(alias.name == "*" for alias in node.names):
                return functions, None
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Name) and node.id == "globals":
            return functions, None
        else:
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            pending += ast.iter_child_nodes(node)
    # A module's own __getattr__ answers for names it never binds (PEP 562).
    return sorted(functions), None if "__getattr__" in names else names
