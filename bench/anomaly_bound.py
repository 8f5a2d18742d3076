"""How well could any detector do on the anomaly benchmark? An upper bound from perfect knowledge.

bench/anomaly_detector.py scores stackyard's detector on generated tables. This script scores
an *oracle* on the same tables: a detector that knows each table's true expected volume for
every day (its level, weekly profile, trend, wander and holidays, which a real detector must
estimate from a short, noisy history) and the exact spread of its log-noise. What is left for
it to judge is the incident's effect buried in one day's noise, which no detector can remove.
Whatever recall the oracle reaches at a given alert precision bounds every real detector.

It works for the generators whose noise has a form and spread the table records: A and D
(Gaussian in the log) and B (Student-t in the log with the table's degrees of freedom, and on
small tables Poisson counts around that). For each table the generator is run twice, with and
without its incidents (the random draws are the same, so the two differ only by the
incidents' effect); the oracle sees that effect plus fresh noise of the table's form and
spread, on each day from day 14 on (the first day stackyard can judge). On B's counted tables
a day's residual is measured in the spread its volume gives it (the log-noise and the count's
own, 1/volume in the log's variance). C has no bound: its legitimate bursts and level shifts
are exactly what an oracle would know and a detector cannot. A step down or slow drift is relearnt after the days it may be
alerted on, as a detector must. The oracle alerts when a one-day, two-day or four-day mean of
what it sees is more than ``z`` noise units from zero (the two- and four-day means are what a
sequential test adds), and ``z`` is set as low as the precision floor allows. On a table with
Student-t noise the limit is moved out to the same tail probability (one in as many days as
``z`` is for normal noise), so that every table is judged at the same rate of false alarms. Scoring is
bench/anomaly_detector.py's.

    .venv/bin/python bench/anomaly_bound.py                  # held-out seeds: writes results
    .venv/bin/python bench/anomaly_bound.py --seeds tuning   # print only
"""

from __future__ import annotations

import argparse
import functools
import math
import random
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import anomaly_data
import anomaly_data_b
import anomaly_data_d
from _common import write_figures
from anomaly_data import Incident, Table
from anomaly_detector import HELD_OUT_SEEDS, TUNING_SEEDS

MODULES = {"A": anomaly_data, "B": anomaly_data_b, "D": anomaly_data_d}
# Each generator's function that injects one incident.
INJECTORS = {"A": "_inject", "B": "_apply", "D": "_inject"}
RESULTS = Path(__file__).resolve().parent / "results" / "anomaly_bound.md"
FIRST_JUDGED_DAY = 14
WINDOWS = (1, 2, 4)
# Draws of the no-incident statistic per (degrees of freedom, window), to read Student-t
# limits off: a million put the one-in-30,000 limit within a few hundredths.
NULL_DRAWS = 1_000_000
SHIFTS = ("step_down", "slow_drift")


def clean_and_dirty(generator: str, seed: int, index: int) -> tuple[Table, Table]:
    """The table as generated, and the same table without its incidents."""
    module = MODULES[generator]
    name = INJECTORS[generator]
    real = getattr(module, name)

    def leave_values(rng: random.Random, kind: str, start: int, values: list[float]) -> Incident:
        # The same random draws as the real injection, on a copy the table never sees.
        return real(rng, kind, start, list(values))

    # Counts are drawn last, so both tables keep their volumes before counting noise: the
    # oracle draws its own counts around them.
    counting = getattr(module, "_poisson", None)
    try:
        if counting is not None:
            module._poisson = lambda rng, mean: mean
        setattr(module, name, leave_values)
        clean = module.make_table(seed, index)
        setattr(module, name, real)
        dirty = module.make_table(seed, index)
    finally:
        setattr(module, name, real)
        if counting is not None:
            module._poisson = counting
    return clean, dirty


