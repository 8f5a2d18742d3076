"""Backfills: re-run a date range of a source table or a dbt model, partition by partition,
over one resumable ledger kept in the warehouse (see docs/runbooks/backfills.md)."""
