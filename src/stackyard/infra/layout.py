"""Building the :class:`~stackyard.infra.declaration.Declaration` from stackyard.yml.

:func:`build_declaration` expands the ``access:`` section with the derived layout and
validates what a pydantic model cannot see on its own: references to undeclared roles,
cycles in memberships, name clashes.

The derived least-privilege layout (``access.defaults: true``), for a project whose sources
are loaded by dlt:
* database ``DLT`` with one schema per source (named as ``dataset_for`` gives), database
  roles ``DLT_DB_READER`` and ``DLT_DB_WRITER`` (the writer holds the reader);
* database ``ANALYTICS`` with the dbt schemas, and ``ANALYTICS_DEV`` for developers' schemas;
* ``ANALYTICS_SOURCES_READER`` holds every loader database's READER (the read chain);
* ``ANALYTICS_TRANSFORMER`` holds the sources reader and ``ANALYTICS_DB_WRITER``;
* ``ANALYTICS_DEVELOPER`` holds the sources reader and ``ANALYTICS_DB_READER``; each person
  with it gets a schema ``dev_<person>`` and a role ``DEV_<PERSON>`` that writes only that;
* ``REPORTING_READER`` reads the reporting schema only;
* ``SVC_DLT``: a service user whose dedicated role ``SVC_DLT`` holds ``DLT_DB_WRITER``;
* warehouses ``LOADING``, ``TRANSFORMING`` and ``REPORTING`` (Snowflake only).
"""

from __future__ import annotations

from dataclasses import replace

from stackyard.config.access import (
    AccessConfig,
    DatabaseConfig,
    GrantConfig,
    PersonConfig,
    RoleConfig,
    ServiceAccountConfig,
    WarehouseConfig,
)
from stackyard.config.model import ProjectConfig
from stackyard.errors import ConfigError, did_you_mean
from stackyard.infra.declaration import (
    DEFAULT_LOADER,
    DEVELOPER,
    PUBLIC,
    REPORTING_READER,
    SOURCES_READER,
    TRANSFORMER,
    Database,
    Declaration,
    Membership,
    Role,
    SchemaAccess,
    User,
    Warehouse,
    WarehouseAccess,
    dev_schema,
    held_roles,
    reader_role,
    service_account_name,
    writer_role,
)


def build_declaration(config: ProjectConfig) -> Declaration:
    """Expand the project's ``access:`` section, with the derived layout, and validate it.

    Args:
        config: the loaded stackyard.yml.

    Returns:
        The full desired state, engine-neutral.

    Raises:
        ConfigError: a reference to an undeclared role, database, schema or warehouse, a
            cycle in role memberships, or a name used twice; the message says where.
    """
    access = config.access
    databases: dict[str, DatabaseConfig] = {}
    warehouses: dict[str, WarehouseConfig] = {}
    roles: dict[str, RoleConfig] = {}
    services: dict[str, ServiceAccountConfig] = {}
    grants: list[GrantConfig] = []
    if access.defaults:
        _derive_defaults(config, databases, warehouses, roles, services, grants)
    for name, db in access.databases.items():
        key = name.upper()
        if key in databases:
            old = databases[key]
            merged = [*old.schemas, *(s for s in db.schemas if s not in old.schemas)]
            databases[key] = DatabaseConfig(
                loader=db.loader or old.loader,
                schemas=merged,
                database_roles=db.database_roles,
                comment=db.comment or old.comment,
            )
        else:
            databases[key] = db
    warehouses.update({k.upper(): v for k, v in access.warehouses.items()})
    roles.update({k.upper(): v for k, v in access.roles.items()})
    services.update({k.upper(): v for k, v in access.service_accounts.items()})
    if access.defaults:
        _complete_loaders(access, databases, roles, services)
    people = {k.upper(): v for k, v in access.people.items()}
    grants.extend(access.grants)
    return _Builder(config.name, access, databases, warehouses, roles, services, people).build(
        grants
    )


