"""Which tables a monitor pass watches: every source table but dlt's own bookkeeping."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from tests.conftest import write
from tests.runner.conftest import make_project


def test_source_tables_whose_names_start_with_an_underscore_are_watched(tmp_path: Path) -> None:
    """A table named ``_archive``, or one dlt spells with a leading ``_`` (``Événements``
    loads as ``_v_nements``), was never monitored, with no note: only dlt's ``_dlt_*`` tables
    were meant to be left out."""
    root = make_project(tmp_path / "mini")
    rows = "id,created_at\n1,2026-12-01T10:00:00\n2,2026-12-02T10:00:00\n"
    write(root / "sources" / "arc" / "a.csv", rows)
    write(root / "sources" / "arc" / "e.csv", rows)
    with (root / "stackyard.yml").open("a", encoding="utf-8") as f:
        f.write(
            "  arc:\n"
            "    kind: filesystem\n"
            "    url: sources/arc\n"
            "    tables:\n"
            "      _archive: {glob: a.csv, primary_key: id}\n"
            "      Événements: {glob: e.csv, primary_key: id}\n"
        )
    assert Context(root).run().exit_code == 0
    cli = CliRunner()
    health = json.loads(cli.invoke(app, ["health", "--json", "--project", str(root)]).stdout)
    watched = {t["table"] for t in health["tables"]}
    assert {"arc._archive", "arc._v_nements"} <= watched, sorted(watched)
    assert not any("._dlt_" in t or "_rejected_rows" in t for t in watched), sorted(watched)
    for table in ("arc._archive", "arc._v_nements"):
        show = cli.invoke(app, ["health", "show", table, "--project", str(root)])
        said = " ".join(show.output.split())
        assert show.exit_code == 0, said
        # The key declared under the name as written is the key of the table as loaded.
        assert "duplicates: 0 duplicate keys (id)" in said, said
