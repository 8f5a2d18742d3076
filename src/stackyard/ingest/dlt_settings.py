"""The dlt settings a load runs with, set as environment variables for its length."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from stackyard.warehouse.base import Warehouse

# dlt sends an anonymous usage event to dlthub from a thread pool at every step of every load
# (extract, normalize, load): a network round trip and about 0.3 s of Python per load on the
# development machine, competing with the load for the interpreter. stackyard keeps dbt's off
# as well (transform/dbt.py); a user who wants them sets the variable, which is left as set.
QUIET_DLT = {"RUNTIME__DLTHUB_TELEMETRY": "false"}


@contextmanager
def dlt_settings(warehouse: Warehouse) -> Iterator[None]:
    """dlt settings for one load into one warehouse, as environment variables that are put
    back afterwards, so a load into one target never changes the next one's. A variable the
    user set is left as it is."""
    settings = {
        # Arrow tables skip dlt's per-row normalizer; ask it to add the load id column that
        # dbt sources and run history join on.
        "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID": "true",
        # dlt logs a failed job's traceback to stderr, then raises: the error is reported
        # from what it raises, in words (`--debug` keeps dlt's own log).
        "RUNTIME__LOG_LEVEL": "CRITICAL",
        # Loaded packages are history dlt never reads again; keep .stackyard/ from growing
        # with every run (the load ids stay in the warehouse's _dlt_loads and stackyard.loads).
        "LOAD__DELETE_COMPLETED_JOBS": "true",
        **QUIET_DLT,
    }
    if not warehouse.COMPRESS_LOAD_FILES:
        # ~5 % of a 1M-row load (docs/performance.md); the files never leave the machine.
        settings["DATA_WRITER__COMPRESSION"] = "none"
    settings.update(warehouse.dlt_environment())
    added = [key for key in settings if key not in os.environ]
    os.environ.update({key: settings[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
