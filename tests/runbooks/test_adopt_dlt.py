"""``stackyard adopt dlt``: a team's existing ``@dlt.source``, loaded once with plain dlt, runs
under stackyard unchanged (its file, its source-level settings, its ``.dlt/`` secrets and
config) and continues its incremental cursor: only the new rows are loaded, none twice."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from stackyard.project import init_project

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow

# The team's module as they run it today: `python events_pipeline.py` from its folder.
MODULE = """
import json
from pathlib import Path

import dlt

HERE = Path(__file__).parent


@dlt.source(max_table_nesting=0, root_key=True)
def events(api_token=dlt.secrets.value, regions=dlt.config.value):
    @dlt.resource(write_disposition="append")
    def event_log(id=dlt.sources.incremental("id")):
        # The API answers "from the last id on": the row at the cursor comes again.
        for row in json.loads((HERE / "feed.json").read_text()):
            if row["region"] in regions:
                yield {**row, "token_length": len(api_token)}

    @dlt.resource(selected=False)
    def debug_dump():
        yield {"x": 1}

    return event_log, debug_dump


if __name__ == "__main__":
    pipeline = dlt.pipeline(
        pipeline_name="team_events", destination="duckdb", dataset_name="raw_events"
    )
    print(pipeline.run(events()))
"""


def rows(n: int) -> list[dict[str, object]]:
    return [
        {"id": i, "region": "north" if i % 3 else "south", "payload": {"tags": ["a", f"t{i}"]}}
        for i in range(1, n + 1)
    ]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stackyard(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "stackyard"), *args], cwd=cwd, capture_output=True, text=True, env=env
    )


@pytest.fixture
def team(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A stackyard project, and beside it the team's dlt code with its own .dlt/ folder,
    loaded once by plain dlt into the project's warehouse file."""
    project = tmp_path / "platform"
    init_project(project)
    database = project / ".stackyard" / "dev.duckdb"
    code = tmp_path / "team"
    (code / ".dlt").mkdir(parents=True)
    (code / "events_pipeline.py").write_text(MODULE)
    (code / "feed.json").write_text(json.dumps(rows(5)))
    (code / ".dlt" / "secrets.toml").write_text(
        '[sources.events_pipeline]\napi_token = "tok-12345"\n'
        f'[destination.duckdb]\ncredentials = "{database}"\n'
    )
    (code / ".dlt" / "config.toml").write_text(
        'sources.events_pipeline.regions = ["north", "south"]\n'
    )
    env = {**os.environ, "DLT_DATA_DIR": str(tmp_path / "dlt-home"), "RUNTIME__LOG_LEVEL": "ERROR"}
    env.pop("DLT_PROJECT_DIR", None)
    database.parent.mkdir(exist_ok=True)
    plain = subprocess.run(
        [sys.executable, "events_pipeline.py"], cwd=code, capture_output=True, text=True, env=env
    )
    assert plain.returncode == 0, plain.stdout + plain.stderr
    return project, code, env


