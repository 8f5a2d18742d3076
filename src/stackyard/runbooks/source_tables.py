"""What ``source add`` reads from a SQL database before it writes a table's entry.

The key a table merges on is part of its entry in stackyard.yml: read from the database when
the user named none, so that what is loaded is what the file says (a key used only for the
staging tests, but not for loading, made every update a second row).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from stackyard.errors import SourceUnreachableError, UsageError, did_you_mean
from stackyard.results import SourceLoad


def _views(inspector: Any, schema: str | None) -> list[str]:
    """The database's views, materialized ones too where the dialect has them."""
    names = list(inspector.get_view_names(schema=schema))
    with contextlib.suppress(NotImplementedError):  # a dialect without them
        names += inspector.get_materialized_view_names(schema=schema)
    return names


def complete_sql_tables(
    url: str, schema: str | None, tables: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The tables' entries with each missing ``primary_key`` read from the database.

    Args:
        url: the SQLAlchemy URL (secret resolved).
        schema: the schema to read in the source database, if not the default.
        tables: ``{table: entry}`` as given on the command line.

    Returns:
        The entries, ``primary_key`` first where one was found.

    Raises:
        UsageError: a table does not exist, or has a cursor, no key and no ``append``.
        ReservedColumnError: a table has a column dlt would overwrite.
    """
    import sqlalchemy

    from stackyard.ingest.reserved_columns import refuse_reserved

    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as conn:
            inspector = sqlalchemy.inspect(conn)
            # Views too: a view that casts what the reader cannot hold is the way stackyard
            # itself suggests (``source_table:``); it was refused as "no table".
            names = [*inspector.get_table_names(schema=schema), *_views(inspector, schema)]
            keys = {}
            for table, entry in tables.items():
                source_table = entry.get("source_table") or table
                if source_table not in names:
                    raise UsageError(
                        f"the database has no table '{source_table}'"
                        f"{did_you_mean(source_table, names)}",
                        hint=f"its tables: {', '.join(sorted(names)) or '(none)'}",
                    )
                columns = inspector.get_columns(source_table, schema=schema)
                refuse_reserved(source_table, [c["name"] for c in columns])
                pk = inspector.get_pk_constraint(source_table, schema=schema)
                keys[table] = (pk or {}).get("constrained_columns") or []
        engine.dispose()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        # A cursor without a key, whose key was to be read here: said as what it is (the
        # database did not answer), not as a table without a key.
        keyless = [t for t, e in tables.items() if e.get("cursor") and not e.get("primary_key")]
        if keyless and not all(tables[t].get("append") for t in keyless):
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise SourceUnreachableError(
                f"could not read the primary key of {', '.join(keyless)} (a cursor needs "
                f"one): the source database did not answer: {reason}",
                hint="check that the server runs and the URL's host, port and database; or "
                f"name the key yourself with --primary-key {keyless[0]}=COLUMN; nothing "
                "was changed",
            ) from None
        # Unreachable or refused: the first load fails with the driver's reason and the add
        # is undone (exit code 1), as for a source given its keys.
        return {table: dict(entry) for table, entry in tables.items()}
    out: dict[str, dict[str, Any]] = {}
    for table, entry in tables.items():
        found = keys[table]
        completed = dict(entry)
        if not entry.get("primary_key") and found:
            completed = {"primary_key": found[0] if len(found) == 1 else list(found), **entry}
        if completed.get("cursor") and not completed.get("primary_key"):
            if not completed.get("append"):
                raise UsageError(
                    f"table '{table}' has no primary key in the database, and a cursor "
                    "without a key cannot merge: every changed row would be appended again",
                    hint=f"name its key with --primary-key {table}=COLUMN, or pass --append "
                    "to append each load's new rows (rows at the last cursor value are not "
                    "loaded twice); nothing was changed",
                )
        elif "append" in completed:
            del completed["append"]  # append only means something for a cursor without key
        out[table] = completed
    return out


def empty_first_load(load: SourceLoad, entry: Mapping[str, Any]) -> SourceLoad:
    """A first load that brought no rows, as the failure it is for ``source add``: there is
    nothing to write staging models from, so the add is undone like any failed first load.
    """
    hint = "check the source has rows (and the options: table names, globs, data selector)"
    paginators = [entry.get("paginator") or {}] + [
        (e or {}).get("paginator") or {} for e in (entry.get("endpoints") or {}).values()
    ]
    if any(p.get("type") == "page_number" and p.get("base_page") is None for p in paginators):
        hint = (
            "the page_number paginator asks for page 0 first; if the API's pages start at 1, "
            "add base_page=1 (--paginator page_number:page_param=page,base_page=1,…)"
        )
    return SourceLoad(
        source=load.source,
        schema=load.schema,
        status="failed",
        tables=load.tables,
        load_ids=load.load_ids,
        rejected=load.rejected,
        error=f"the first load brought no rows: {hint}",
        seconds=load.seconds,
    )


def models_reading(
    transform_dir: Path, dbt_sources: Iterable[str], generated: Sequence[Path]
) -> list[Path]:
    """dbt models (other than ``generated``) whose SQL reads one of the dbt sources."""
    names = "|".join(re.escape(n) for n in dbt_sources)
    if not names:
        return []
    pattern = re.compile(r"source\(\s*['\"](" + names + r")['\"]")
    skip = {p.resolve() for p in generated}
    models = transform_dir / "models"
    found = []
    for path in sorted(models.rglob("*.sql")) if models.is_dir() else []:
        if path.resolve() in skip:
            continue
        if pattern.search(path.read_text(encoding="utf-8", errors="replace")):
            found.append(path)
    return found
