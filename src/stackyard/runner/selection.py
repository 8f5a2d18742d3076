"""``stackyard run --select``: what a selection may name, checked before anything runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from stackyard.config.project import Project
from stackyard.errors import ConfigError, UsageError, did_you_mean
from stackyard.transform.state import read_manifest


def check_selection(
    project: Project,
    select: Sequence[str],
    list_nodes: Callable[[list[str]], list[str]],
    empty_ok: bool = False,
) -> None:
    """Refuse a selection that cannot mean anything, before anything is loaded or built.

    Args:
        project: the project.
        select: source names and dbt selectors as given.
        list_nodes: ``dbt ls`` of selectors (called only when some are dbt selectors, or a
            plain name is missing from the last build's manifest).
        empty_ok: dbt selectors may match nothing (``state:modified+`` when nothing changed).

    Raises:
        UsageError: an empty name, a plain name that is neither a source nor a dbt node, or
            dbt selectors that match nothing in the dbt project.
        ConfigError: a selected source is disabled.
    """
    config = project.config
    known = model_names(project)
    matched = False  # a selector seen to match: dbt takes the union, so the selection does
    for name in select:
        if not name.strip():
            raise UsageError("--select got an empty name")
        plain = not any(ch in name for ch in ":+*@/.,")
        if plain and known is not None and name not in config.sources and name not in known:
            # The manifest is the last build's: a model added since is only in the files, so
            # dbt, which parses the project as it is now, has the last word.
            if list_nodes([name]):
                matched = True
                continue
            choices = sorted(config.sources) + sorted(known)
            raise UsageError(
                f"--select '{name}' is neither a source nor a dbt model"
                f"{did_you_mean(name, choices)}",
                hint=f"sources: {', '.join(sorted(config.sources)) or '(none)'}; or a "
                "dbt selector such as orders+ or tag:finance",
            )
        if name in config.sources and not config.sources[name].enabled:
            raise ConfigError(
                f"source '{name}' is disabled (enabled: false in {project.config_file.name})",
                hint="set enabled: true to load it",
            )
    selectors = [s for s in select if s not in config.sources]
    if selectors and not empty_ok and not matched and not list_nodes(selectors):
        raise UsageError(
            f"--select {' '.join(selectors)} matches nothing in the dbt project",
            hint="check the names with `dbt ls` in the dbt project, or select a source: "
            + (", ".join(sorted(config.sources)) or "(none)"),
        )


def model_names(project: Project) -> set[str] | None:
    """Model, seed and snapshot names from dbt's last manifest (None before any build)."""
    manifest = read_manifest(project.transform_dir)
    if manifest is None:
        return None
    nodes = manifest.get("nodes", {})
    return {n["name"] for n in nodes.values() if n.get("resource_type") != "test"}