def _derive_defaults(
    config: ProjectConfig,
    databases: dict[str, DatabaseConfig],
    warehouses: dict[str, WarehouseConfig],
    roles: dict[str, RoleConfig],
    services: dict[str, ServiceAccountConfig],
    grants: list[GrantConfig],
) -> None:
    access = config.access
    loaders: dict[str, list[str]] = {}
    for source, source_config in config.sources.items():
        # a source another tool loads lands in that loader's database (AIRBYTE, FIVETRAN …)
        loader = str(getattr(source_config, "loader", DEFAULT_LOADER))
        schemas = loaders.setdefault(loader, [])
        dataset = config.dataset_for(source)
        if dataset not in schemas:
            schemas.append(dataset)
    for loader, schemas in loaders.items():
        databases[loader.upper()] = DatabaseConfig(
            loader=loader, schemas=schemas, comment=f"Raw data loaded by {loader}."
        )
        services[service_account_name(loader)] = ServiceAccountConfig(
            loader=loader, comment=f"Service account for {loader} data loading."
        )
    analytics = access.analytics_database.upper()
    databases[analytics] = DatabaseConfig(
        schemas=list(access.analytics_schemas), comment="Models built by dbt."
    )
    databases[access.dev_database.upper()] = DatabaseConfig(
        schemas=[], comment="Each developer's own schema."
    )
    for name in ("LOADING", "TRANSFORMING", "REPORTING"):
        warehouses[name] = WarehouseConfig()
    roles[SOURCES_READER] = RoleConfig(
        member_of=[reader_role(loader) for loader in loaders],
        comment="Reads every loader database (the read chain).",
    )
    roles[TRANSFORMER] = RoleConfig(
        member_of=[SOURCES_READER, writer_role(analytics)],
        comment="Reads raw data, writes analytics.",
    )
    roles[DEVELOPER] = RoleConfig(
        member_of=[SOURCES_READER, reader_role(analytics)],
        comment="Reads everything, writes its own dev schema.",
    )
    roles[REPORTING_READER] = RoleConfig(comment="Reads reporting only.")
    grants.append(
        GrantConfig(
            role=REPORTING_READER,
            read=[f"{analytics}.{s}" for s in access.reporting_schemas],
            warehouses=["REPORTING"],
        )
    )
    grants.append(GrantConfig(role=TRANSFORMER, warehouses=["TRANSFORMING"]))
    grants.append(GrantConfig(role=DEVELOPER, warehouses=["TRANSFORMING"]))


def _complete_loaders(
    access: AccessConfig,
    databases: dict[str, DatabaseConfig],
    roles: dict[str, RoleConfig],
    services: dict[str, ServiceAccountConfig],
) -> None:
    """Every loader database, derived or declared, is in the read chain and has its loader's
    service account, unless stackyard.yml says otherwise under the same name."""
    loaders = {name: db.loader for name, db in databases.items() if db.loader}
    if SOURCES_READER not in {k.upper() for k in access.roles}:
        roles[SOURCES_READER] = RoleConfig(
            member_of=[reader_role(name) for name in loaders],
            comment="Reads every loader database (the read chain).",
        )
    served = {svc.loader for svc in services.values() if svc.loader}
    for loader in loaders.values():
        account = service_account_name(str(loader))
        if loader not in served and account not in services:
            services[account] = ServiceAccountConfig(
                loader=loader, comment=f"Service account for {loader} data loading."
            )


