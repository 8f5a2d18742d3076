"""The tables of a ``filesystem`` source: which files, in which format, read how."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackyard.config.base import StrictModel


class FileTable(StrictModel):
    """One table read from files matching a glob."""

    glob: str
    format: Literal["csv", "jsonl", "parquet"] | None = Field(
        None, description="Default: from the file extension."
    )
    primary_key: str | list[str] | None = None
    delimiter: str = ","
    date_format: str | None = Field(
        None,
        description="CSV dates in another order than year first, as strftime: '%d/%m/%Y' or "
        "'%m/%d/%Y' (without it such dates are refused: see stackyard.ingest.csv_dates).",
    )
    timestamp_format: str | None = Field(
        None, description="The same for timestamps, e.g. '%d/%m/%Y %H:%M:%S'."
    )
    allow_empty: bool = Field(
        False, description="A glob matching no file empties the table instead of failing it."
    )

    def file_format(self) -> str:
        """The format, from ``format`` or else the glob's extension.

        >>> FileTable(glob="x/*.parquet").file_format()
        'parquet'
        """
        if self.format:
            return self.format
        for ext, fmt in ((".csv", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl")):
            if self.glob.endswith(ext):
                return fmt
        if self.glob.endswith((".parquet", ".pq")):
            return "parquet"
        raise ValueError(
            f"cannot tell the format of '{self.glob}' from its extension: set format: csv, "
            "jsonl or parquet"
        )
