"""What ``stackyard adopt`` prints: dlt's section names and dbt's messages reach the user
whole (square brackets are text, not console markup)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stackyard.project import init_project

STACKYARD = str(Path(sys.executable).with_name("stackyard"))

SOURCE = """import dlt


@dlt.source
def needs(token=dlt.secrets.value):
    @dlt.resource
    def rows():
        yield {"n": len(token)}

    return rows
"""


def test_adopt_dlt_names_the_section_of_an_unset_secret(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p").path
    (project / "needs.py").write_text(SOURCE, encoding="utf-8")
    # In a process of its own: the adoption imports the module and sets dlt's logging up.
    done = subprocess.run(
        [STACKYARD, "adopt", "dlt", "needs.py", "--project", str(project), "--dry-run"],
        capture_output=True,
        text=True,
        check=False,
        cwd=project,
        env={**os.environ, "COLUMNS": "400"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not set: token" in done.stdout
    assert "under [sources.needs]," in done.stdout
