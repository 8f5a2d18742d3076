"""A SQL source table with no rows is created in the warehouse all the same, with its columns.

dlt creates a destination table only once a load brought it data. ConnectorX hands over an
empty Arrow table for an empty query, so on Postgres an empty source table was created; the
pyarrow reader (MySQL, MariaDB, SQLite, and Postgres tables ConnectorX would change) hands
over nothing, so the table was never created, its staging model failed on every run, and
`source add` said "nothing was loaded". On a table's first load, this reader hands over an
empty Arrow table of the reflected columns when the query returned no rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def reader_of_empty_tables() -> type:
    """dlt's SQLAlchemy table loader, handing over an empty Arrow table for no rows."""
    from dlt.sources.sql_database.arrow_helpers import row_tuples_to_arrow
    from dlt.sources.sql_database.helpers import TableLoader

    class EmptyTablesToo(TableLoader):
        def _convert_result(self, result: Any, backend_kwargs: dict[str, Any]) -> Iterator[Any]:
            handed = False
            for item in super()._convert_result(result, backend_kwargs):
                handed = True
                yield item
            if handed or self.backend != "pyarrow":
                return
            names = list(result.keys())
            for name in names:  # as dlt does for a column its reflection did not give
                self.columns.setdefault(name, {"name": name})
            yield row_tuples_to_arrow(
                [],
                columns={name: self.columns[name] for name in names},
                tz=backend_kwargs.get("tz", "UTC"),
            )

    return EmptyTablesToo
