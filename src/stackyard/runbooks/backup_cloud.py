"""Backups and point-in-time table restores on Snowflake and BigQuery, as generated SQL.

Both keep history themselves, so a backup is a clone, not a copy:

* Snowflake: ``CREATE DATABASE … CLONE`` is zero-copy; a table ``CLONE … AT (TIMESTAMP => …)``
  reads Time Travel (1 day by default, up to 90 on Enterprise;
  https://docs.snowflake.com/en/user-guide/data-time-travel).
* BigQuery: a table ``CLONE`` per table into a backup dataset (billed only for changed data),
  and ``FOR SYSTEM_TIME AS OF`` reads up to 7 days back
  (https://cloud.google.com/bigquery/docs/time-travel).

stackyard ships no driver for either, so ``--dry-run`` prints these statements to run; the
golden files in tests/runbooks/golden/ are checked with sqlglot's dialect parsers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stackyard.errors import UsageError
from stackyard.runbooks.backup_engines import sql_string
from stackyard.runbooks.recovery_plan import RecoveryPlan, Step, replace_rows_sql
from stackyard.warehouse.base import Warehouse


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%d_%H%M%S")


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


def cloud_backup_plan(
    warehouse: Warehouse, at: datetime, tables: tuple[tuple[str, str], ...] = ()
) -> RecoveryPlan:
    """A Snowflake database clone, or BigQuery table clones, named after the instant.

    Args:
        warehouse: a Snowflake or BigQuery target.
        at: the backup's instant.
        tables: ``(dataset, table)`` pairs to clone (BigQuery clones tables, not datasets).
    """
    config: Any = warehouse.config
    if warehouse.TIME_TRAVEL == "clone":
        name = f"{config.database}_BACKUP_{_stamp(at)}"
        statement = (
            f"CREATE DATABASE {warehouse.quote(name)} CLONE {warehouse.quote(config.database)}"
        )
        steps = (
            Step(
                "sql",
                f"zero-copy clone of database {config.database} as {name}",
                f"DROP DATABASE {warehouse.quote(name)}",
                (statement,),
            ),
        )
        location = name
        notes = ("restore with: CREATE OR REPLACE DATABASE <db> CLONE " + name,)
    else:
        dataset = f"backup_{_stamp(at)}"
        statements = [f"CREATE SCHEMA IF NOT EXISTS {warehouse.quote(config.project, dataset)}"]
        statements += [
            f"CREATE TABLE {warehouse.quote(config.project, dataset, f'{schema}__{table}')} "
            f"CLONE {warehouse.quote(config.project, schema, table)}"
            for schema, table in tables
        ]
        steps = (
            Step(
                "sql",
                f"clone {len(tables)} tables into dataset {dataset}",
                f"DROP SCHEMA {warehouse.quote(config.project, dataset)} CASCADE",
                tuple(statements),
            ),
        )
        location = f"{config.project}.{dataset}"
        notes = ("a clone is billed only for data that changes in the original afterwards",)
    return RecoveryPlan(
        action="backup",
        target=warehouse.target_name,
        engine=warehouse.KIND,
        location=location,
        steps=steps,
        notes=notes,
    )


def restore_table_sql(warehouse: Warehouse, schema: str, table: str, as_of: datetime) -> Step:
    """The statement that brings back one table as it was at ``as_of``, beside the original.

    The copy is named ``<table>__restored``; compare it, then swap it in by replacing the
    table's rows in one transaction (:func:`~stackyard.runbooks.recovery_plan.replace_rows_sql`), which keeps the table's grants,
    policies, partitioning and the views over it. The copy holds the table's columns as they
    were, in order, so every column is copied by position; stackyard ships no driver to list
    them.

    Raises:
        UsageError: the engine keeps no history (DuckDB, Postgres).
    """
    config: Any = warehouse.config
    restored = f"{table}__restored"
    if warehouse.TIME_TRAVEL == "clone":
        # Quoted names are case-sensitive in Snowflake: keep the copy's name in the same case.
        restored = restored.upper() if table.isupper() else restored
        source = warehouse.quote(config.database, schema, table)
        copy = warehouse.quote(config.database, schema, restored)
        statements: tuple[str, ...] = (
            f"CREATE TABLE {copy} CLONE {source} "
            f"AT (TIMESTAMP => CAST({sql_string(_instant(as_of))} AS TIMESTAMPTZ))",
        )
        # Snowflake drops a table (DDL) only outside a transaction: it commits one implicitly.
        after = replace_rows_sql(source, copy, drop_in_transaction=False)
    elif warehouse.TIME_TRAVEL == "system_time":
        source = warehouse.quote(config.project, schema, table)
        copy = warehouse.quote(config.project, schema, restored)
        statements = (
            f"CREATE OR REPLACE TABLE {copy} AS SELECT * FROM {source} "
            f"FOR SYSTEM_TIME AS OF TIMESTAMP {sql_string(_instant(as_of))}",
        )
        # BigQuery allows no DDL on a permanent table inside a transaction, and no DELETE
        # without WHERE (https://cloud.google.com/bigquery/docs/transactions).
        after = replace_rows_sql(
            source,
            copy,
            begin="BEGIN TRANSACTION",
            commit="COMMIT TRANSACTION",
            drop_in_transaction=False,
            delete_needs_where=True,
        )
    else:
        raise UsageError(
            f"{warehouse.KIND} keeps no history of a table, so it cannot be read as of a time",
            hint="restore the table from a backup: stackyard restore-table "
            f"{schema}.{table} --from BACKUP (with --as-of, the newest backup before that "
            "time is used)",
        )
    return Step(
        "sql",
        f"copy {schema}.{table} as of {_instant(as_of)} to {restored}, beside the original; "
        f"after checking it, swap it in: {after}",
        f"DROP TABLE {copy}",
        statements,
    )
