"""The ``stackyard`` schema in each target: run history and monitor history.

One owner for its SQL: :mod:`.schema` (tables and writes), :mod:`.history` (runs, loads, dbt
results, freshness; :mod:`.builds` reads which runs built a model), :mod:`.monitors`
(metrics, findings, incidents, alerts) and :mod:`.incidents` (incident response: incidents and
their timelines).
"""

from stackyard.metadata.schema import METADATA_SCHEMA

__all__ = ["METADATA_SCHEMA"]
