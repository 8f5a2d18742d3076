"""One batch per filesystem table and load: every file read, types unified, keys made unique.

Reading the files of a table one by one and handing dlt each as it comes had three holes: the
first file fixed a column's type (a later file with ``10.5`` where the first had only integers
failed the first load); rows sharing a key across or within files were collapsed by the merge
in no stated order and counted as loaded; and a glob that matched nothing emptied a replaced
table as a success.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stackyard.errors import ConfigError, LoadError


def bucket_credentials(source: str, url: str, value: str) -> Any:
    """dlt's credentials for a bucket URL, from a secret's value.

    A JSON object holds the fields of dlt's credentials for the URL's protocol (for s3://:
    ``aws_access_key_id``, ``aws_secret_access_key``, ``endpoint_url``…; for gs://: a
    service-account key file's JSON); any other text is handed to dlt as it is (an Azure
    connection string). dlt reads S3 credentials only from fields, so plain text is refused
    for s3:// instead of failing later with an unrelated error.

    >>> bucket_credentials("b", "s3://x", '{"aws_access_key_id": "k"}')
    {'aws_access_key_id': 'k'}

    Raises:
        ConfigError: the value looks like JSON and does not parse, or is plain text for s3://.
    """
    import json

    where = f"sources.{source}.credentials"
    if value.lstrip().startswith("{"):
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{where}: the secret starts like a JSON object but does not parse: {exc.msg} "
                f"(line {exc.lineno}, column {exc.colno})",
                hint="write the credentials as one JSON object, e.g. "
                '{"aws_access_key_id": "…", "aws_secret_access_key": "…"}',
            ) from None
        if isinstance(data, dict):
            return data
    if url.startswith("s3://"):
        raise ConfigError(
            f"{where}: for an s3:// URL the secret must be a JSON object with the key's "
            "fields; found plain text",
            hint='set it to {"aws_access_key_id": "…", "aws_secret_access_key": "…"} (add '
            '"endpoint_url" for an S3-compatible store, "region_name" if needed)',
        )
    return value


def check_files_exist(
    source: str, table: str, url: str, glob: str, *, allow_empty: bool, credentials: Any
) -> None:
    """Fail the table when its glob matches no file (unless the config allows it).

    Raises:
        LoadError: no file matches.
    """
    if allow_empty:
        return
    if credentials is None:
        from dlt.common.storages.fsspec_filesystem import fsspec_filesystem, glob_files

        found = next(iter(glob_files(fsspec_filesystem(url)[0], url, glob)), None)
    else:
        # With credentials dlt builds the filesystem from its own configuration types (a
        # service-account JSON, a connection string…): list through dlt's own resource, so
        # the check signs in exactly as the load will (and fails as it would).
        from dlt.sources.filesystem import filesystem

        listing: Any = filesystem
        found = next(iter(listing(bucket_url=url, file_glob=glob, credentials=credentials)), None)
    if found is None:
        raise LoadError(
            f"source '{source}', table '{table}': no file matches '{glob}' in {url}; the "
            "table was left as it was",
            hint="check that the files are there and the glob is right; if no file is a "
            f"normal state, set allow_empty: true on sources.{source}.tables.{table}",
        )


def combine(batches: Sequence[Any]) -> Any:
    """The files' rows as one Arrow table, each column of the type that fits every file
    (an integer column with a decimal in another file becomes a double, never rounded).

    >>> import pyarrow as pa
    >>> combine([pa.table({"a": [1]}), pa.table({"a": [1.5]})]).schema.field("a").type
    DataType(double)
    """
    import pyarrow as pa

    if len(batches) == 1:
        return batches[0]
    return pa.concat_tables(batches, promote_options="permissive")


def keep_last(rows: Any, key: Sequence[str]) -> tuple[Any, int]:
    """The rows with each key once, the last occurrence kept (files in name order, lines in
    file order); and how many rows were collapsed.

    >>> import pyarrow as pa
    >>> table, collapsed = keep_last(pa.table({"id": [1, 2, 1], "v": ["a", "b", "c"]}), ["id"])
    >>> table.to_pydict(), collapsed
    ({'id': [2, 1], 'v': ['b', 'c']}, 1)
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = [k for k in key if k not in rows.column_names]
    if missing or rows.num_rows < 2:
        return rows, 0
    index = "__stackyard_row"
    numbered = rows.append_column(index, pa.array(range(rows.num_rows), type=pa.int64()))
    last = numbered.group_by(list(key), use_threads=False).aggregate([(index, "max")])
    keep = pc.sort_indices(last[f"{index}_max"])
    chosen = pc.take(last[f"{index}_max"], keep)
    collapsed = rows.num_rows - len(chosen)
    if not collapsed:
        return rows, 0
    return rows.take(chosen), collapsed
