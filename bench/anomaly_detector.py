"""Benchmark stackyard's volume anomaly detector against Elementary's default scoring.

Synthetic daily row counts (weekly seasonality, trend, autocorrelated wander, noise and a
holiday calendar) get six kinds of injected incidents. Each detector is replayed day by day
the way a daily monitor runs it, and scored on what an on-call engineer feels: how many
incidents it catches, how many of its alerts are real, and how often it cries wolf.

    .venv/bin/python bench/anomaly_detector.py            # 200 tables x 1 year, writes results
    .venv/bin/python bench/anomaly_detector.py --quick    # 40 tables, prints only
    .venv/bin/python bench/anomaly_detector.py --seed 11  # another seed, to check for overfit

Scoring rules:
* An incident is caught when the detector alerts on any day of its window. The window is the
  incident's days; for a late arrival also the catch-up day; for a step change the change day
  and the 7 days after it (alerts later than that are false alerts: the new level is normal).
* Alert precision = alerts on a day inside some incident window / all alerts.
* False alerts per table-month = alerts outside every window / (tables x replayed days / 30.44).
* Latency is one verdict on 200 days of history, timed in this process after the replay.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import math
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("stackyard") is None:
    # Runnable from a checkout without installing the package.
    sys.path.insert(0, str(ROOT / "src"))

from stackyard.monitors.anomaly import detect  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "anomaly_detector.md"
START = date(2024, 1, 1)
DAYS = 366
KINDS = (
    "outage",
    "partial_drop",
    "duplicate_spike",
    "late_arrival",
    "step_change",
    "small_drop",
)
# A plausible European business calendar for 2024; the detectors see it as `holidays`.
HOLIDAYS = frozenset(
    date(2024, m, d)
    for m, d in [
        (1, 1),
        (3, 29),
        (4, 1),
        (5, 1),
        (5, 9),
        (5, 20),
        (8, 15),
        (11, 1),
        (11, 11),
        (12, 24),
        (12, 25),
        (12, 26),
        (12, 31),
    ]
)
# Incidents start once both detectors have a full training window and some slack.
FIRST_INCIDENT_DAY = 70
STEP_WINDOW_DAYS = 8  # the change day and the 7 days after it


@dataclass(frozen=True)
class Incident:
    """One injected incident and the days on which an alert is a true alert."""

    kind: str
    start: int
    window: tuple[int, ...]


@dataclass(frozen=True)
class Table:
    """One synthetic table: its series, its incidents, and its name for debugging."""

    name: str
    dates: list[date]
    values: list[float]
    incidents: list[Incident]


@dataclass
class Tally:
    """Counts for one detector over the tables it was replayed on."""

    incidents: Counter[str] = field(default_factory=Counter)
    caught: Counter[str] = field(default_factory=Counter)
    alerts: int = 0
    true_alerts: int = 0
    holiday_alerts: int = 0
    late_step_alerts: int = 0
    days: int = 0
    tables: int = 0

    def add(self, other: Tally) -> None:
        self.incidents.update(other.incidents)
        self.caught.update(other.caught)
        self.alerts += other.alerts
        self.true_alerts += other.true_alerts
        self.holiday_alerts += other.holiday_alerts
        self.late_step_alerts += other.late_step_alerts
        self.days += other.days
        self.tables += other.tables


# --------------------------------------------------------------------------- data


def make_table(seed: int, index: int) -> Table:
    """Build one table's year of daily row counts with six incidents injected."""
    rng = random.Random(f"anomaly-bench-{seed}-{index}")
    dates = [START + timedelta(days=i) for i in range(DAYS)]
    base = 10 ** rng.uniform(3, 6)
    if rng.random() < 0.7:
        weekend = rng.uniform(0.25, 0.7)
        weekly = [1 + rng.uniform(-0.08, 0.08) for _ in range(5)] + [weekend, weekend * 0.9]
        holiday_factor = rng.uniform(0.2, 0.6)
    else:
        weekly = [1.0] * 7
        holiday_factor = rng.uniform(0.5, 0.85)
    slope = math.log(1 + rng.uniform(-0.3, 0.8)) / DAYS
    noise = rng.uniform(0.03, 0.12)
    wander, wander_sd = 0.0, 0.2 * noise

    clean = []
    for i, d in enumerate(dates):
        wander = 0.9 * wander + rng.gauss(0, wander_sd)
        v = base * weekly[d.weekday()] * math.exp(slope * i + wander + rng.gauss(0, noise))
        clean.append(v * holiday_factor if d in HOLIDAYS else v)

    values = list(clean)
    incidents = []
    for kind, start in zip(_shuffled(rng, KINDS), _incident_days(rng, dates), strict=True):
        if kind == "outage":
            days = range(start, start + (1 if rng.random() < 0.8 else 2))
            for i in days:
                values[i] = 0.0
            window = tuple(days)
        elif kind == "partial_drop":
            factor = rng.uniform(0.4, 0.6)
            days = range(start, start + rng.choice((1, 1, 2)))
            for i in days:
                values[i] *= factor
            window = tuple(days)
        elif kind == "duplicate_spike":
            values[start] *= 2
            window = (start,)
        elif kind == "late_arrival":
            arrived = rng.uniform(0.3, 0.5)
            late = values[start] * (1 - arrived)
            values[start] -= late
            values[start + 1] += late
            window = (start, start + 1)
        elif kind == "step_change":
            factor = rng.uniform(1.3, 1.5) if rng.random() < 0.5 else rng.uniform(0.5, 0.7)
            for i in range(start, DAYS):
                values[i] *= factor
            window = tuple(range(start, start + STEP_WINDOW_DAYS))
        else:  # small_drop
            factor = rng.uniform(0.75, 0.8)
            days = range(start, start + rng.choice((2, 3)))
            for i in days:
                values[i] *= factor
            window = tuple(days)
        incidents.append(Incident(kind, start, window))
    return Table(f"table_{index:03d}", dates, [round(v) for v in values], incidents)