def seen_in_noise_units(clean: Table, effect: Sequence[float], rng: random.Random) -> list[float]:
    """What the oracle sees each day, in noise units: the incident's effect plus fresh noise
    of the table's form (``-inf`` on an empty day)."""
    seen = []
    for volume, e in zip(clean.values, effect, strict=True):
        # Drawn on empty days too: the same stream of draws whatever the incidents.
        if clean.tails is None:
            shock = rng.gauss(0, 1)
        else:
            shock = anomaly_data_b._student_t(rng, int(clean.tails))
        if not math.isfinite(e):
            seen.append(e)
            continue
        if not clean.counted or volume <= 0:
            seen.append(e / clean.noise + shock)
            continue
        count = anomaly_data_b._poisson(rng, volume * math.exp(e + clean.noise * shock))
        spread = math.sqrt(clean.noise**2 + 1 / volume)
        seen.append(math.log(max(count, 0.5) / volume) / spread)
    return seen


def effects(clean: Table, dirty: Table) -> list[float]:
    """Each day's incident effect in the log (``-inf`` for an empty day), with a step's or
    drift's lasting change taken away once its alertable days are over."""
    raw = [
        math.log(d / c) if d > 0 and c > 0 else (-math.inf if d == 0 < c else 0.0)
        for c, d in zip(clean.values, dirty.values, strict=True)
    ]
    relearnt = [0.0] * len(raw)
    for incident in dirty.incidents:
        after = max(incident.allowed) + 1
        if incident.kind in SHIFTS and after < len(raw):
            for i in range(after, len(raw)):
                relearnt[i] = raw[after]
    return [r - k if math.isfinite(r) else r for r, k in zip(raw, relearnt, strict=True)]


@functools.cache
def _null(tails: int, days: int) -> list[float]:
    """Sorted draws of |the mean of ``days`` unit-variance Student-t shocks| in noise units of
    that mean: the statistic's distribution where there is no incident."""
    import numpy as np

    draws = np.random.default_rng(tails * 10 + days).standard_t(tails, (NULL_DRAWS, days))
    draws *= math.sqrt((tails - 2) / tails)
    return sorted(np.abs(draws.sum(axis=1)) / math.sqrt(days))


def limits(tails: float | None, z: float) -> dict[int, float]:
    """Per window, the limit for a table whose noise has ``tails`` degrees of freedom
    (``None``: normal) that is passed as rarely as ``z`` is by normal noise."""
    if tails is None:
        return dict.fromkeys(WINDOWS, z)
    share = math.erfc(z / math.sqrt(2))
    out = {}
    for k in WINDOWS:
        null = _null(int(tails), k)
        out[k] = null[min(len(null) - 1, int(len(null) * (1 - share)))]
    return out


def alerts(seen: Sequence[float], z: float | dict[int, float]) -> set[int]:
    """The days the oracle alerts on at threshold ``z`` (or per window, see :func:`limits`):
    the |mean| of the last 1, 2 or 4 days not alerted on before (``seen`` is in noise units),
    in noise units of that mean, above it. Days alerted on leave its memory, as stackyard's
    ``exclude`` takes them out of later baselines."""
    limit = z if isinstance(z, dict) else dict.fromkeys(WINDOWS, z)
    kept: list[float] = []
    found: set[int] = set()
    for i in range(FIRST_JUDGED_DAY, len(seen)):
        today = seen[i]
        hit = math.isinf(today)
        for k in WINDOWS:
            if hit or len(kept) < k - 1:
                break
            total = today + sum(kept[len(kept) - k + 1 :])
            hit = abs(total) / math.sqrt(k) > limit[k]
        if hit:
            found.add(i)
        else:
            kept.append(today)
    return found


def score(
    generator: str, seeds: Sequence[int], tables: int, draws: int, floor: float
) -> tuple[float, float, float, Counter[str], Counter[str]]:
    """The oracle's recall and precision at the lowest threshold ``z`` whose precision meets
    ``floor`` (found by bisection: fewer alerts as ``z`` grows)."""
    replays: list[tuple[list[float], Table]] = []
    for seed in seeds:
        for index in range(tables):
            clean, dirty = clean_and_dirty(generator, seed, index)
            effect = effects(clean, dirty)
            rng = random.Random(f"oracle-{generator}-{seed}-{index}")
            for _ in range(draws):
                replays.append((seen_in_noise_units(clean, effect, rng), dirty))

    def judge(z: float) -> tuple[float, float, Counter[str], Counter[str]]:
        true = every = 0
        total, caught = Counter[str](), Counter[str]()
        for seen, table in replays:
            found = alerts(seen, limits(table.tails, z))
            allowed = {d for i in table.incidents for d in i.allowed}
            every += len(found)
            true += len(found & allowed)
            for incident in table.incidents:
                total[incident.kind] += 1
                caught[incident.kind] += bool(found.intersection(incident.window))
        return sum(caught.values()) / sum(total.values()), true / max(every, 1), caught, total

    low, high = 1.0, 8.0
    for _ in range(14):
        middle = (low + high) / 2
        if judge(middle)[1] >= floor:
            high = middle
        else:
            low = middle
    recall, precision, caught, total = judge(high)
    return high, recall, precision, caught, total