def test_an_adopted_source_runs_unchanged_and_continues_its_cursor(
    team: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    project, code, env = team
    module = code / "events_pipeline.py"
    before = sha(module)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    adopted = stackyard(
        "adopt", "dlt", str(module), "--project", str(project), "--json", cwd=elsewhere, env=env
    )
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    report = json.loads(adopted.stdout)
    (source,) = report["sources"]
    assert source["name"] == "events"
    assert source["section"] == "events_pipeline"  # dlt's own: [sources.events_pipeline]
    assert source["resources"] == ["event_log", "debug_dump"]
    assert source["selected"] == ["event_log"]
    assert source["incremental"] == {"event_log": "id"}
    assert source["settings"]["max_table_nesting"] == 0
    assert source["settings"]["root_key"] is True
    assert source["secrets"] == {"api_token": True}
    assert source["config"] == {"regions": True}
    assert source["pipeline"]["name"] == "team_events"
    assert source["pipeline"]["dataset"] == "raw_events"
    assert report["module_unchanged"] and report["written"]

    # Three new rows upstream; the feed still sends the one at the cursor (id 5) again.
    (code / "feed.json").write_text(json.dumps(rows(8)))
    ran = stackyard("run", "--project", str(project), "--json", cwd=elsewhere, env=env)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    result = json.loads(ran.stdout)
    (load,) = [s for s in result["loads"] if s["source"] == "events"]
    shown = {t["table"]: t["rows"] for t in load["tables"]}
    assert shown == {"event_log": 3}
    assert sha(module) == before

    with duckdb.connect(str(project / ".stackyard" / "dev.duckdb"), read_only=True) as con:
        ids = [
            r[0] for r in con.execute("select id from raw_events.event_log order by id").fetchall()
        ]
        tables = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw_events'"
            ).fetchall()
        }
        tokens = con.execute("select distinct token_length from raw_events.event_log").fetchall()
        new = con.execute(
            "select count(*) from raw_events.event_log where _loaded_at is not null"
        ).fetchone()
    assert ids == list(range(1, 9))  # none missing, none twice
    assert new == (3,)  # the rows stackyard loaded: exactly the new ones
    assert tokens == [(len("tok-12345"),)]
    # max_table_nesting=0 kept: the payload stays one JSON column, no child tables; the
    # resource the author left unselected is not loaded.
    assert not [t for t in tables if t.startswith("event_log__")]
    assert "debug_dump" not in tables


def test_the_pipeline_is_found_in_the_warehouse_when_the_code_does_not_name_it(
    team: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    project, code, env = team
    bare = code / "lib"
    bare.mkdir()
    # The same source, without the script part (the pipeline is built elsewhere, e.g. in
    # an orchestrator): the warehouse's dlt tables say which pipeline loaded it.
    (bare / "events_pipeline.py").write_text(MODULE.split("if __name__")[0])
    done = stackyard(
        "adopt",
        "dlt",
        "lib/events_pipeline.py:events",
        "--dry-run",
        "--json",
        "--project",
        str(project),
        cwd=code,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (source,) = json.loads(done.stdout)["sources"]
    assert source["pipeline"]["name"] == "team_events"
    assert source["pipeline"]["dataset"] == "raw_events"
    assert "warehouse" in source["pipeline"]["found_in"]
    assert "events" not in (project / "stackyard.yml").read_text()  # a dry run writes nothing


@pytest.mark.parametrize(
    ("spec", "said"),
    [("missing.py", "no Python module"), ("events_pipeline.py:evnts", "did you mean 'events'")],
)
def test_a_missing_module_or_function_is_a_usage_error_and_writes_nothing(
    tmp_path: Path, spec: str, said: str
) -> None:
    project = tmp_path / "p"
    init_project(project)
    (project / "events_pipeline.py").write_text(MODULE)
    yml = (project / "stackyard.yml").read_text()
    done = stackyard("adopt", "dlt", spec, cwd=project, env=dict(os.environ))
    assert done.returncode == 2, done.stdout + done.stderr
    assert said in done.stderr
    assert (project / "stackyard.yml").read_text() == yml
    assert textwrap.dedent(MODULE) == (project / "events_pipeline.py").read_text()


def test_a_module_that_fails_to_import_is_reported_as_the_teams_code_from_where_they_are(
    tmp_path: Path,
) -> None:
    project = tmp_path / "p"
    init_project(project)
    team = tmp_path / "team"
    team.mkdir()
    (team / "broken.py").write_text("import dlt\n\n@dlt.source\ndef events(:\n    pass\n")
    yml = (project / "stackyard.yml").read_text()
    done = stackyard(
        "adopt", "dlt", "team/broken.py", "--project", "p", cwd=tmp_path, env=dict(os.environ)
    )
    assert done.returncode == 1, done.stdout + done.stderr
    # The command is named, not a source called "adopt", and the hint runs from here.
    assert "stackyard adopt dlt: importing team/broken.py failed: SyntaxError" in done.stderr
    assert "source 'adopt'" not in done.stderr
    assert "run `python team/broken.py`" in done.stderr
    assert (project / "stackyard.yml").read_text() == yml