class _Builder:
    def __init__(
        self,
        project: str,
        access: AccessConfig,
        databases: dict[str, DatabaseConfig],
        warehouses: dict[str, WarehouseConfig],
        roles: dict[str, RoleConfig],
        services: dict[str, ServiceAccountConfig],
        people: dict[str, PersonConfig],
    ) -> None:
        self.project = project
        self.access_config = access
        self.db_configs = databases
        self.wh_configs = warehouses
        self.role_configs = roles
        self.services = services
        self.people = people
        self.databases: dict[str, Database] = {}
        self.roles: dict[str, Role] = {}
        self.users: dict[str, User] = {}
        self.memberships: set[Membership] = set()
        self.access: set[SchemaAccess] = set()
        self.warehouse_access: set[WarehouseAccess] = set()

    def build(self, grants: list[GrantConfig]) -> Declaration:
        dev_db = self.access_config.dev_database.upper()
        developer_schemas = [
            dev_schema(name)
            for name, person in self.people.items()
            if DEVELOPER in {r.upper() for r in person.roles}
        ]
        if dev_db in self.db_configs and developer_schemas:
            old = self.db_configs[dev_db]
            self.db_configs[dev_db] = DatabaseConfig(
                loader=old.loader,
                schemas=[*old.schemas, *(s for s in developer_schemas if s not in old.schemas)],
                database_roles=old.database_roles,
                comment=old.comment,
            )
        for name, db in self.db_configs.items():
            database = Database(name, tuple(db.schemas), db.loader, db.comment)
            self.databases[name] = database
            if not db.database_roles:
                continue
            self._add_role(Role(database.reader, database=name), f"database {name}")
            self._add_role(Role(database.writer, database=name), f"database {name}")
            self.memberships.add(Membership(database.reader, database.writer))
            for schema in database.schemas:
                self.access.add(SchemaAccess(database.reader, name, schema, "read"))
                self.access.add(SchemaAccess(database.writer, name, schema, "write"))
        for name, role in self.role_configs.items():
            self._add_role(Role(name, comment=role.comment), f"access.roles.{name}")
        for name, svc in self.services.items():
            self._add_service(name, svc)
        for name, person in self.people.items():
            self._add_person(name, person, dev_db)
        for name, role in self.role_configs.items():
            for held in role.member_of:
                self._check_role(held, f"access.roles.{name}.member_of")
                self.memberships.add(Membership(held.upper(), name))
        for grant in grants:
            self._add_grant(grant)
        self._check_cycles()
        self._default_warehouses()
        warehouses = tuple(
            Warehouse(name, wh.size, wh.auto_suspend_seconds)
            for name, wh in sorted(self.wh_configs.items())
        )
        self._check_lengths()
        return Declaration(
            project=self.project,
            databases=tuple(self.databases[n] for n in sorted(self.databases)),
            warehouses=warehouses,
            roles=tuple(self.roles[n] for n in sorted(self.roles)),
            users=tuple(self.users[n] for n in sorted(self.users)),
            memberships=tuple(sorted(self.memberships)),
            access=tuple(sorted(self.access)),
            warehouse_access=tuple(sorted(self.warehouse_access)),
            role_prefix=self.access_config.role_prefix,
            production_targets=tuple(self.access_config.production_targets),
        )

    # ------------------------------------------------------------------ pieces

    def _add_role(self, role: Role, where: str) -> None:
        if role.name in self.roles and self.roles[role.name].database != role.database:
            raise ConfigError(
                f"{where}: the role name '{role.name}' is already taken by database "
                f"{self.roles[role.name].database}'s own role",
                hint="every database gets <DB>_DB_READER and <DB>_DB_WRITER automatically; "
                "pick another name for this role",
            )
        self.roles[role.name] = role

    def _add_service(self, name: str, svc: ServiceAccountConfig) -> None:
        where = f"access.service_accounts.{name}"
        held: list[str] = []
        if svc.loader:
            database = next((d for d in self.databases.values() if d.loader == svc.loader), None)
            if database is None:
                loaders = sorted({d.loader for d in self.databases.values() if d.loader})
                raise ConfigError(
                    f"{where}.loader: no database is loaded by '{svc.loader}'"
                    f"{did_you_mean(svc.loader, loaders)}",
                    hint="declare it under access.databases with `loader: "
                    f"{svc.loader}`, or use one of: {', '.join(loaders) or '(none)'}",
                )
            held.append(database.writer)
        for role in svc.roles:
            self._check_role(role, f"{where}.roles")
            held.append(role.upper())
        self._check_free(name, where)
        self.roles[name] = Role(name, dedicated_to=name, comment=svc.comment)
        for role in held:
            self.memberships.add(Membership(role, name))
        chosen = svc.default_warehouse
        if chosen is None and svc.loader and "LOADING" in self.wh_configs:
            chosen = "LOADING"
        warehouse = self._warehouse(chosen, f"{where}.default_warehouse")
        if warehouse:
            self.warehouse_access.add(WarehouseAccess(name, warehouse))
        self.users[name] = User(
            name=name,
            kind="service",
            roles=(name,),
            default_role=name,
            default_warehouse=warehouse,
            rsa_public_key=svc.rsa_public_key,
            rsa_public_key_2=svc.rsa_public_key_2,
            loader=svc.loader,
            comment=svc.comment,
        )

    def _add_person(self, name: str, person: PersonConfig, dev_db: str) -> None:
        where = f"access.people.{name.lower()}"
        self._check_free(name, where)
        roles = [r.upper() for r in person.roles]
        for role in roles:
            self._check_role(role, f"{where}.roles")
        if DEVELOPER in roles and dev_db in self.databases:
            own = f"DEV_{name}"
            self._check_free(own, f"{where} (its dev role)")
            self._add_role(Role(own, comment=f"Writes {dev_schema(name)} only."), where)
            self.access.add(SchemaAccess(own, dev_db, dev_schema(name), "write"))
            roles.append(own)
        default_role = (person.default_role or (roles[0] if roles else "")).upper() or None
        if default_role and default_role not in roles:
            raise ConfigError(
                f"{where}.default_role: '{default_role}' is not one of the person's roles "
                f"({', '.join(roles)})",
                hint="add it to roles, or pick one of them as default_role",
            )
        for role in roles:
            self.memberships.add(Membership(role, name))
        self.users[name] = User(
            name=name,
            kind="person",
            roles=tuple(roles),
            default_role=default_role,
            default_warehouse=self._warehouse(person.default_warehouse, where),
            comment=person.comment,
        )

    def _add_grant(self, grant: GrantConfig) -> None:
        role = grant.role.upper()
        where = f"access.grants (role {grant.role})"
        if role != PUBLIC:
            self._check_role(role, where)
        for level, targets in (("read", grant.read), ("write", grant.write)):
            for target in targets:
                db_name, _, schema = target.partition(".")
                database = self.databases.get(db_name.upper())
                if database is None:
                    raise ConfigError(
                        f"{where}: {level} '{target}' names database '{db_name}', which is not "
                        f"declared{did_you_mean(db_name.upper(), self.databases)}",
                        hint=f"declared databases: {', '.join(sorted(self.databases))}",
                    )
                if schema and schema not in database.schemas:
                    raise ConfigError(
                        f"{where}: {level} '{target}': database {database.name} has no schema "
                        f"'{schema}'{did_you_mean(schema, database.schemas)}",
                        hint=f"its schemas: {', '.join(database.schemas) or '(none)'}; add it "
                        f"under access.databases.{database.name}.schemas",
                    )
                for name in [schema] if schema else list(database.schemas):
                    self.access.add(SchemaAccess(role, database.name, name, level))  # type: ignore[arg-type]
        for warehouse in grant.warehouses:
            wh_name = self._warehouse(warehouse, f"{where}.warehouses")
            if wh_name:
                self.warehouse_access.add(WarehouseAccess(role, wh_name))

    def _default_warehouses(self) -> None:
        """A user without a default warehouse gets the first one their default role may
        use (a reporting reader: REPORTING; a developer: TRANSFORMING); a loader's account
        has LOADING already."""
        for name, user in list(self.users.items()):
            if user.default_warehouse or not user.default_role:
                continue
            roles = {user.default_role} | held_roles(self.memberships, user.default_role)
            usable = sorted(w.warehouse for w in self.warehouse_access if w.role in roles)
            if usable:
                self.users[name] = replace(user, default_warehouse=usable[0])

    def _warehouse(self, name: str | None, where: str) -> str | None:
        if not name:
            return None
        if name.upper() in self.wh_configs:
            return name.upper()
        raise ConfigError(
            f"{where}: warehouse '{name}' is not declared"
            f"{did_you_mean(name.upper(), self.wh_configs)}",
            hint="declare it under access.warehouses (Snowflake), or remove the reference",
        )

    def _check_role(self, name: str, where: str) -> None:
        if name.upper() not in self.roles and name.upper() not in self.role_configs:
            known = sorted({*self.roles, *self.role_configs})
            raise ConfigError(
                f"{where}: role '{name}' is not declared{did_you_mean(name.upper(), known)}",
                hint="declare it under access.roles, or use a declared role "
                "(docs/access-control.md lists the derived ones)",
            )

    def _check_free(self, name: str, where: str) -> None:
        if name in self.users or (name in self.roles and self.roles[name].dedicated_to != name):
            raise ConfigError(
                f"{where}: the name '{name}' is already used by another role or user",
                hint="users and roles share one namespace on Postgres: pick another name",
            )
        if name in self.role_configs:
            raise ConfigError(
                f"{where}: the name '{name}' is also declared under access.roles",
                hint="a user's name cannot be a role's name: rename one of them",
            )

    def _check_cycles(self) -> None:
        graph: dict[str, list[str]] = {}
        for m in self.memberships:
            graph.setdefault(m.member, []).append(m.role)
        state: dict[str, int] = {}
        path: list[str] = []

        def visit(node: str) -> None:
            state[node] = 1
            path.append(node)
            for nxt in sorted(graph.get(node, [])):
                if state.get(nxt) == 1:
                    cycle = [*path[path.index(nxt) :], nxt]
                    raise ConfigError(
                        "role memberships form a cycle: " + " → ".join(cycle),
                        hint="a role cannot hold itself, directly or through others: remove "
                        "one member_of entry on that path",
                    )
                if nxt not in state:
                    visit(nxt)
            path.pop()
            state[node] = 2

        for node in sorted(graph):
            if node not in state:
                visit(node)

    def _check_lengths(self) -> None:
        prefix = self.access_config.role_prefix
        for name in [*self.roles, *self.users]:
            if len(prefix) + len(name) > 63:
                raise ConfigError(
                    f"the role name '{prefix}{name.lower()}' is longer than 63 characters, "
                    "which Postgres would truncate",
                    hint="shorten the name or access.role_prefix",
                )