def main(argv: Sequence[str] | None = None) -> int:
    """Print the oracle's figures per generator as markdown; write them for held-out seeds."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seeds",
        type=_seeds,
        default="held-out",
        help="'held-out' (default; writes the results), 'tuning', or ranges per generator: "
        "A:9101-9105,D:9401-9405",
    )
    parser.add_argument("--tables", type=int, default=40, help="tables per seed (default 40)")
    parser.add_argument("--draws", type=int, default=4, help="noise draws per table (default 4)")
    parser.add_argument("--precision", type=float, default=0.90, help="alert precision floor")
    args = parser.parse_args(argv)
    named = {"held-out": HELD_OUT_SEEDS, "tuning": TUNING_SEEDS}
    chosen = named.get(args.seeds) or dict(_ranges(args.seeds))
    lines = [
        f"# Oracle bound on the anomaly benchmark ({args.seeds} seeds)",
        "",
        "What a detector that knows each day's expected volume and the noise's spread catches at "
        f"alert precision ≥ {args.precision:.2f} (bench/anomaly_bound.py explains the method). "
        f"{args.tables} tables per seed, {args.draws} noise draws per table.",
        f"Reproduce: `.venv/bin/python bench/anomaly_bound.py --seeds {args.seeds} "
        f"--tables {args.tables} --draws {args.draws}`",
        "",
    ]
    figures = []
    for generator in MODULES:
        if generator not in chosen:
            continue
        seeds = chosen[generator]
        z, recall, precision, caught, total = score(
            generator, seeds, args.tables, args.draws, args.precision
        )
        lines += [
            f"## Generator {generator} (seeds {', '.join(map(str, seeds))})",
            "",
            f"Threshold {z:.2f} noise units: incident recall **{recall:.2f}** at alert "
            f"precision {precision:.3f}.",
            "",
            "| kind | caught |",
            "| --- | ---: |",
            *(f"| {k.replace('_', ' ')} | {_share(caught[k], total[k])} |" for k in total),
            "",
        ]
        figures.append(
            [
                f"oracle bound, {args.seeds} seeds of generator {generator}: incident recall "
                f"at alert precision ≥ {args.precision:.2f}",
                "(a ceiling for any detector)",
                f"{recall:.2f}",
                "",
            ]
        )
    report = "\n".join(lines)
    sys.stdout.write(report)
    if args.seeds == "held-out":
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report)
        write_figures("anomaly_bound", figures)
    return 0


def _seeds(text: str) -> str:
    """``--seeds``: a named split, or seed ranges per generator (checked here)."""
    if text not in ("held-out", "tuning"):
        try:
            dict(_ranges(text))
        except (ValueError, KeyError):
            raise argparse.ArgumentTypeError(
                f"{text!r}: say held-out, tuning or e.g. A:9101-9105,D:9401-9405"
            ) from None
    return text


def _ranges(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """``A:9101-9105,D:9401-9405`` as (generator, seeds) pairs.

    >>> _ranges("A:1-3,D:7-7")
    [('A', (1, 2, 3)), ('D', (7,))]
    """
    found = []
    for part in text.split(","):
        generator, _, span = part.partition(":")
        first, _, last = span.partition("-")
        if generator.upper() not in MODULES:
            raise KeyError(generator)
        found.append((generator.upper(), tuple(range(int(first), int(last or first) + 1))))
    return found


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.2f} ({part}/{whole})" if whole else "nan (0/0)"


if __name__ == "__main__":
    raise SystemExit(main())
