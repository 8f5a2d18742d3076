"""The ``python`` kind: the user's own ``@dlt.source`` in ``sources/<file>.py``, run as its
own code would run it with plain dlt (its settings, its config section, its arguments)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackyard.config.base import SecretRef
from stackyard.config.secrets import Secrets
from stackyard.config.sources import PythonSource
from stackyard.errors import ConfigError, UserCodeError
from stackyard.ingest.sources import columns_but_stamp

if TYPE_CHECKING:
    from stackyard.ingest.sources import BuildContext


def build_python(name: str, config: PythonSource, context: BuildContext) -> list[Any]:
    """The ``python`` kind: the user's own ``@dlt.source``."""
    return _python_resources(name, config, context.project_dir, context.secrets)


def _python_resources(
    name: str, config: PythonSource, project_dir: Path, secrets: Secrets
) -> list[Any]:
    path = project_dir / config.path
    if not path.is_file():
        raise ConfigError(
            f"sources.{name}.path: {config.path} does not exist",
            hint=f"create it with a @dlt.source function named {config.function}",
        )
    # dlt names a source's config section after its module's last name part: the file's
    # stem, as when the team runs it with plain dlt (sources.<stem>.<arg> in .dlt/).
    spec = importlib.util.spec_from_file_location(
        f"stackyard_user_sources.{name}.{path.stem}", path
    )
    if spec is None or spec.loader is None:
        raise ConfigError(f"sources.{name}.path: {config.path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    # dlt's decorators look their module up in sys.modules to name sections.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: report it as theirs
        raise UserCodeError(
            f"source '{name}': importing {config.path} failed: {type(exc).__name__}: {exc}",
            hint="run `python " + config.path + "` to see the full error",
        ) from exc
    function = getattr(module, config.function, None)
    if function is None:
        public = [n for n in vars(module) if not n.startswith("_")]
        from stackyard.errors import did_you_mean

        raise ConfigError(
            f"sources.{name}.function: {config.path} has no '{config.function}'"
            f"{did_you_mean(config.function, public)}"
        )
    options = {
        key: _resolved(value, secrets, f"sources.{name}.options.{key}")
        for key, value in config.options.items()
    }
    try:
        source = function(**options)
    except Exception as exc:  # the user's code: report it as theirs
        raise UserCodeError(
            f"source '{name}': {config.path}:{config.function}() raised {type(exc).__name__}: {exc}"
        ) from exc
    resources = list(getattr(source, "resources", {}).values()) or [source]
    # Loaded resource by resource, a source's own settings would be lost: carry them over.
    nesting = getattr(source, "max_table_nesting", None) if resources[0] is not source else None
    for resource in resources:
        if nesting is not None and resource.max_table_nesting is None:
            resource.max_table_nesting = nesting
        key = config.primary_keys().get(resource.name) or resource._hints.get("primary_key")
        # dlt appends by default; with a key, merging on it is the same for new rows and
        # keeps a row delivered again (a re-run, an API returning a page twice) single.
        if key and resource.write_disposition == "append":
            resource.apply_hints(primary_key=key, write_disposition="merge")
        elif key:
            resource.apply_hints(primary_key=key)
        incremental = resource.incremental
        if incremental is not None and not key and incremental.primary_key is None:
            # Without a key dlt skips the rows at the last cursor value it has seen by a hash
            # of the whole row, stackyard's load stamp included: every run would append them
            # again.
            incremental.primary_key = columns_but_stamp
    return resources


def _resolved(value: Any, secrets: Secrets, used_for: str) -> Any:
    """An option with every ``{secret: NAME}`` in it replaced by the secret's value.

    Raises:
        SecretMissingError: a named secret is not set.
    """
    if isinstance(value, dict):
        if set(value) == {"secret"}:
            return secrets.resolve(SecretRef(secret=value["secret"]), used_for=used_for)
        return {k: _resolved(v, secrets, f"{used_for}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, secrets, used_for) for v in value]
    return value
