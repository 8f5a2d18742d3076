"""dlt run in threads: imported once before they start, and told to stop on Ctrl-C."""

from __future__ import annotations


def stop_dlt(again: bool = False) -> None:
    """Tell dlt to stop as its own SIGINT handler does (it installs none in a thread): it
    extracts no further item and starts no further load job, leaving the package pending;
    ``again=True`` lets it run again."""
    from dlt.common.runtime import signals

    signals.set_received_signal(0 if again else 2)
    if not again:
        signals.wake_all()


def import_before_threads() -> None:
    """Import what the loaders need once, in this thread.

    Two threads importing pyarrow (or dlt's sources) for the first time at once can see a
    half-initialised module ("partially initialized module 'pyarrow'").
    """
    import duckdb  # noqa: F401
    import pyarrow
    import pyarrow.compute  # noqa: F401
    import sqlalchemy  # noqa: F401
    from dlt.sources import filesystem, sql_database  # noqa: F401
