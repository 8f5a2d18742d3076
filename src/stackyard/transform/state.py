"""What stackyard knows about the dbt project without starting dbt.

Starting dbt costs over a second (its import and parse). When a run loaded no new rows and
nothing in ``transform/`` changed since the last successful full build, rebuilding would
produce the same tables and the same test results, so the runner skips it. Source freshness
is time-based and always checked; here it is computed from dbt's own manifest (the same
``loaded_at_field`` and thresholds ``dbt source freshness`` uses) with one query per table.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackyard.results import FreshnessResult
from stackyard.warehouse.base import Warehouse

# Folders of a dbt project whose files change what `dbt build` does.
_INPUTS = ("models", "macros", "seeds", "snapshots", "tests", "analyses")
_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml", "selectors.yml")
_HOURS = {"minute": 1 / 60, "hour": 1.0, "day": 24.0}
# {path: ((mtime_ns, size), manifest)}: one parse per manifest version in a process
_MANIFESTS: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}


# dbt writes one target/manifest.json whatever --target it ran for; each target's is kept here
# (relations in it are the target's: database, schema), so a run on one target leaves another
# target's lineage and freshness alone.
_PER_TARGET = "stackyard"


def target_manifest_path(
    transform_dir: Path, target: str | None, name: str = "manifest.json"
) -> Path:
    """Where the manifest (or ``catalog.json``) dbt last wrote for ``target`` is kept
    (``None``: dbt's own, the last one it wrote whatever the target).

    >>> target_manifest_path(Path("transform"), "prod").as_posix()
    'transform/target/stackyard/prod/manifest.json'
    """
    if target is None:
        return transform_dir / "target" / name
    return transform_dir / "target" / _PER_TARGET / target / name


@contextmanager
def kept_per_target(transform_dir: Path, target: str) -> Iterator[None]:
    """Around one dbt command for ``target``: copy the manifest and catalog it wrote (not
    one it left as it was: another target's, or none) to that target's folder."""
    before = _artifact_versions(transform_dir)
    yield
    for name, version in _artifact_versions(transform_dir).items():
        if version is None or version == before.get(name):
            continue
        kept = target_manifest_path(transform_dir, target, name)
        kept.parent.mkdir(parents=True, exist_ok=True)
        scratch = kept.with_name(f".{name}.partial")
        shutil.copyfile(transform_dir / "target" / name, scratch)
        os.replace(scratch, kept)  # readers never see half a copy


def _artifact_versions(transform_dir: Path) -> dict[str, tuple[int, int] | None]:
    out: dict[str, tuple[int, int] | None] = {}
    for name in ("manifest.json", "catalog.json"):
        try:
            info = (transform_dir / "target" / name).stat()
        except OSError:
            out[name] = None
        else:
            out[name] = (info.st_mtime_ns, info.st_size)
    return out


def read_manifest(transform_dir: Path, target: str | None = None) -> dict[str, Any] | None:
    """dbt's last ``target/manifest.json`` (or the last one for ``target``), or ``None``
    when there is none.

    A run reads it several times (sources per schema, freshness, selection, lineage); it is
    parsed once while the file stays the same. Callers must not change the returned dict.

    Args:
        transform_dir: the dbt project folder.
        target: read the manifest dbt wrote for this target (its relations are that
            target's); ``None`` for the last one written, whatever its target.

    A file that is not JSON (half written by a dbt that was killed) counts as none: every
    caller then parses or builds again, and dbt writes it whole. Read as an error, it stopped
    every command of the project, the rollbacks meant to recover included.
    """
    path = target_manifest_path(transform_dir, target)
    try:
        info = path.stat()
    except OSError:
        return None
    version = (info.st_mtime_ns, info.st_size)
    cached = _MANIFESTS.get(path)
    if cached is not None and cached[0] == version:
        return cached[1]
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:  # UnicodeDecodeError too
        return None
    _MANIFESTS[path] = (version, manifest)
    return manifest


def transform_fingerprint(transform_dir: Path, profile_output: dict[str, Any]) -> str:
    """A hash of every file that affects ``dbt build``, and of the target's profile.

    Args:
        transform_dir: the dbt project folder.
        profile_output: the target's generated profile entry (a changed target rebuilds).

    Returns:
        A hex digest; equal digests mean dbt would build the same thing.
    """
    digest = hashlib.sha256(json.dumps(profile_output, sort_keys=True, default=str).encode())
    paths = [transform_dir / f for f in _FILES]
    for folder in _INPUTS:
        base = transform_dir / folder
        if base.is_dir():
            paths.extend(sorted(p for p in base.rglob("*") if p.is_file()))
    for path in paths:
        if path.is_file():
            digest.update(str(path.relative_to(transform_dir)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def manifest_freshness(
    transform_dir: Path,
    warehouse: Warehouse,
    source_names: Iterable[str] | None,
    exclude: Iterable[str] = (),
) -> list[FreshnessResult] | None:
    """Source freshness from the warehouse's target's manifest, or ``None`` when dbt must
    compute it.

    dbt is needed when there is no manifest for the target, or a source uses a ``filter`` or
    ``loaded_at_query`` (those need dbt's Jinja).

    Args:
        transform_dir: the dbt project folder.
        warehouse: where the source tables are (its target picks the manifest).
        source_names: dbt source names to check; ``None`` for all.
        exclude: dbt source names not to check (those whose load failed in this run: their
            tables may be missing, and their failure is already reported).
    """
    manifest = read_manifest(transform_dir, warehouse.target_name)
    if manifest is None:
        return None
    wanted = set(source_names) if source_names is not None else None
    skipped = set(exclude)
    results = []
    present: dict[str, set[str]] = {}  # the tables of each schema, read once
    now = datetime.now(UTC)
    for source in manifest.get("sources", {}).values():
        if wanted is not None and source["source_name"] not in wanted:
            continue
        if source["source_name"] in skipped:
            continue
        freshness = source.get("freshness") or {}
        field = source.get("loaded_at_field")
        if not field or not (freshness.get("warn_after") or freshness.get("error_after")):
            continue
        if freshness.get("filter") or source.get("loaded_at_query"):
            return None
        schema, name = source["schema"], source["identifier"]
        if schema not in present:
            present[schema] = {t.lower() for t in warehouse.tables_in(schema)}
        if name.lower() not in present[schema]:
            # Another tool's table not (or no longer) there: said so, not a raw catalog error.
            where = f"target '{warehouse.target_name}'"
            said = f"{schema}.{name} is not on {where}"
            results.append(
                FreshnessResult(source["source_name"], name, "runtime error", message=said)
            )
            continue
        table = warehouse.quote(schema, name)
        # loaded_at_field is an expression by dbt's definition, written by the project's
        # own engineers, and dbt pastes it the same way; only names are quoted here.
        value = warehouse.query(f"SELECT max({field}) FROM {table}").rows[0][0]
        results.append(_judge(source, freshness, value, now))
    return results


def _judge(
    source: dict[str, Any], freshness: dict[str, Any], value: Any, now: datetime
) -> FreshnessResult:
    if value is None:
        # No row has a load time yet: an empty table upstream is not a late one (a table
        # emptied whole is the volume monitor's to report). Before, every run failed on it.
        return FreshnessResult(
            source["source_name"],
            source["name"],
            "warn",
            message="the table has no rows yet: its freshness starts with its first row",
        )
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    age = (now - value).total_seconds() / 3600
    status = "pass"
    for level in ("warn", "error"):
        limit = freshness.get(f"{level}_after") or {}
        if limit.get("count") and age > limit["count"] * _HOURS[limit.get("period", "hour")]:
            status = level
    return FreshnessResult(
        source["source_name"], source["name"], status, value.isoformat(), round(age, 2)
    )
