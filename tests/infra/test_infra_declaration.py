"""The declaration: the least-privilege layout derived from sources, and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.context import Context
from stackyard.errors import ConfigError
from stackyard.infra.declaration import Declaration, Membership, SchemaAccess
from tests.infra.helpers import project


def _declaration(tmp_path: Path, access: str = "") -> Declaration:
    return Context(project(tmp_path, access)).access().declaration()


def test_derived_layout_follows_the_runbook(tmp_path: Path) -> None:
    d = _declaration(tmp_path)
    dlt = d.database("DLT")
    assert dlt is not None and dlt.loader == "dlt"
    assert dlt.schemas == ("shop_db", "shop_files")
    assert {
        Membership("DLT_DB_READER", "ANALYTICS_SOURCES_READER"),
        Membership("DLT_DB_WRITER", "SVC_DLT"),
        Membership("DLT_DB_READER", "DLT_DB_WRITER"),
    } <= set(d.memberships)
    assert d.roles_held("SVC_DLT") == {"DLT_DB_WRITER", "DLT_DB_READER"}
    transformer = {(a.database, a.schema, a.level) for a in d.access_of("ANALYTICS_TRANSFORMER")}
    assert ("DLT", "shop_db", "read") in transformer
    assert ("ANALYTICS", "marts", "write") in transformer
    assert ("DLT", "shop_db", "write") not in transformer
    reporting = d.access_of("REPORTING_READER")
    assert reporting == {SchemaAccess("REPORTING_READER", "ANALYTICS", "reporting", "read")}


def test_explicit_entries_add_to_the_derived_layout(tmp_path: Path) -> None:
    d = _declaration(
        tmp_path,
        """
        databases:
          DLT: {schemas: [hubspot]}
          AIRBYTE: {loader: airbyte, schemas: [stripe]}
        roles:
          ANALYTICS_SOURCES_READER: {member_of: [DLT_DB_READER, AIRBYTE_DB_READER]}
        service_accounts:
          SVC_AIRBYTE: {loader: airbyte}
    """,
    )
    assert d.database("DLT").schemas == ("shop_db", "shop_files", "hubspot")  # type: ignore[union-attr]
    assert "AIRBYTE_DB_WRITER" in d.roles_held("SVC_AIRBYTE")
    assert "AIRBYTE_DB_READER" in d.roles_held("ANALYTICS_DEVELOPER")


@pytest.mark.parametrize(
    ("access", "message"),
    [
        (
            "roles: {A: {member_of: [B]}, B: {member_of: [C]}, C: {member_of: [A]}}",
            "cycle: A → B → C → A",
        ),
        ("people: {dan: {roles: [ANALYTICS_DEVELOPR]}}", "did you mean 'ANALYTICS_DEVELOPER'"),
        ("grants: [{role: REPORTING_READER, read: [ANALYTICS.finance]}]", "has no schema"),
        ("grants: [{role: REPORTING_READER, read: [WAREHOUSE9]}]", "not declared"),
        ("service_accounts: {SVC_X: {loader: fivetran}}", "no database is loaded by 'fivetran'"),
        ("people: {svc_dlt: {}}", "already used"),
        ("roles: {DLT_DB_READER: {}}", "already taken"),
        ("people: {'eve smith': {}}", "not a valid name"),
        ("role_prefix: 'Bad-Prefix'", "role_prefix"),
    ],
)
def test_invalid_declarations_say_where_and_what_to_do(
    tmp_path: Path, access: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        _declaration(tmp_path, access)
    assert info.value.hint


def test_digest_changes_with_the_declaration(tmp_path: Path) -> None:
    first = _declaration(tmp_path).digest()
    assert first == _declaration(tmp_path).digest()
    assert first != _declaration(tmp_path, "people: {alice: {}}").digest()
