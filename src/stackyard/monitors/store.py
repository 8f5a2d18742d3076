"""Monitor history: kept for imports; the tables and their SQL live in
:mod:`stackyard.metadata.monitors`."""

from stackyard.metadata.monitors import (
    FindingRow,
    Incident,
    MetricRow,
    MetricStore,
    Snapshot,
)
from stackyard.metadata.schema import METADATA_SCHEMA

__all__ = ["METADATA_SCHEMA", "FindingRow", "Incident", "MetricRow", "MetricStore", "Snapshot"]
