"""Run history: kept for imports; the tables and their SQL live in :mod:`stackyard.metadata`."""

from stackyard.metadata.history import History, RunSummary
from stackyard.metadata.schema import METADATA_SCHEMA

__all__ = ["METADATA_SCHEMA", "History", "RunSummary"]
