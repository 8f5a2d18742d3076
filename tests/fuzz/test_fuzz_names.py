"""Properties over names a user (or an attacker) chooses: roles, users, schemas, columns.

* Any access section is either refused with a ConfigError or compiles to plans whose every
  statement parses as exactly one statement on Snowflake and Postgres (sqlglot), so no name
  can smuggle SQL; a reserved name (PUBLIC, SYSADMIN, pg_* …) is always refused.
* Any set of column names gives a staging model that parses, on every engine, as one SELECT
  whose output columns are exactly the intended names.
* Any schema name is quoted by each warehouse into one identifier.
"""

from __future__ import annotations

import textwrap

import sqlglot
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from stackyard.config.names import reserved_reason
from stackyard.context import Context
from stackyard.errors import ConfigError
from stackyard.infra.plan import diff
from stackyard.infra.state import State
from stackyard.transform.staging import Column, LoadedTable, needs_quotes, staging_files
from stackyard.warehouse.cloud import BigQueryWarehouse, SnowflakeWarehouse
from stackyard.warehouse.duckdb import DuckDBWarehouse
from stackyard.warehouse.postgres import PostgresWarehouse
from tests.fuzz.conftest import examples
from tests.infra.helpers import project

HOSTILE = [
    "PUBLIC",
    "public",
    "SysAdmin",
    "postgres",
    "pg_monitor",
    "x'; DROP TABLE t; --",
    'a"b',
    "a b",
    "ñandú",
    "",
    "A" * 70,
    "select",
    "ORDER",
    "_x",
    "1abc",
    "x;y",
    "SVC_DLT",
]
names = st.one_of(
    st.sampled_from(HOSTILE),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,12}", fullmatch=True),
    st.text(max_size=12),
)
PG_TARGET = "pg:\n  type: postgres\n  user: stackyard\n  database: shop\n"


def _yaml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def access_sections(draw: st.DrawFn) -> str:
    role = draw(names)
    person = draw(names)
    service = draw(names)
    member = draw(st.sampled_from([role, "ANALYTICS_DEVELOPER", draw(names)]))
    grant_role = draw(st.sampled_from([role, "PUBLIC", draw(names)]))
    return textwrap.dedent(
        f"""\
        roles:
          {_yaml_str(role)}: {{member_of: [{_yaml_str(member)}]}}
        people:
          {_yaml_str(person)}: {{roles: [ANALYTICS_DEVELOPER]}}
        service_accounts:
          {_yaml_str(service)}: {{loader: dlt}}
        grants:
          - {{role: {_yaml_str(grant_role)}, read: [DLT]}}
        """
    )


def _one_statement(sql: str, dialect: str) -> bool:
    return len([e for e in sqlglot.parse(sql, read=dialect) if e is not None]) == 1


@settings(max_examples=examples(40))
@given(access=access_sections())
def test_any_access_section_is_refused_or_compiles_to_safe_sql(
    tmp_path_factory,
    access: str,  # type: ignore[no-untyped-def]
) -> None:
    path = project(tmp_path_factory.mktemp("a"), access, targets=PG_TARGET)
    try:
        context = Context(path)
        control = context.access()
        declaration = control.declaration()
    except ConfigError as exc:
        assert exc.exit_code == 2 and exc.message
        return
    declared = [r.name for r in declaration.roles] + [u.name for u in declaration.users]
    assert not [n for n in declared if reserved_reason(n)], declared
    for target, dialect in (("prod", "snowflake"), ("pg", "postgres")):
        engine = control.engine(target, declaration)
        plan = diff(
            engine,
            State(),
            project="shop",
            target=target,
            declaration_hash=declaration.digest(),
            live_known=False,
        )
        for statement in plan.statements():
            assert _one_statement(statement, dialect), statement


