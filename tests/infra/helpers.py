"""Helpers shared by the access-control tests: a project on disk, and a simulated Snowflake
account that reports what a plan created through the SHOW output stackyard reads."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import sqlglot

from stackyard.infra.state import State

# A fixed RSA public key, so golden SQL does not change from run to run.
PUBLIC_KEY = (Path(__file__).parent / "fixtures" / "svc_dlt_public.pem").read_text()


def project(tmp_path: Path, access: str = "", targets: str = "", name: str = "shop") -> Path:
    """A project folder with the example sources and the given ``access:`` body."""
    extra = textwrap.indent(textwrap.dedent(targets).strip(), "  ")
    body = (
        "# test project\n"
        f"name: {name}\n"
        "targets:\n"
        "  dev: {type: duckdb, path: .stackyard/dev.duckdb}\n"
        "  prod:\n"
        "    type: snowflake\n"
        "    account: acme-xy12345\n"
        "    user: SVC_STACKYARD\n"
        "    role: SECURITYADMIN\n"
        "    warehouse: ADMIN\n"
        "    database: DLT\n"
        "    private_key: {secret: SF_KEY}\n" + (extra + "\n" if extra else "") + "sources:\n"
        "  shop_db:\n"
        "    kind: sql_database\n"
        "    connection: sqlite:///sources/app.sqlite\n"
        "    tables: {customers: {primary_key: id}}\n"
        "  shop_files:\n"
        "    kind: filesystem\n"
        "    url: sources/files\n"
        "    tables: {products: {glob: products.csv}}\n"
    )
    if access.strip():
        body += "access:\n" + textwrap.indent(textwrap.dedent(access).strip(), "  ") + "\n"
    (tmp_path / "stackyard.yml").write_text(body, encoding="utf-8")
    return tmp_path


def parses_as_one_snowflake_statement(sql: str) -> bool:
    """Whether sqlglot's Snowflake dialect reads ``sql`` as exactly one statement."""
    return len([e for e in sqlglot.parse(sql, read="snowflake") if e is not None]) == 1


def _name(*parts: str) -> str:
    from stackyard.infra.snowflake import ident

    return ident(*parts)


def snowflake_show_output(state: State, *, last_login: str = "2025-01-01") -> dict[str, Any]:
    """What SHOW … would report on an account in ``state``: the account after an apply."""
    from stackyard.infra.state import Principal

    def grantee(p: Principal) -> tuple[str, str]:
        if p.kind == "database_role":
            return "DATABASE_ROLE", f"{p.database}.{p.name}"
        return ("USER" if p.kind == "user" else "ROLE"), p.name

    show: dict[str, Any] = {
        k: []
        for k in (
            "databases",
            "schemas",
            "warehouses",
            "roles",
            "users",
            "grants",
            "future_grants",
            "tables",
        )
    }
    show["database_roles"] = {}
    show["user_keys"] = {}
    sizes = {"XSMALL": "X-Small", "SMALL": "Small"}
    for c in sorted(state.containers):
        if c.kind == "database":
            show["databases"].append({"name": c.name[0]})
        elif c.kind == "schema":
            show["schemas"].append({"database_name": c.name[0], "name": c.name[1]})
        else:
            attrs = dict(c.attrs)
            show["warehouses"].append(
                {
                    "name": c.name[0],
                    "size": sizes.get(attrs["size"]),
                    "auto_suspend": int(attrs["auto_suspend"]),
                }
            )
    for a in sorted(state.accounts):
        p = a.principal
        if p.kind == "database_role":
            show["database_roles"].setdefault(p.database, []).append(
                {"name": p.name, "comment": a.comment}
            )
        elif p.kind == "role":
            show["roles"].append({"name": p.name, "comment": a.comment})
        else:
            attrs = dict(a.attrs)
            show["users"].append(
                {
                    "name": p.name,
                    "type": attrs["type"],
                    "default_role": attrs["default_role"],
                    "default_warehouse": attrs["default_warehouse"],
                    "has_password": attrs.get("has_password", "false"),
                    "disabled": "false",
                    "last_success_login": last_login,
                    "comment": a.comment,
                }
            )
            show["user_keys"][p.name] = {
                "RSA_PUBLIC_KEY_FP": attrs["rsa_public_key_fp"] or None,
                "RSA_PUBLIC_KEY_2_FP": attrs["rsa_public_key_2_fp"] or None,
            }
    for m in sorted(state.memberships):
        to, name = grantee(m.member)
        held_kind = "DATABASE_ROLE" if m.role.kind == "database_role" else "ROLE"
        row = {
            "privilege": "USAGE",
            "granted_on": held_kind,
            "name": m.role.label,
            "granted_to": to,
            "grantee_name": name,
        }
        if to == "USER":
            row = {
                "role": m.role.label,
                "granted_on": held_kind,
                "privilege": "USAGE",
                "name": m.role.label,
                "granted_to": to,
                "grantee_name": name,
            }
        show["grants"].append(row)
    for g in sorted(state.grants):
        to, name = grantee(g.grantee)
        show["grants"].append(
            {
                "privilege": g.privilege,
                "granted_on": g.on_kind,
                "name": _name(*g.on),
                "granted_to": to,
                "grantee_name": name,
            }
        )
    for f in sorted(state.future_grants):
        to, name = grantee(f.grantee)
        show["future_grants"].append(
            {
                "privilege": f.privilege,
                "grant_on": f.on_kind[:-1],
                "name": _name(*f.schema) + ".<" + f.on_kind[:-1] + ">",
                "grant_to": to,
                "grantee_name": name,
            }
        )
    for t in sorted(state.tables):
        show["tables"].append(
            {
                "database_name": t.schema[0],
                "schema_name": t.schema[1],
                "name": t.name,
                "owner": t.owner,
                "kind": t.kind,
            }
        )
    return show
