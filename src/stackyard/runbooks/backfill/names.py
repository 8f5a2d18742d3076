"""What a backfill says of ``X.TABLE`` when no source is called ``X``.

A dbt model's name has no dot, so such a name always meant a table: a source's under another
of its names (dbt's ``dlt_<source>``, or the schema it loads into), a source's with a typo,
or a model written with its schema. A "did you mean <model>" pointed the wrong way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from stackyard.config.model import ProjectConfig, RestApiSource, SqlDatabaseSource
from stackyard.errors import UsageError, did_you_mean
from stackyard.transform.staging import dbt_source_names


def _close(word: str, candidates: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_source_table(name: str, config: ProjectConfig, models: Mapping[str, str]) -> UsageError:
    """The error for ``X.TABLE`` where ``X`` is not a source of ``config``.

    Args:
        name: what the user asked to backfill, with a dot.
        config: the project's stackyard.yml.
        models: the dbt project's models, each name to its schema.

    Returns:
        A usage error saying which source's table it is (or may be), and how to backfill
        or reload that table.
    """
    prefix, _, table = name.partition(".")
    aliases: dict[str, tuple[str, str]] = {}
    for source, spec in config.sources.items():
        aliases.setdefault(source, (source, ""))
        for alias in (spec.dbt_name(source), *dbt_source_names(source)):
            aliases.setdefault(alias, (source, "its name in dbt"))
        aliases.setdefault(config.dataset_for(source), (source, "the schema it loads into"))
    if prefix in aliases:
        source, called = aliases[prefix]
        found = (
            f"'{name}' is not a dbt model: it is source {source}'s table {table} ('{prefix}' "
            f"is {called})"
        )
    elif models.get(table) == prefix:
        return UsageError(
            f"'{name}' is not a source's table: no source is called '{prefix}'",
            hint=f"a model is named without its schema: `stackyard backfill {table} --start … "
            "--end …`",
        )
    else:
        close = _close(prefix, aliases)
        if close is None:
            listed = ", ".join(sorted(config.sources)) or "none"
            return UsageError(
                f"'{name}' is not a dbt model, and no source is called '{prefix}'",
                hint=f"a source's table is named SOURCE.TABLE; this project's sources: {listed}",
            )
        source = aliases[close][0]
        found = f"'{name}' is not a dbt model, and no source is called '{prefix}'" + (
            f" (did you mean '{source}'?)"
        )
    spec = config.sources[source]
    tables = spec.declared_tables()
    if tables and table not in tables:
        found += f"; source {source} has no table '{table}'{did_you_mean(table, tables)}"
        table = _close(table, tables) or table
    meant = f"{source}.{table}"
    reload = f"reload it whole with `stackyard reload {meant} --yes`"
    by_date = isinstance(spec, SqlDatabaseSource | RestApiSource) and table in spec.cursors()
    return UsageError(
        found,
        hint=f"{meant} is a source's table: backfill it by date with `stackyard backfill {meant} "
        f"--start … --end …`, or {reload}"
        if by_date
        else f"{meant} is a source's table with no cursor to cut by date: {reload}",
    )
