"""`source add -t prod` verifies the read chain: until `apply` runs, people cannot read the new
schema, and the verification says so, naming the command and what it will grant; after the
apply the same check passes and a person really reads the table."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.context import Context
from stackyard.project import init_project
from stackyard.runbooks.source_access import read_chain
from tests.conftest import write
from tests.infra import conftest as infra
from tests.infra.conftest import PgProject

pg_project = infra.pg_project  # the access tests' fixture: a project on a throwaway database

runner = CliRunner()


def _project(pg: PgProject) -> Path:
    root = pg.path / "shop"
    init_project(root)
    text = (root / "stackyard.yml").read_text()
    text = text.replace(
        "sources: {}",
        f"  prod:\n    type: postgres\n    host: {pg.host}\n    port: {pg.port}\n"
        f"    user: {pg.admin}\n    database: {pg.database}\n    sslmode: disable\n\n"
        f"sources: {{}}\n\naccess:\n  role_prefix: {pg.prefix}\n  people: {{alice: {{}}}}\n",
    )
    (root / "stackyard.yml").write_text(text)
    write(root / "sources/exports/orders.csv", "id,amount\n1,9.5\n2,12.0\n")
    return root


def test_source_add_on_prod_says_people_cannot_read_until_apply(pg_project: PgProject) -> None:
    root = _project(pg_project)
    result = runner.invoke(
        app,
        [
            "source",
            "add",
            "exports",
            "--kind",
            "filesystem",
            "--url",
            "sources/exports",
            "--table",
            "orders=orders.csv",
            "-t",
            "prod",
            "-p",
            str(root),
        ],
    )
    assert result.exit_code == 1, result.output  # verification failed: nobody can read it yet
    output = " ".join(result.output.split())
    assert "read chain" in output and "people cannot read exports yet" in output
    assert "`stackyard apply -t prod` is the next step" in output
    assert "USAGE on schema exports" in output

    Context(root).access().apply(target="prod")
    context = Context(root)
    chain = read_chain(context.sources("prod").session, "exports")
    assert chain.check is not None and chain.check.ok and chain.note is None
    assert "ANALYTICS_SOURCES_READER → DLT_DB_READER reads exports" in chain.check.detail
    with pg_project.connect("alice") as alice:
        assert alice.execute("SELECT count(*) FROM exports.orders").fetchone() == (2,)


def test_no_read_chain_check_where_the_engine_has_no_roles(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    init_project(root)
    assert read_chain(Context(root).sources("dev").session, "exports").check is None