@settings(max_examples=examples(30))
@given(
    name=st.sampled_from(HOSTILE[:5])
    | st.from_regex(
        r"(?i)(public|sysadmin|accountadmin|securityadmin|useradmin|orgadmin|postgres|pg_[a-z_]{1,8})",
        fullmatch=True,
    )
)
def test_reserved_names_are_refused_in_every_place(tmp_path_factory, name: str) -> None:  # type: ignore[no-untyped-def]
    for access in (
        f"people: {{{name}: {{}}}}",
        f"service_accounts: {{{name}: {{}}}}",
        f"roles: {{{name}: {{}}}}",
    ):
        path = project(tmp_path_factory.mktemp("r"), access)
        try:
            Context(path).access().declaration()
        except ConfigError:
            continue
        raise AssertionError(f"{name!r} was accepted in {access}")


column_names = st.one_of(
    st.sampled_from(
        [
            "select",
            "order",
            "group",
            "from",
            "where",
            "id",
            "at",
            "user",
            "table",
            "Total Due",
            'we"ird',
            "a`b",
            "x y",
            "ünï",
            "1st",
            "_loaded_at2",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12),
)


@settings(max_examples=examples(60))
@given(
    columns=st.lists(column_names, min_size=1, max_size=8, unique_by=str.lower),
    dialect=st.sampled_from(["duckdb", "postgres", "snowflake", "bigquery"]),
)
def test_staging_model_for_any_columns_parses_as_intended(columns: list[str], dialect: str) -> None:
    columns = [c for c in columns if not c.startswith("_dlt_") and c != "_loaded_at"]
    assume((columns and "id" not in columns) or len(columns) > 1)
    if dialect == "bigquery":  # no backtick, backslash or dot in a BigQuery name (a dot splits)
        assume(all(not any(ch in c for ch in "`\\.\n") for c in columns))
    table = LoadedTable("orders", tuple(Column(c, "text") for c in columns))
    model = staging_files("shop", [table], dialect)[0]
    sql = model.text.replace("{{ source('dlt_shop', 'orders') }}", "raw_orders")
    statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    assert len(statements) == 1 and isinstance(statements[0], exp.Select), sql
    cte = next(c for c in statements[0].find_all(exp.CTE) if c.alias == "renamed")
    outputs = [s.alias_or_name for s in cte.this.selects]
    expected = ["order_id" if c == "id" else c for c in columns] + ["_loaded_at"]
    if dialect == "snowflake":
        expected = [
            c.upper()
            if needs_quotes(c) and c.isascii() and c.isidentifier() and c.lower() == c
            else c
            for c in expected
        ]
    assert sorted(outputs) == sorted(expected), (outputs, sql)


@settings(max_examples=examples(60))
@given(
    schema=st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20
    )
)
def test_any_schema_name_is_one_quoted_identifier(schema: str) -> None:
    for warehouse in (DuckDBWarehouse, PostgresWarehouse, SnowflakeWarehouse, BigQueryWarehouse):
        # BigQuery datasets are letters, digits and _; inside backticks a dot splits a path.
        # BigQuery reads INFORMATION_SCHEMA.t as one view name, a dataset's metadata.
        if warehouse is BigQueryWarehouse and (
            any(ch in schema for ch in "`\\.") or schema.upper() == "INFORMATION_SCHEMA"
        ):
            continue
        sql = f"select 1 from {warehouse.quote_for(schema, 't')}"
        (statement,) = sqlglot.parse(sql, read=warehouse.DIALECT)
        assert statement is not None
        table = statement.find(exp.Table)
        assert table is not None and table.db == schema and table.name == "t", sql


@settings(max_examples=examples(60))
@given(
    schema=st.one_of(st.text(max_size=20), st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True))
)
def test_a_source_schema_is_refused_or_is_what_dlt_names_it(schema: str) -> None:
    """stackyard creates, grants and monitors the schema dlt loads into: an accepted name is
    spelled everywhere as dlt's naming convention spells it (docs/project.md)."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention
    from pydantic import ValidationError

    from stackyard.config.model import ProjectConfig

    try:
        config = ProjectConfig.model_validate(
            {
                "name": "shop",
                "sources": {
                    "f": {
                        "kind": "filesystem",
                        "url": "f",
                        "schema": schema,
                        "tables": {"t": {"glob": "*.csv"}},
                    }
                },
            }
        )
    except ValidationError:
        return  # refused with a message (reserved, or no name dlt can give)
    # An empty schema means the default: the source's name.
    assert config.dataset_for("f") == NamingConvention().normalize_table_identifier(schema or "f")