def _shuffled(rng: random.Random, items: Sequence[str]) -> list[str]:
    out = list(items)
    rng.shuffle(out)
    return out


def _incident_days(rng: random.Random, dates: Sequence[date]) -> list[int]:
    # Incidents at least 21 days apart and clear of holidays, so that every alert belongs to
    # at most one incident and a holiday never masks or fakes one.
    while True:
        starts = sorted(rng.sample(range(FIRST_INCIDENT_DAY, DAYS - 12), len(KINDS)))
        if all(b - a >= 21 for a, b in itertools.pairwise(starts)) and not any(
            dates[i + o] in HOLIDAYS for i in starts for o in range(-1, 9)
        ):
            return starts


# --------------------------------------------------------------------------- detectors


def elementary_is_anomalous(values: Sequence[float]) -> bool:
    """Elementary's default volume_anomalies verdict on the newest daily bucket.

    A faithful reading of elementary-data/dbt-data-reliability (default config and macros):
    * `get_default_config`: `days_back: 14` (the training_period), `anomaly_sensitivity: 3`,
      `min_training_set_size: 14`, `anomaly_direction: both`; no seasonality by default.
    * `get_anomaly_scores_query.sql`: `avg`/`stddev(metric_value) over (... order by
      bucket_end rows between unbounded preceding and current row)` over buckets no older
      than detection end minus the training period, so the scored bucket IS in its own
      training set; `anomaly_score = (metric_value - training_avg) / training_stddev`, 0 when
      the stddev is 0. `exclude_detection_period_from_training` defaults to false.
    * The anomaly test marks a bucket anomalous when `abs(score) > anomaly_sensitivity` and
      `training_set_size >= min_training_set_size`. With the default 2-day detection_period
      the older bucket has only 13 points, so daily runs effectively score the newest one.
    * Earlier anomalies stay in the training set (`anomaly_exclude_metrics` is empty by
      default) and there is no holiday calendar, so neither is passed here.
    """
    window = values[-14:]
    if len(window) < 14:
        return False
    mean = sum(window) / len(window)
    stddev = math.sqrt(sum((x - mean) ** 2 for x in window) / (len(window) - 1))
    score = 0.0 if stddev == 0 else (window[-1] - mean) / stddev
    return abs(score) > 3


def replay_stackyard(table: Table) -> set[int]:
    """Days stackyard alerts on, each alert excluded from later baselines (as a monitor does)."""
    alerted: list[date] = []
    days = set()
    for d in range(len(table.dates)):
        verdict = detect(
            table.dates[: d + 1], table.values[: d + 1], holidays=HOLIDAYS, exclude=alerted
        )
        if verdict.is_anomaly:
            alerted.append(table.dates[d])
            days.add(d)
    return days


def replay_elementary(table: Table) -> set[int]:
    """Days Elementary's default scoring alerts on."""
    return {d for d in range(len(table.values)) if elementary_is_anomalous(table.values[: d + 1])}


DETECTORS = {"stackyard": replay_stackyard, "elementary (defaults)": replay_elementary}


def score_table(args: tuple[int, int]) -> dict[str, Tally]:
    """Replay every detector on one table and tally the outcome."""
    seed, index = args
    table = make_table(seed, index)
    windows = {d for incident in table.incidents for d in incident.window}
    tallies = {}
    for name, replay in DETECTORS.items():
        alerts = replay(table)
        tally = Tally(days=len(table.dates), tables=1, alerts=len(alerts))
        tally.true_alerts = len(alerts & windows)
        tally.holiday_alerts = sum(1 for d in alerts if table.dates[d] in HOLIDAYS)
        for incident in table.incidents:
            tally.incidents[incident.kind] += 1
            if alerts.intersection(incident.window):
                tally.caught[incident.kind] += 1
            if incident.kind == "step_change":
                after = range(incident.window[-1] + 1, incident.window[-1] + 31)
                tally.late_step_alerts += len(alerts.intersection(after) - windows)
        tallies[name] = tally
    return tallies


