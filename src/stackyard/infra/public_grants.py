"""PUBLIC's grants on data found in the warehouse, for the ``no-public-grants`` rule, each
with the statement that takes it back written by the target's engine module: Postgres and
Snowflake spell a REVOKE from PUBLIC differently."""

from __future__ import annotations

from collections.abc import Iterator

from stackyard.infra.declaration import Declaration
from stackyard.infra.engine import Engine
from stackyard.infra.state import State

INFORMATION_SCHEMA = "INFORMATION_SCHEMA"  # the catalog views of every engine


def _by_hand(statement: str | None) -> str:
    """How to take back a grant to PUBLIC, with the engine's statement when known.

    >>> _by_hand("REVOKE SELECT ON t FROM PUBLIC").split("; ")[0]
    'revoke it by hand (REVOKE SELECT ON t FROM PUBLIC'
    >>> _by_hand(None)
    "revoke it by hand (stackyard does not own PUBLIC's grants)"
    """
    revoke = f"{statement}; " if statement else ""
    return f"revoke it by hand ({revoke}stackyard does not own PUBLIC's grants)"


def public_data_grants(live: State, decl: Declaration, engine: Engine | None) -> Iterator[str]:
    """PUBLIC's grants on data, in every schema the live state holds (the project's own and
    any other: an adopted dbt project's ``analytics``, a ``raw`` schema), and PUBLIC's
    default privileges, which make a schema's new tables everybody's.

    USAGE on a schema the project does not declare is left out: by itself it opens nothing to
    read (each table needs its own grant, reported here), and Postgres gives it to PUBLIC on
    schema ``public`` in every database
    (https://www.postgresql.org/docs/current/ddl-schemas.html#DDL-SCHEMAS-PRIV).
    """
    declared: set[tuple[str, ...]] = {(s.upper(),) for db in decl.databases for s in db.schemas}
    declared |= {(db.name, s.upper()) for db in decl.databases for s in db.schemas}
    for grant in sorted(live.grants):
        if grant.grantee.kind != "public" or grant.on_kind not in ("SCHEMA", "TABLE", "COLUMN"):
            continue
        depth = {"TABLE": 1, "COLUMN": 2}.get(grant.on_kind, 0)
        schema = tuple(part.upper() for part in grant.on[: len(grant.on) - depth])
        if schema[-1:] == (INFORMATION_SCHEMA,):
            continue
        if grant.on_kind == "SCHEMA" and grant.privilege == "USAGE" and schema not in declared:
            continue
        revoke = engine.grant([grant], revoke=True) if engine else None
        yield (
            f"PUBLIC holds {grant.privilege} on {grant.on_kind.lower()} "
            f"{'.'.join(grant.on)} in the warehouse: {_by_hand(revoke)}"
        )
    for future in sorted(live.future_grants):
        if future.grantee.kind == "public" and future.schema[-1:] != (INFORMATION_SCHEMA,):
            made_by = f" {future.creator} creates" if future.creator else ""
            # No schema: set without IN SCHEMA, for the tables made in every schema.
            where = f"schema {'.'.join(future.schema)}" if future.schema else "every schema"
            revoke = engine.grant_future([future], revoke=True) if engine else None
            yield (
                f"PUBLIC is given {future.privilege} on the {future.on_kind.lower()}{made_by} "
                f"in {where} from now on (a default privilege in the warehouse): "
                + _by_hand(revoke)
            )
