"""Every row a source yields gets ``_loaded_at``, the time stackyard loaded it (dbt's source
freshness and the monitors read it), after the drift check and, for a target whose text
cannot hold NUL, after rows holding one are set aside (:mod:`stackyard.ingest.text_fit`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackyard.ingest.sources import SourceBuild

LOADED_AT = "_loaded_at"


def whole_pages(function: Callable[[Any], Any]) -> Any:
    """A pipe step that gets each page a resource yields whole. dlt's ``add_map`` hands a
    list's rows over one by one, and the drift check must see the page: an optional field
    absent from one event is there in another, and only a page without it says it is gone."""
    from dlt.extract.items_transform import MapItem

    class WholePages(MapItem):
        def __call__(self, item: Any, meta: Any = None) -> Any:
            return function(item)

    return WholePages(function)


def stamper(
    loaded_at: datetime,
    table: str,
    drift: Callable[[Any], None],
    nul_rejects: SourceBuild | None = None,
    key_rejects: tuple[SourceBuild, tuple[str, ...]] | None = None,
) -> Callable[[Any], Any]:
    """The step each page of ``table`` goes through: a column dlt would overwrite refused
    (:mod:`stackyard.ingest.reserved_columns`), the ``drift`` check
    (:func:`stackyard.ingest.drift.check_item`), NUL rows set aside into ``nul_rejects`` (when
    given), rows without a value for the key set aside into ``key_rejects`` (when given, with
    the key: :mod:`stackyard.ingest.null_keys`), ``_loaded_at`` stamped."""
    from stackyard.ingest.reserved_columns import refuse_reserved_in

    def stamp(item: Any) -> Any:
        import pyarrow as pa

        refuse_reserved_in(table, item, loaded_at)
        drift(item)
        if nul_rejects is not None:
            from stackyard.ingest.text_fit import without_nul

            item, rejected = without_nul(item, table)
            if rejected:
                nul_rejects.reject(rejected)
        if key_rejects is not None:
            from stackyard.ingest.null_keys import without_null_key

            build, key = key_rejects
            item, rejected = without_null_key(item, table, key)
            if rejected:
                build.reject(rejected)
        # A row of the source's own with a _loaded_at was refused above, so each is stamped.
        if isinstance(item, pa.Table | pa.RecordBatch):
            column = pa.repeat(
                pa.scalar(loaded_at, type=pa.timestamp("us", tz="UTC")), item.num_rows
            )
            return item.append_column(LOADED_AT, column)
        if isinstance(item, dict):
            item[LOADED_AT] = loaded_at
        elif isinstance(item, list):
            for row in item:
                if isinstance(row, dict):
                    row[LOADED_AT] = loaded_at
        return item

    return stamp