# --------------------------------------------------------------------------- report


def latency_ms(seed: int, samples: int) -> dict[str, tuple[float, float]]:
    """Median and p99 milliseconds of one verdict on 200 days of history, per detector."""
    tables = [make_table(seed, i) for i in range(20)]
    holder: list[date] = []
    calls = {
        "stackyard": lambda t: detect(
            t.dates[:200], t.values[:200], holidays=HOLIDAYS, exclude=holder
        ),
        "elementary (defaults)": lambda t: elementary_is_anomalous(t.values[:200]),
    }
    out = {}
    for name, call in calls.items():
        timings = []
        for i in range(samples):
            table = tables[i % len(tables)]
            began = time.perf_counter()
            call(table)
            timings.append((time.perf_counter() - began) * 1000)
        timings.sort()
        out[name] = (statistics.median(timings), timings[int(0.99 * (len(timings) - 1))])
    return out


def render(
    totals: dict[str, Tally], latency: dict[str, tuple[float, float]], args: argparse.Namespace
) -> str:
    """The results as a markdown table, one column per detector."""
    names = list(totals)
    rows: list[tuple[str, list[str]]] = []
    for kind in KINDS:
        cells = []
        for n in names:
            t = totals[n]
            cells.append(
                f"{t.caught[kind] / t.incidents[kind]:.2f} ({t.caught[kind]}/{t.incidents[kind]})"
            )
        rows.append((f"recall: {kind.replace('_', ' ')}", cells))
    cells = []
    for n in names:
        t = totals[n]
        caught, total = sum(t.caught.values()), sum(t.incidents.values())
        cells.append(f"**{caught / total:.2f}** ({caught}/{total})")
    rows.append(("**incident recall (all)**", cells))
    rows.append(
        (
            "**alert precision**",
            [
                f"**{_ratio(t.true_alerts, t.alerts):.2f}** ({t.true_alerts}/{t.alerts})"
                for t in totals.values()
            ],
        )
    )
    rows.append(
        (
            "false alerts per table-month",
            [f"{(t.alerts - t.true_alerts) / (t.days / 30.44):.3f}" for t in totals.values()],
        )
    )
    rows.append(("  of which on holidays", [str(t.holiday_alerts) for t in totals.values()]))
    rows.append(
        (
            "  of which 8-37 days after a step change",
            [str(t.late_step_alerts) for t in totals.values()],
        )
    )
    rows.append(
        ("latency per verdict, 200 days: median", [f"{latency[n][0]:.3f} ms" for n in names])
    )
    rows.append(("latency per verdict, 200 days: p99", [f"{latency[n][1]:.3f} ms" for n in names]))

    t0 = next(iter(totals.values()))
    lines = [
        "# Volume anomaly detector benchmark",
        "",
        f"{t0.tables} synthetic tables x {DAYS} days, seed {args.seed}, "
        f"{sum(t0.incidents.values())} injected incidents; replayed day by day.",
        f"Reproduce: `.venv/bin/python bench/anomaly_detector.py --seed {args.seed}"
        + (" --quick`" if args.quick else "`"),
        "",
        "| metric | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---:" for _ in names) + " |",
    ]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    lines += [
        "",
        "stackyard: `detect()` with default `AnomalyConfig`, the holiday calendar, and every",
        "earlier alert passed as `exclude`. Elementary: `volume_anomalies` defaults (14-day",
        "training period including the scored day, mean/stddev, |z| > 3, no seasonality, no",
        "holiday calendar, earlier anomalies kept in training).",
        "",
    ]
    return "\n".join(lines)


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the markdown table, and write it unless --quick."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="40 tables; print only, write nothing")
    parser.add_argument("--tables", type=int, default=None, help="number of tables (default 200)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"where to write (default {RESULTS.relative_to(ROOT)})",
    )
    args = parser.parse_args(argv)
    count = args.tables or (40 if args.quick else 200)

    totals = {name: Tally() for name in DETECTORS}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for result in pool.map(score_table, [(args.seed, i) for i in range(count)], chunksize=4):
            for name, tally in result.items():
                totals[name].add(tally)
    latency = latency_ms(args.seed, 500 if args.quick else 4000)
    report = render(totals, latency, args)
    sys.stdout.write(report)
    output = args.output or (None if args.quick else RESULTS)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report)
        sys.stdout.write(f"\nwritten to {output}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
