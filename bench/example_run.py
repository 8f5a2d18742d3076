"""The example project, end to end: `stackyard run` vs a hand-written DuckDB script doing the
same loads, models and tests, side by side in one run; then a second `stackyard run` with no
new data.

The raw baseline reads the SQLite application database with Python's sqlite3 into Arrow, and
the CSV/Parquet files with DuckDB's own readers; it then runs each model's compiled SQL
(taken from dbt's manifest after the stackyard run, so both do exactly the same work) as
CREATE VIEW / CREATE TABLE statements in dependency order, and each test's compiled SQL as a
count of failing rows.

At each scale (1, 10 and 50 by default; ``--with-100`` adds 100) it reports the ratio, and a
line fitted through all scales gives each path's fixed cost and cost per million rows.

Usage: python bench/example_run.py [--scales 1 10 50] [--with-100] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import WORK, markdown_table, timer, write_figures, write_result

BIN = Path(sys.executable).parent


def stackyard(*args: str, cwd: Path) -> float:
    return stackyard_cpu(*args, cwd=cwd)[0]


def stackyard_cpu(*args: str, cwd: Path) -> tuple[float, float]:
    """One `stackyard` process: its wall time and its CPU time (user + system), seconds."""
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with timer() as t:
        done = subprocess.run(
            [str(BIN / "stackyard"), *args], cwd=cwd, capture_output=True, text=True, env=env
        )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"stackyard {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return t["seconds"], cpu


def raw_baseline(project: Path, db_path: Path) -> dict[str, float]:
    import duckdb
    import pyarrow as pa

    db_path.unlink(missing_ok=True)
    manifest = json.loads((project / "transform/target/manifest.json").read_text())
    times: dict[str, float] = {}
    cpu = time.process_time()  # every thread of this process, DuckDB's included
    with timer() as whole:
        con = duckdb.connect(str(db_path))
        with timer() as t:
            con.execute("CREATE SCHEMA shop_db; CREATE SCHEMA shop_files")
            app = sqlite3.connect(project / "sources/jaffle_app.sqlite")
            for table in ("customers", "orders", "order_items"):
                cur = app.execute(f"SELECT * FROM {table}")
                names = [d[0] for d in cur.description]
                rows = cur.fetchall()
                columns = zip(*rows, strict=True)
                arrow = pa.table(dict(zip(names, columns, strict=True)) if rows else {})
                con.register("incoming", arrow)
                con.execute(
                    f"CREATE TABLE shop_db.{table} AS SELECT * REPLACE ("
                    + ", ".join(
                        f"CAST({c} AS TIMESTAMP) AS {c}" for c in names if c.endswith("_at")
                    )
                    + "), now() AS _loaded_at FROM incoming"
                    if any(c.endswith("_at") for c in names)
                    else f"CREATE TABLE shop_db.{table} AS SELECT *, now() AS _loaded_at "
                    "FROM incoming"
                )
                con.unregister("incoming")
            files = project / "sources/files"
            for table, reader in (
                ("products", f"read_csv('{files}/products.csv')"),
                ("stores", f"read_csv('{files}/stores.csv')"),
                ("supplies", f"read_parquet('{files}/supplies.parquet')"),
            ):
                con.execute(
                    f"CREATE TABLE shop_files.{table} AS SELECT *, now() AS _loaded_at "
                    f"FROM {reader}"
                )
        times["load"] = t["seconds"]
        with timer() as t:
            order = _topological(manifest)
            for uid in order:
                node = manifest["nodes"][uid]
                kind = node["config"]["materialized"]
                if kind == "ephemeral":
                    continue
                schema = node["schema"]
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                what = "VIEW" if kind == "view" else "TABLE"
                relation = f"{schema}.{node['alias']}"
                batches = _batches(project, node)
                first = node.get("compiled_code") or batches.pop(0)
                con.execute(
                    f"CREATE OR REPLACE {what} {relation} AS " + first.replace('"dev".', "")
                )
                for sql in batches:  # a microbatch model: dbt compiles one query per batch
                    con.execute(f"INSERT INTO {relation} " + sql.replace('"dev".', ""))
        times["models"] = t["seconds"]
        with timer() as t:
            failures = 0
            for node in manifest["nodes"].values():
                if node["resource_type"] == "test":
                    sql = node["compiled_code"].replace('"dev".', "")
                    failures += con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
            assert failures == 0, f"{failures} failing test rows in the raw baseline"
        times["tests"] = t["seconds"]
        con.close()
    times["total"] = whole["seconds"]
    times["cpu"] = time.process_time() - cpu
    return times


def _batches(project: Path, node: dict) -> list[str]:
    """The compiled SQL of each batch of a microbatch model (none for other models)."""
    if node.get("compiled_code"):
        return []
    folder = (
        project
        / "transform/target/compiled"
        / node["package_name"]
        / node["original_file_path"].removesuffix(".sql")
    )
    return [p.read_text() for p in sorted(folder.glob("*.sql"))]


def _topological(manifest: dict) -> list[str]:
    nodes = {u: n for u, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    done: list[str] = []
    seen: set[str] = set()

    def visit(uid: str) -> None:
        if uid in seen or uid not in nodes:
            return
        seen.add(uid)
        for dep in nodes[uid]["depends_on"]["nodes"]:
            visit(dep)
        done.append(uid)

    for uid in sorted(nodes):
        visit(uid)
    return done


def measure(scale: int, repeat: int, work: Path, engines: list[str]) -> dict[str, float]:
    """One scale: the best first run and raw script (alternating), the best no-op run."""
    project = work / f"jaffle_{scale}"
    shutil.rmtree(project, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    stackyard(
        "init",
        str(project),
        "--example",
        "jaffle_shop",
        "--scale",
        str(scale),
        "--seed",
        "42",
        cwd=work,
    )
    rows = sum(
        sqlite3.connect(project / "sources/jaffle_app.sqlite")
        .execute(f"SELECT count(*) FROM {t}")
        .fetchone()[0]
        for t in ("customers", "orders", "order_items")
    )
    # The VM's speed drifts between minutes: alternate a fresh first run with the raw script
    # and keep each one's best.
    firsts: dict[str, list[tuple[float, float]]] = {engine: [] for engine in engines}
    raws = []
    for _ in range(repeat):
        for engine in engines:
            for state in (project / ".stackyard", project / "transform/target"):
                shutil.rmtree(state, ignore_errors=True)
            firsts[engine].append(stackyard_cpu("run", "--engine", engine, cwd=project))
        raws.append(raw_baseline(project, work / "raw.duckdb"))
    raw = min(raws, key=lambda r: r["total"])
    raw["cpu"] = min(r["cpu"] for r in raws)
    noops = [stackyard_cpu("run", cwd=project) for _ in range(5)]
    shutil.rmtree(project, ignore_errors=True)
    by_engine = {
        f"{key}_{engine}": min(run[i] for run in runs)
        for engine, runs in firsts.items()
        for i, key in enumerate(("first", "first_cpu"))
    }
    return {
        "scale": scale,
        "rows": rows,
        **by_engine,
        "first": by_engine[f"first_{engines[0]}"],
        "first_cpu": by_engine[f"first_cpu_{engines[0]}"],
        "second": min(wall for wall, _ in noops),
        "second_cpu": min(cpu for _, cpu in noops),
        "loadavg": os.getloadavg()[0],
        **raw,
    }


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line through the points: ``(intercept, slope)``.

    >>> fit([1, 2, 3], [3, 5, 7])
    (1.0, 2.0)
    """
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return my - slope * mx, slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--scales", type=int, nargs="+", default=[1, 10, 50], help="example data scales"
    )
    parser.add_argument("--with-100", action="store_true", help="add scale 100 (~9M rows)")
    parser.add_argument("--repeat", type=int, default=2, help="best of N fresh first runs")
    parser.add_argument(
        "--engines",
        nargs="+",
        default=["auto", "dbt"],
        choices=["dbt", "auto"],
        help="the first run's build engines, the default's first (default: auto dbt)",
    )
    args = parser.parse_args()
    scales = [*args.scales, *([100] if args.with_100 else [])]
    work = WORK / "example_run"
    results = [measure(scale, args.repeat, work, args.engines) for scale in scales]

    engines = args.engines
    rows = []
    for r in results:
        rows.append(
            [
                r["scale"],
                f"{r['rows']:,}",
                f"{r['load']:.2f} / {r['models']:.2f} / {r['tests']:.2f}",
                f"{r['total']:.2f}",
                *(
                    f"{r[f'first_{e}']:.2f} (**{r[f'first_{e}'] / r['total']:.2f}x**)"
                    for e in engines
                ),
                f"{r['cpu']:.2f}",
                *(
                    f"{r[f'first_cpu_{e}']:.2f} (**{r[f'first_cpu_{e}'] / r['cpu']:.2f}x**)"
                    for e in engines
                ),
                f"{r['second']:.2f} / {r['second_cpu']:.2f}",
                f"{r['loadavg']:.1f}",
            ]
        )
    table = markdown_table(
        [
            "scale",
            "application rows",
            "raw: load / models / tests (s)",
            "raw script (s)",
            *(f"first run, `--engine {e}` (s, × raw)" for e in engines),
            "CPU: raw script (s)",
            *(f"CPU: first run, `--engine {e}` (s, × raw)" for e in engines),
            "no-op run, wall / CPU (s)",
            "load average",
        ],
        rows,
    )
    text = (
        f"# The example project at scales {', '.join(map(str, scales))}\n\n"
        f"Best of {args.repeat} fresh first runs (each engine) alternating with the raw script; "
        "the no-op run (a second `stackyard run`, nothing new) best of 5, its wall time and "
        "the CPU time of the process (user + system); CPU times are each path's best, every "
        "thread counted. Whole processes. The load average (1 minute) is the machine's at the "
        f"end of each scale. `--engine {engines[0]}` is the default.\n\n{table}\n"
    )
    figures = []
    for r in results:
        ratio = r["first"] / r["total"]
        extra = ", ".join(
            f"`--engine {e}` {r[f'first_{e}'] / r['total']:.2f}x" for e in engines[1:]
        )
        figures.append(
            [
                f"example project, first `stackyard run` vs a hand-written DuckDB script, "
                f"scale {r['scale']} ({r['rows']:,} rows)",
                "≤ 1.3x from scale 10 up",
                f"{ratio:.2f}x ({r['first']:.1f} s vs {r['total']:.1f} s)"
                + (f"; {extra}" if extra else ""),
                "" if r["scale"] < 10 else ("met" if ratio <= 1.3 else "not met"),
            ]
        )
    for r in results:
        figures.append(
            [
                f"second `stackyard run` with no new data, scale {r['scale']}",
                "≤ 1.5 s",
                f"{r['second']:.2f} s wall, {r['second_cpu']:.2f} s CPU",
                "met" if r["second"] <= 1.5 else "not met",
            ]
        )
    if len(results) > 1:
        millions = [r["rows"] / 1e6 for r in results]
        raw = fit(millions, [r["total"] for r in results])
        lines = [["raw DuckDB script", f"{raw[0]:.2f}", f"{raw[1]:.2f}"]]
        for e in engines:
            ours = fit(millions, [r[f"first_{e}"] for r in results])
            lines += [
                [f"first run, `--engine {e}`", f"{ours[0]:.2f}", f"{ours[1]:.2f}"],
                [
                    f"**stackyard's overhead, `--engine {e}`**",
                    f"**{ours[0] - raw[0]:.2f}**",
                    f"**{ours[1] - raw[1]:.2f}**",
                ],
            ]
            figures.append(
                [
                    f"example project, first run's fixed overhead (`--engine {e}`; "
                    "intercept of a line through the scales, minus the raw script's)",
                    "≤ 3 s",
                    f"{ours[0] - raw[0]:.2f} s; per million rows "
                    f"{ours[1] - raw[1]:+.2f} s over the raw script's {raw[1]:.2f} s",
                    "met" if ours[0] - raw[0] <= 3 else "not met",
                ]
            )
        text += "\n" + markdown_table(
            ["path", "fixed cost (s, intercept)", "per million rows (s, slope)"], lines
        )
        text += (
            "\n\nA straight line fitted through the first runs above (least squares): what "
            "stackyard adds once per run, and per million application rows.\n"
        )
    text += f"\nReproduce: `python bench/example_run.py --scales {' '.join(map(str, scales))}"
    text += f" --repeat {args.repeat}`\n"
    print(text)
    write_result("example_run", text)
    write_figures("example_run", figures)


if __name__ == "__main__":
    main()
