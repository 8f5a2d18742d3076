"""The "Adding Data Sources" runbook's steps, built before anything changes (``--dry-run``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stackyard.runbooks.steps import RunbookPlan, RunbookStep
from stackyard.transform.dbt_sources import SOURCES_FILE
from stackyard.transform.staging import dbt_source_name


def add_plan(
    name: str,
    entry: Mapping[str, Any],
    *,
    dataset: str,
    target: str,
    tables: Sequence[str],
    already_added: bool,
    load: bool,
) -> RunbookPlan:
    """The steps of ``stackyard source add``.

    Args:
        name: the source.
        entry: its stackyard.yml entry.
        dataset: the schema it loads into.
        target: where it loads (described, e.g. ``DuckDB target 'dev' (…)``).
        tables: the tables it declares (empty: whatever the first load finds).
        already_added: stackyard.yml has this very entry already.
        load: the first load runs (not ``--no-load``).
    """
    listed = ", ".join(tables) if tables else "every table the source offers"
    steps = [
        RunbookStep(
            "edit stackyard.yml",
            f"source '{name}' ({entry['kind']}) is already there: unchanged"
            if already_added
            else f"add source '{name}' ({entry['kind']}) under sources:",
            ""
            if already_added
            else f"`stackyard source remove {name}` (or a failed first "
            "load) takes the entry out again",
        )
    ]
    models = (
        f"the dbt source '{dbt_source_name(name)}' in transform/{SOURCES_FILE.as_posix()}, and a "
        "staging model "
        "stg_dlt__<table> (.sql + .yml with key tests) per table in "
        "transform/models/staging/dlt; files you edited are kept"
    )
    undo_models = f"`stackyard source remove {name}` deletes exactly these files"
    if not load:
        steps.append(
            RunbookStep(
                "write dbt source",
                f"the dbt source '{dbt_source_name(name)}' (no load, so no models)",
                undo_models,
            )
        )
        return RunbookPlan("source add", name, tuple(steps))
    steps += [
        RunbookStep(
            "create schema",
            f"schema {dataset} on {target}",
            f"a failed first load drops it again if it created it; `stackyard source remove "
            f"{name} --drop-data`",
        ),
        RunbookStep(
            "first load",
            f"load {listed} with dlt into {dataset}",
            "a failed first load removes the entry, dlt's state and the schemas it created; "
            f"`stackyard source remove {name} --drop-data` drops loaded tables",
        ),
        RunbookStep("write models", models, undo_models),
        RunbookStep(
            "verify",
            "the schema exists, every table has rows, the staging models build, their tests "
            "pass and source freshness passes",
        ),
    ]
    return RunbookPlan("source add", name, tuple(steps))


def remove_plan(
    name: str,
    *,
    project_dir: Path,
    files: Sequence[Path],
    edited: Sequence[Path],
    sources_entry: tuple[Path, str] | None,
    state: Sequence[Path],
    drop_schemas: Sequence[str],
    drop_models: Sequence[tuple[str, str]] = (),
) -> RunbookPlan:
    """The steps of ``stackyard source remove`` (the rollback of ``add``)."""
    rel = [str(p.relative_to(project_dir)) for p in files]
    steps = []
    if rel:
        steps.append(
            RunbookStep(
                "delete files",
                ", ".join(rel),
                f"`stackyard source add {name} …` writes them again",
                destructive=bool(edited),
            )
        )
    if sources_entry:
        path, dbt_name = sources_entry
        steps.append(
            RunbookStep(
                "edit dbt sources",
                f"take the dbt source '{dbt_name}' out of {path.relative_to(project_dir)}",
                f"`stackyard source add {name} …` puts it back",
            )
        )
    steps.append(
        RunbookStep(
            "edit stackyard.yml",
            f"take source '{name}' out of sources:",
            f"`stackyard source add {name} …` (or git) puts it back",
        )
    )
    if state:
        steps.append(
            RunbookStep(
                "forget dlt state",
                ", ".join(str(p.relative_to(project_dir)) for p in state),
                "the next load starts from the beginning",
            )
        )
    if drop_schemas:
        steps.append(
            RunbookStep(
                "drop schema",
                f"DROP SCHEMA {drop_schemas[0]} CASCADE: every loaded table of '{name}'"
                + (
                    f", and {', '.join(f'{s}.{m}' for s, m in drop_models)}, built on them from "
                    "the deleted staging models"
                    if drop_models
                    else ""
                ),
                "none: reload the data from the source",
                destructive=True,
            )
        )
    for staging in drop_schemas[1:]:
        steps.append(
            RunbookStep(
                "drop schema",
                f"DROP SCHEMA {staging} CASCADE: dlt's staging copies of '{name}' (merge loads)",
                "none: the next merge load makes it again",
                destructive=True,
            )
        )
    notes = (
        tuple(
            f"{p.relative_to(project_dir)} was edited since it was generated: "
            "remove refuses without --force"
            for p in edited
        )
        if edited
        else ()
    )
    return RunbookPlan("source remove", name, tuple(steps), notes)
