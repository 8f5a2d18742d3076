"""The benchmarks behind docs/performance.md keep working as the code under them changes: each
script imports, `make bench`'s summary reports what one run measured (and nothing older), and
the Postgres benchmark's stackyard path still loads through today's Loader."""

from __future__ import annotations

import importlib
import importlib.util
import json
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).parent.parent / "bench"
sys.path.insert(0, str(BENCH))

SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_"))


def bench(name: str) -> ModuleType:
    """bench/<name>.py as a module of its own: the suite may hold another module of the same
    plain name (``backup``…), which importing by name would return instead."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_benchmark_module_imports(name: str) -> None:
    bench(name)


def test_make_bench_runs_every_benchmark_script() -> None:
    run_all = bench("run_all")
    scripts = {script for script, _, _ in {**run_all.BENCHMARKS, **run_all.SPARK}.values()}
    for script in scripts:
        assert callable(bench(script).main), script
    libraries = {"run_all", "anomaly_data", "anomaly_data_b", "anomaly_data_c", "anomaly_data_d"}
    assert set(SCRIPTS) - libraries == scripts, "a benchmark make bench does not run"


def test_the_summary_holds_this_runs_figures_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_all = bench("run_all")
    monkeypatch.setattr(run_all, "FIGURES", tmp_path)
    started = time.time()
    fresh = {"written_at": started + 1, "rows": [["ingest", "≤ 2x", "1.90x", "met"]]}
    stale = {"written_at": started - 3600, "rows": [["old", "≤ 1x", "9x", "not met"]]}
    (tmp_path / "ingest_json.json").write_text(json.dumps(fresh))
    (tmp_path / "memory.json").write_text(json.dumps(stale))

    text = run_all.summary(
        {"ingest_json": (12.0, 1.5, 0), "memory": (30.0, 2.0, 0), "backup": (5.0, 1.0, 3)},
        started,
        quick=False,
    )

    assert "| ingest_json | ingest | ≤ 2x | 1.90x | met | 12 | 1.5 |" in text
    assert "| memory | wrote no figures |" in text
    assert "old" not in text
    assert "| backup | failed (exit 3) |" in text


def test_the_postgres_benchmark_loads_through_the_loader(
    pg_admin_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql_postgres = bench("sql_postgres")
    monkeypatch.setattr(sql_postgres, "DSN", pg_admin_dsn)
    database = f"stackyard_bench_test_{uuid.uuid4().hex[:8]}"
    sql_postgres.setup(database, 500)
    try:
        result = sql_postgres.variant_stackyard(database, tmp_path)
    finally:
        sql_postgres.drop(database)
    assert result["rows"] == 500


def test_a_profile_is_summed_into_the_parts_of_the_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = bench("_profile")
    monkeypatch.setattr(profile, "RESULTS", tmp_path)
    raw = tmp_path / "profile-x.collapsed"
    rate = profile.RATE
    raw.write_text(
        # an import inside dbt's thread counts as importing, not as dbt
        f"run (stackyard/runner/run.py:1);_find_and_load (<frozen>:2);<module> (dbt/a.py:3) {rate}\n"
        # dbt's parse, whatever it calls below
        f"invoke (dbt/cli/main.py:1);load (dbt/parser/manifest.py:9);render (jinja2/x.py:4) {rate}\n"
        # the same stack at two line numbers: one stack once compacted
        f"load (stackyard/ingest/loader.py:5);extract (dlt/extract/e.py:6) {rate}\n"
        f"load (stackyard/ingest/loader.py:5);extract (dlt/extract/e.py:7) {rate}\n"
        # a reader called by dlt is reading the source, not dlt
        f"run (dlt/pipeline/p.py:1);rows (stackyard/ingest/file_stream.py:2) {rate}\n"
        # a pool's idle worker is no work at all
        f"Thread.run (threading.py:1);_worker (concurrent/futures/thread.py:81) {rate}\n"
    )

    table = profile.write_parts("x", raw)

    found = profile.parts(tmp_path / "profile-x.collapsed.gz")
    assert found == {
        "importing dbt (dbt-core, its adapters)": 1.0,
        "dbt: parsing the project": 1.0,
        "dlt: extracting (state, schema, writing Parquet)": 2.0,
        "reading the sources (stackyard's readers: DuckDB, ConnectorX, SQLAlchemy)": 1.0,
    }
    assert not raw.exists()
    assert "In all: 5.00 s of samples." in table.read_text()


@pytest.mark.parametrize("generator", ["A", "B", "D"])
def test_the_oracle_sees_each_incident_and_nothing_else(generator: str) -> None:
    """The oracle bound (bench/anomaly_bound.py) rests on generating each table twice, with and
    without its incidents, from the same random draws: the two must differ exactly where the
    incidents act, and the effect left once a step is relearnt must be nothing."""
    oracle = bench("anomaly_bound")
    for index in range(12):
        clean, dirty = oracle.clean_and_dirty(generator, 1, index)
        assert clean.dates == dirty.dates and clean.noise == dirty.noise
        acts = set()
        for incident in dirty.incidents:
            lasting = incident.kind in oracle.SHIFTS
            end = len(dirty.values) if lasting else max(incident.window) + 1
            acts |= set(range(incident.start, end))
        differ = {
            i for i, (c, d) in enumerate(zip(clean.values, dirty.values, strict=True)) if c != d
        }
        assert differ <= acts, (index, sorted(differ - acts))
        assert all(differ & set(i.window) for i in dirty.incidents), index
        # Outside each incident's alertable days the oracle sees no effect: none before it,
        # and a step's or drift's lasting change is taken away once those days are over (up
        # to the rounding of the counts to whole rows).
        effect = oracle.effects(clean, dirty)
        alertable = {d for i in dirty.incidents for d in range(i.start, max(i.allowed) + 1)}
        assert all(abs(e) < 0.06 for d, e in enumerate(effect) if d not in alertable), index


def test_the_oracle_alerts_on_an_outage_and_a_clear_drop_only() -> None:
    oracle = bench("anomaly_bound")
    seen = [0.0] * 40
    seen[20], seen[30] = float("-inf"), -5.0
    assert oracle.alerts(seen, 3.0) == {20, 30}
    # Alerted days leave the oracle's memory: the days after an outage are not dragged down.
    assert oracle.alerts(seen, 6.0) == {20}


def test_the_oracle_draws_noise_of_the_tables_form() -> None:
    """On generator B the oracle's noise is the table's own: Student-t tails where the table
    has them, counts on small tables; in noise units, its spread is about one either way."""
    oracle = bench("anomaly_bound")
    tables = [oracle.clean_and_dirty("B", 1, index)[0] for index in range(40)]
    heavy = next(t for t in tables if t.tails is not None and t.tails <= 4 and not t.counted)
    counted = next(t for t in tables if t.counted)
    rng = random.Random(7)
    for table in (heavy, counted):
        seen = oracle.seen_in_noise_units(table, [0.0] * len(table.values), rng)
        spread = statistics.pstdev(seen)
        assert 0.7 < spread < 1.4, (table.name, spread)
    # Heavy tails: far more days beyond four noise units than a normal table's 1 in 16,000.
    far = sum(
        abs(x) > 4
        for _ in range(20)
        for x in oracle.seen_in_noise_units(heavy, [0.0] * len(heavy.values), rng)
    )
    assert far >= 5
