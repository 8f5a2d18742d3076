"""How well could any detector do on the anomaly benchmark? An upper bound from perfect knowledge.

bench/anomaly_detector.py scores stackyard's detector on generated tables. This script scores
an *oracle* on the same tables: a detector that knows each table's true expected volume for
every day (its level, weekly profile, trend, wander and holidays, which a real detector must
estimate from a short, noisy history) and the exact spread of its log-noise. What is left for
it to judge is the incident's effect buried in one day's noise, which no detector can remove.
Whatever recall the oracle reaches at a given alert precision bounds every real detector.

It works for the generators whose noise is Gaussian in the log with a spread the table records
(A and D). For each table the generator is run twice, with and without its incidents (the
random draws are the same, so the two differ only by the incidents' effect); the oracle sees
that effect plus fresh Gaussian noise of the table's spread, on each day from day 14 on (the
first day stackyard can judge). A step down or slow drift is relearnt after the days it may be
alerted on, as a detector must. The oracle alerts when a one-day, two-day or four-day mean of
what it sees is more than ``z`` noise units from zero (the two- and four-day means are what a
sequential test adds), and ``z`` is set as low as the precision floor allows. Scoring is
bench/anomaly_detector.py's.

    .venv/bin/python bench/anomaly_bound.py                  # held-out seeds: writes results
    .venv/bin/python bench/anomaly_bound.py --seeds tuning   # print only
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import anomaly_data
import anomaly_data_d
from _common import write_figures
from anomaly_data import Incident, Table
from anomaly_detector import HELD_OUT_SEEDS, TUNING_SEEDS

MODULES = {"A": anomaly_data, "D": anomaly_data_d}
RESULTS = Path(__file__).resolve().parent / "results" / "anomaly_bound.md"
FIRST_JUDGED_DAY = 14
WINDOWS = (1, 2, 4)
SHIFTS = ("step_down", "slow_drift")


def clean_and_dirty(generator: str, seed: int, index: int) -> tuple[Table, Table]:
    """The table as generated, and the same table without its incidents."""
    module = MODULES[generator]
    real = module._inject

    def leave_values(rng: random.Random, kind: str, start: int, values: list[float]) -> Incident:
        # The same random draws as the real injection, on a copy the table never sees.
        return real(rng, kind, start, list(values))

    module._inject = leave_values
    try:
        clean = module.make_table(seed, index)
    finally:
        module._inject = real
    return clean, module.make_table(seed, index)


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


def alerts(seen: Sequence[float], noise: float, z: float) -> set[int]:
    """The days the oracle alerts on at threshold ``z``: the |mean| of the last 1, 2 or 4
    days not alerted on before, in noise units of that mean, above ``z``. Days alerted on
    leave its memory, as stackyard's ``exclude`` takes them out of later baselines."""
    kept: list[float] = []
    found: set[int] = set()
    for i in range(FIRST_JUDGED_DAY, len(seen)):
        today = seen[i]
        hit = math.isinf(today)
        for k in WINDOWS:
            if hit or len(kept) < k - 1:
                break
            total = today + sum(kept[len(kept) - k + 1 :])
            hit = abs(total) / (noise * math.sqrt(k)) > z
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
    replays: list[tuple[list[float], float, Table]] = []
    for seed in seeds:
        for index in range(tables):
            clean, dirty = clean_and_dirty(generator, seed, index)
            effect = effects(clean, dirty)
            rng = random.Random(f"oracle-{generator}-{seed}-{index}")
            for _ in range(draws):
                seen = [e + rng.gauss(0, dirty.noise) for e in effect]
                replays.append((seen, dirty.noise, dirty))

    def judge(z: float) -> tuple[float, float, Counter[str], Counter[str]]:
        true = every = 0
        total, caught = Counter[str](), Counter[str]()
        for seen, noise, table in replays:
            found = alerts(seen, noise, z)
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
