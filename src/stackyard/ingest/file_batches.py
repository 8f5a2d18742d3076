"""A filesystem table's files: the bucket's credentials, and a glob that matches nothing.

A glob that matched nothing used to empty a replaced table as a success; it now fails the table
unless the config allows it. How the files' rows are read, typed and deduplicated is in
:mod:`stackyard.ingest.file_stream`.
"""

from __future__ import annotations

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
