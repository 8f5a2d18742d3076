"""What a dbt project holds, read from dbt's own manifest (for `stackyard adopt dbt`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackyard.config.model import ProjectConfig


@dataclass(frozen=True)
class Inventory:
    """Counts of a dbt project's resources, as dbt parsed them.

    Attributes:
        models, seeds, snapshots, tests: the project's own nodes (packages' nodes left out).
        sources: its source tables; packages: what packages.yml asks for;
        package_models: models that come from installed packages.
    """

    project: str
    models: int
    seeds: int
    snapshots: int
    tests: int
    sources: int
    packages: tuple[str, ...]
    package_models: int

    def text(self) -> str:
        """One line for people.

        >>> Inventory("shop", 5, 3, 0, 20, 2, ("dbt-labs/dbt_utils (hub.getdbt.com)",), 0).text()
        '5 models, 3 seeds, 20 tests, 2 source tables, 1 packages'
        """
        parts = [f"{self.models} models", f"{self.seeds} seeds"]
        if self.snapshots:
            parts.append(f"{self.snapshots} snapshots")
        parts += [f"{self.tests} tests", f"{self.sources} source tables"]
        parts.append(f"{len(self.packages)} packages")
        return ", ".join(parts)


def inventory(manifest: dict[str, Any], packages: tuple[str, ...]) -> Inventory:
    """Count a manifest's nodes by type, the root project's apart from packages'."""
    project = str(manifest.get("metadata", {}).get("project_name") or "")
    own: Counter[str] = Counter()
    from_packages = 0
    for node in manifest.get("nodes", {}).values():
        kind = str(node.get("resource_type"))
        if node.get("package_name") == project:
            own[kind] += 1
        elif kind == "model":
            from_packages += 1
    sources = sum(
        1 for s in manifest.get("sources", {}).values() if s.get("package_name") == project
    )
    return Inventory(
        project=project,
        models=own["model"],
        seeds=own["seed"],
        snapshots=own["snapshot"],
        tests=own["test"],
        sources=sources,
        packages=packages,
        package_models=from_packages,
    )


def source_dbt_names(
    config: ProjectConfig, source: str, manifest: Mapping[str, Any] | None
) -> tuple[str, ...]:
    """The dbt sources a stackyard source appears as: ``dlt_<name>``/``<name>``, the one its
    ``dbt_source:`` names, and any of the project's own that read its schema (from
    ``manifest``, dbt's manifest of the target at hand). A failed load skips what is
    downstream of all of them, and an incident's impact is the same set.
    """
    from stackyard.transform.staging import dbt_source_names

    entry = config.sources.get(source)
    named: tuple[str, ...] = ()
    if entry is not None:
        named = (entry.dbt_name(source), *((entry.dbt_source,) if entry.dbt_source else ()))
    found = _sources_in_schema(manifest, config.dataset_for(source)) if entry else ()
    return tuple(dict.fromkeys((*dbt_source_names(source), *named, *found)))


def _sources_in_schema(manifest: Mapping[str, Any] | None, schema: str) -> tuple[str, ...]:
    if manifest is None:
        return ()
    return tuple(
        sorted(
            {
                str(s["source_name"])
                for s in manifest.get("sources", {}).values()
                if str(s.get("schema") or "").lower() == schema.lower()
            }
        )
    )
