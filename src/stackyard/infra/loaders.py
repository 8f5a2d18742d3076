"""Adding a loader: its database, READER/WRITER roles, the read chain and its service account.

The "Adding Data Sources" runbook's new-loader path (Fivetran, Airbyte, Snowpipe, a streaming
connector …) as one edit of stackyard.yml. :func:`declare_loader` writes the two entries a
loader needs; everything else follows from the layout (:mod:`stackyard.infra.layout`):

* ``access.databases.<LOADER>: {loader: <loader>, schemas: […]}`` gives the database and its
  ``<LOADER>_DB_READER``/``<LOADER>_DB_WRITER`` roles, and puts the reader into
  ``ANALYTICS_SOURCES_READER`` (the read chain);
* ``access.service_accounts.SVC_<LOADER>: {loader: <loader>}`` gives the service account,
  whose dedicated role holds the writer.

The caller validates and saves the file (:class:`~stackyard.config.edit.ProjectFile`), so a
loader is added by ``user add SVC_<LOADER> --service --loader <loader>`` and, for loaders
stackyard does not run itself, by the source runbook.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stackyard.config.edit import ProjectFile
from stackyard.errors import UsageError
from stackyard.infra.declaration import (
    SOURCES_READER,
    reader_role,
    service_account_name,
    writer_role,
)

_LOADER = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


@dataclass(frozen=True)
class LoaderDeclared:
    """What :func:`declare_loader` wrote.

    Attributes:
        loader: the loader, lower case (``fivetran``).
        database: its database (``FIVETRAN``).
        schemas: the database's schemas after the edit.
        service_account: its service account (``SVC_FIVETRAN``).
        new_database: the database was not declared before.
        new_service_account: the service account was not declared before.
    """

    loader: str
    database: str
    schemas: tuple[str, ...]
    service_account: str
    new_database: bool
    new_service_account: bool

    @property
    def roles(self) -> tuple[str, str]:
        """The database's READER and WRITER roles."""
        return reader_role(self.database), writer_role(self.database)


def check_loader_name(loader: str) -> str:
    """A loader's name, lower case, or a usage error saying what a name may hold.

    >>> check_loader_name("Fivetran")
    'fivetran'

    Raises:
        UsageError: not letters, digits and ``_`` starting with a letter.
    """
    name = loader.lower()
    if not _LOADER.match(name):
        raise UsageError(
            f"loader '{loader}' is not a valid name",
            hint="use letters, digits and _, starting with a letter (e.g. fivetran, airbyte)",
        )
    return name


def declare_loader(
    file: ProjectFile,
    loader: str,
    *,
    schemas: Sequence[str] = (),
    account: str | None = None,
    service_entry: dict[str, Any] | None = None,
) -> LoaderDeclared:
    """Declare a loader's database and service account in stackyard.yml (not saved).

    An existing database entry keeps its settings and gains the new schemas; an existing
    service account entry is updated with ``service_entry``.

    Args:
        file: stackyard.yml, open for editing.
        loader: the loader's name (``fivetran``); its database is the name upper-cased.
        schemas: schemas the loader writes in its database (one per source).
        account: its service account's name; default ``SVC_<LOADER>``.
        service_entry: extra keys for the service account (``rsa_public_key``, ``roles``).

    Returns:
        What was declared.

    Raises:
        UsageError: the loader name is invalid, or its database is declared for another loader.
    """
    name = check_loader_name(loader)
    database = name.upper()
    db_key = file.key_of("databases", database)
    new_database = db_key is None
    entry = file.section("databases", db_key or database)
    owner = entry.get("loader")
    if owner and str(owner).lower() != name:
        raise UsageError(
            f"database {database} is declared for loader '{owner}', not '{name}'",
            hint=f"fix access.databases.{db_key} in stackyard.yml, or pick another loader name",
        )
    entry["loader"] = name
    if new_database:
        entry["comment"] = f"Raw data loaded by {name}."
    current = [str(s) for s in entry.get("schemas", []) or []]
    added = [s for s in schemas if s not in current]
    if added or "schemas" not in entry:
        entry["schemas"] = [*current, *added]
    chain = file.key_of("roles", SOURCES_READER)
    if chain is not None and entry.get("database_roles", True) is not False:
        # The read chain is written out in stackyard.yml (a layout taken over with `import
        # access`): the layout then adds nothing to it, and the new reader is added here.
        reader = reader_role(database)
        role = file.section("roles", chain)
        held = [str(r) for r in role.get("member_of", []) or []]
        if reader.upper() not in {r.upper() for r in held}:
            role["member_of"] = [*held, reader]
    account = (account or service_account_name(name)).upper()
    svc_key = file.key_of("service_accounts", account)
    new_service = svc_key is None
    svc = file.section("service_accounts", svc_key or account)
    svc["loader"] = name
    if new_service and "comment" not in svc:
        svc["comment"] = f"Service account for {name} data loading."
    for key, value in (service_entry or {}).items():
        svc[key] = value
    return LoaderDeclared(name, database, (*current, *added), account, new_database, new_service)
