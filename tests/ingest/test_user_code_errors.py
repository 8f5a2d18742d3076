"""A Python source that fails while loading is reported as the user's: the message names the
file and line of their code, and `--debug run` prints the whole traceback."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.project import init_project
from tests.conftest import write

runner = CliRunner()

SOURCE = """\
import dlt


@dlt.source
def weather():
    @dlt.resource
    def readings():
        yield {"day": 1}
        raise ValueError("station 7 sent no reading")

    return readings
"""


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    init_project(root)
    write(root / "sources/weather.py", SOURCE)
    text = (
        (root / "stackyard.yml")
        .read_text()
        .replace(
            "sources: {}\n",
            "sources:\n  weather:\n    kind: python\n    path: sources/weather.py\n"
            "    function: weather\n",
        )
    )
    (root / "stackyard.yml").write_text(text)
    return root


def test_failing_python_source_names_file_and_line_and_debug_prints_traceback(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path)
    result = runner.invoke(app, ["run", "-p", str(root)])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "station 7 sent no reading" in output
    assert "sources/weather.py:9 in readings" in output
    assert "Traceback (most recent call last)" not in result.output

    debug = runner.invoke(app, ["--debug", "run", "-p", str(root)])
    assert debug.exit_code == 1
    assert "Traceback (most recent call last)" in debug.output
    assert 'raise ValueError("station 7 sent no reading")' in debug.output

    scripted = runner.invoke(app, ["run", "-p", str(root), "--json"])
    (load,) = json.loads(scripted.stdout)["loads"]
    assert "sources/weather.py:9 in readings" in load["error"] and "traceback" not in load
    # The error names the table it failed on (dlt says which resource): incident triage
    # takes the root cause from it, where it picked one of the source's tables at random.
    assert "table 'readings'" in load["error"], load["error"]


def test_the_table_a_failed_job_was_for_is_read_from_its_file_name() -> None:
    from dlt.normalize.exceptions import NormalizeJobFailed

    from stackyard.ingest.load_errors import root_cause

    failed = NormalizeJobFailed("1700.1", "customers.a1b2c3.0.parquet", "nulls in name", [])
    wrapped = RuntimeError("normalize step failed")
    wrapped.__cause__ = failed
    assert root_cause(wrapped).startswith("table 'customers': "), root_cause(wrapped)
    assert "table" not in root_cause(ValueError("nothing named"))
