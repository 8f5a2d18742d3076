"""What the days just before the judged one, and the table's own past spikes, say about it.

Two rules keep the log-ratio model from alerting again and again on one piece of news:

* **A change already alerted on.** When one of the last few days was alerted on (it is in
  ``exclude``) and every day since sits beyond the usual noise on the same side as the judged
  day, the judged day continues that change: a new customer doubling the volume, a month-end
  close that lasts three days, a partial drop in its second day. It is not alerted again
  unless it goes much further than the day alerted on; after four such days the level
  re-anchors anyway. An empty day on a table that is never empty is an outage and always
  alerts.
* **Tables that spike.** A table that has had several isolated spikes beyond its band in the
  last half year (alerted on or not) has bursts as part of its normal life: its spike band is
  widened to the smallest of those spikes, so a burst the size it has had before does not
  alert. Drops keep their band.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from datetime import date, timedelta

from stackyard.monitors.anomaly.config import Direction

# A change is continued over at most this many earlier days (the level re-anchors after four).
CONTINUE_DAYS = 4
# The judged day may exceed the alerted day's deviation by this many noise units and still
# count as the same change.
CONTINUE_MARGIN = 3.0
# This many earlier isolated spikes make bursts usual for a table.
SPIKE_EPISODES = 2


def continued_from(
    day: date,
    deviation: float,
    direction: Direction,
    recent: Sequence[tuple[date, float | None]],
    excluded: Collection[date],
    scale: float,
    beyond: float,
) -> date | None:
    """The earlier day alerted on whose change ``day`` continues, or ``None``.

    Args:
        day: the judged day.
        deviation: its log-ratio to the level.
        direction: the side its band was left on.
        recent: the earlier non-holiday days of the last week with their log-ratio to the level
            (``None`` for a day that cannot be compared, such as an empty one), ascending.
        excluded: the days alerted on (or otherwise kept out of the baseline).
        scale: the noise, in log units.
        beyond: how many noise units from the level a day must be to count as changed.

    >>> d = date(2026, 3, 10)
    >>> recent = [(d - timedelta(days=2), 0.0), (d - timedelta(days=1), 0.7)]
    >>> continued_from(d, 0.69, "spike", recent, {d - timedelta(days=1)}, 0.05, 1.0)
    datetime.date(2026, 3, 9)
    >>> continued_from(d, 0.69, "spike", recent, set(), 0.05, 1.0) is None
    True
    """
    sign = -1.0 if direction == "drop" else 1.0
    earliest = day - timedelta(days=CONTINUE_DAYS + 2)
    for d, dev in list(reversed(recent))[:CONTINUE_DAYS]:
        if d < earliest or dev is None or sign * dev <= beyond * scale:
            return None
        if d in excluded:
            return d if sign * deviation <= sign * dev + CONTINUE_MARGIN * scale else None
    return None


def spike_floor(
    errors: Sequence[tuple[date, float]],
    threshold: float,
    effect: Callable[[date], float],
    relative: Callable[[date], float] = lambda d: 1.0,
) -> float:
    """The spike band half-width (log units) the table's own isolated spikes call for: the
    smallest of them when there have been :data:`SPIKE_EPISODES` or more beyond
    ``threshold``, else 0.0.

    Args:
        errors: earlier days' log prediction errors, ascending.
        threshold: today's spike half-width in log units.
        effect: the monthly effect of a day, taken out of its error first.
        relative: a day's noise relative to the judged day's (its weekday's over the judged
            weekday's): a quiet Sunday's usual swings are not bursts on a steady Tuesday.

    >>> days = [date(2026, 1, 1) + timedelta(days=i) for i in range(60)]
    >>> errs = [(d, 0.9 if i in (10, 40) else 0.0) for i, d in enumerate(days)]
    >>> spike_floor(errs, 0.4, lambda d: 0.0)
    0.9
    >>> spike_floor(errs[:30], 0.4, lambda d: 0.0)
    0.0
    """
    sizes = []
    previous: date | None = None
    for d, error in errors:
        size = error - effect(d)
        if size / relative(d) > threshold:
            # The first day of a run only: a level shift or a long close is one episode.
            if previous is None or (d - previous).days > 2:
                sizes.append(size)
            previous = d
    if len(sizes) < SPIKE_EPISODES:
        return 0.0
    return min(sizes)


def log_ratio(value: float, reference: float) -> float | None:
    """``log(value / reference)``, or ``None`` when either is not positive."""
    if value <= 0 or reference <= 0:
        return None
    return math.log(value / reference)
