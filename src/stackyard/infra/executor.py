"""Runs a plan's statements on a warehouse: all of them, or none.

Postgres and DuckDB run DDL and GRANT inside a transaction, so a plan is applied in one: a
failing statement rolls back every statement before it. Snowflake commits each DDL statement
implicitly (docs.snowflake.com/en/sql-reference/transactions), and stackyard ships no
Snowflake driver, so Snowflake plans are handed to the user as SQL instead.
"""

from __future__ import annotations

from stackyard.errors import WarehouseError, WarehouseUnreachableError
from stackyard.infra.engine import StatementFailed
from stackyard.infra.plan import Plan
from stackyard.warehouse.base import Warehouse


def execute(plan: Plan, warehouse: Warehouse) -> int:
    """Run every step of ``plan`` in one transaction.

    Args:
        plan: the plan, already checked (ownership, destructive steps, freshness).
        warehouse: the target's warehouse.

    Returns:
        The number of statements run.

    Raises:
        WarehouseError: a statement failed; the transaction was rolled back, nothing applied.
        WarehouseUnreachableError: the target cannot run statements from here.
    """
    if not plan.steps:
        return 0
    if not warehouse.SUPPORTS_TRANSACTIONAL_DDL or not warehouse.REACHABLE_HERE:
        raise WarehouseUnreachableError(
            f"{warehouse.describe()}: stackyard cannot apply access plans there itself",
            hint="save the plan with `stackyard plan --out plan.json` (or --sql plan.sql) and "
            "run its statements with an administrator role, e.g. `snowsql -f plan.sql`",
        )
    from stackyard.infra.engines import engine_class

    engine = engine_class(warehouse.KIND, warehouse.target_name)
    try:
        return engine.execute([step.statement for step in plan.steps], warehouse)
    except StatementFailed as exc:
        raise _failed(plan, exc.index, exc.reason) from None
    except WarehouseUnreachableError as exc:
        raise WarehouseUnreachableError(
            f"{exc.message} (during apply)",
            hint="nothing was applied (the transaction was rolled back): run apply again",
        ) from None


def _failed(plan: Plan, index: int, reason: str) -> WarehouseError:
    step = plan.steps[index]
    return WarehouseError(
        f"step {index + 1} of {len(plan.steps)} failed ({step.description}): {reason}\n"
        f"  statement: {step.statement}\n"
        "the transaction was rolled back: nothing was applied",
        hint=_what_to_do(reason),
    )


def _what_to_do(reason: str) -> str:
    """The way forward for a failed statement, by what the warehouse said. Every failure
    read "the applying user needs CREATEROLE", also where no right of the user could help.

    >>> _what_to_do("must be superuser to change bypassrls attribute")[:42]
    'only a superuser may run this statement: h'
    >>> _what_to_do("dependent privileges exist")[:43]
    'the role held this privilege WITH GRANT OPT'
    """
    said = reason.lower()
    if "must be superuser" in said:
        return (
            "only a superuser may run this statement: have one run it (it takes back what was "
            "given by hand), then run `stackyard plan` again"
        )
    if "dependent privileges exist" in said:
        return (
            "the role held this privilege WITH GRANT OPTION and passed it on: Postgres will "
            "not take it back while others hold it from this role. Find them (SELECT grantee, "
            "table_schema, table_name FROM information_schema.role_table_grants WHERE grantor "
            "= '<the role>'), revoke theirs first (REVOKE … FROM <grantee> GRANTED BY <the "
            "role>) or revoke this one with CASCADE by hand, then run `stackyard plan` again"
        )
    if "objects in database" in said or "depend on it" in said:
        return (
            "the role still owns or holds something in another database, which an apply here "
            "cannot reach: `REASSIGN OWNED BY` and `DROP OWNED BY` it there (or keep it "
            "declared), then run `stackyard plan` again"
        )
    return (
        "the applying user needs CREATEROLE and rights on the schemas (a superuser or "
        "the database owner); fix the cause and run `stackyard plan` again"
    )
