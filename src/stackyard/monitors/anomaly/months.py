"""Monthly calendar effects: a month-end close, a payroll day, a quiet first week.

A weekly model sees a table that is twice as busy on the last day of every month as a spike
twelve times a year. Eight weeks of baseline hold two month-ends, too few to learn from, so
the effect is learnt from the longer history the detector already reads for heavy tails:
each day of that history is predicted the way the judged day is (the median of the seven
deseasonalised days before it, times its weekday's factor), and the prediction errors of the
days that share the judged day's place in the month — the same day of the month, or the same
number of days before the month's end — are that place's effect, when they agree.
"""

from __future__ import annotations

import calendar
import math
from bisect import bisect_left, insort
from collections.abc import Sequence
from datetime import date
from functools import lru_cache

from stackyard.monitors.anomaly.stats import median

# An effect needs this many earlier months that show it, ...
_MIN_MONTHS = 2
# ... a median error beyond this many noise units, ...
_MIN_SIGMAS = 2.0
# ... and every one of those months beyond this many on the same side; with only two months,
# each beyond _MIN_SIGMAS: one incident (a duplicated load on the 31st, rows missing on the
# 2nd) and one ordinary day a little off on the same side passed the weaker rule about one
# time in six, and the effect it taught raised a false alert at that place every month after.
_EACH_SIGMAS = 1.0
# Places counted from the month's end (0 = its last day) that may carry an effect.
_END_PLACES = 3
_WINDOW = 7


class PlaceEffects:
    """The monthly effects a history shows, looked up by day (see the module docstring).

    Args:
        history: earlier points (no holidays), ascending.
        factors: the weekday factors of ``history``.
        scale: the table's noise in log units.

    >>> from datetime import timedelta
    >>> days = [date(2025, 1, 1) + timedelta(days=i) for i in range(150)]
    >>> def rows(d: date) -> float:
    ...     return 3000.0 if d.day == calendar.monthrange(d.year, d.month)[1] else 1000.0
    >>> effects = PlaceEffects([(d, rows(d)) for d in days], [1.0] * 7, 0.05)
    >>> effect = effects(date(2025, 5, 31))
    >>> round(effect[0], 2), effect[1]
    (1.1, 'the last day of a month')
    >>> effects(date(2025, 5, 30)) is None
    True
    """

    def __init__(
        self, history: Sequence[tuple[date, float]], factors: Sequence[float], scale: float
    ) -> None:
        self._scale = scale
        self._by_day: dict[int, list[float]] = {}
        self._by_end: dict[int, list[float]] = {}
        self._known: dict[date, tuple[float, str] | None] = {}
        #: Each predicted day's log prediction error, in order (the spike history reads them).
        self.errors: list[tuple[date, float]] = []
        deseasonalised: list[float] = []
        # The last seven kept sorted as they slide (bisect, not a sort per point: this runs
        # over half a year of points per verdict).
        week: list[float] = []
        for d, v in history:
            factor = factors[d.weekday()]
            if factor <= 0 or v <= 0:
                continue
            if len(deseasonalised) >= _WINDOW:
                predicted = week[_WINDOW // 2] * factor
                if predicted > 0:
                    error = math.log(v / predicted)
                    self.errors.append((d, error))
                    self._by_day.setdefault(d.day, []).append(error)
                    # Every month has 28 days or more: earlier days are never near its end.
                    if d.day > 28 - _END_PLACES:
                        from_end = _from_end(d)
                        if from_end < _END_PLACES:
                            self._by_end.setdefault(from_end, []).append(error)
            y = v / factor
            deseasonalised.append(y)
            insort(week, y)
            if len(week) > _WINDOW:
                del week[bisect_left(week, deseasonalised[-_WINDOW - 1])]
        # Most tables have no monthly effect at all: then every lookup is answered at once.
        self.any = any(
            self._consistent(errors) for errors in (*self._by_day.values(), *self._by_end.values())
        )

    def __call__(self, day: date) -> tuple[float, str] | None:
        """The log-ratio by which ``day``'s place in the month lifts or lowers its volume,
        and a few words naming that place; ``None`` when there is no consistent effect."""
        if not self.any:
            return None
        if day not in self._known:
            self._known[day] = self._effect(day)
        return self._known[day]

    def shift(self, day: date) -> float:
        """The log-ratio of ``day``'s place in the month (a month-end close), 0.0 for none."""
        if not self.any:
            return 0.0
        place = self(day)
        return place[0] if place is not None else 0.0

    def _effect(self, day: date) -> tuple[float, str] | None:
        from_end = _from_end(day)
        end_name = (
            "the last day of a month"
            if from_end == 0
            else f"{from_end + 1} days before a month's end"
        )
        candidates = [(self._by_day.get(day.day, []), f"day {day.day} of a month")]
        if from_end < _END_PLACES:
            candidates.insert(0, (self._by_end.get(from_end, []), end_name))
        best: tuple[float, str] | None = None
        for errors, name in candidates:
            if not self._consistent(errors):
                continue
            effect = median(errors)
            if best is None or abs(effect) > abs(best[0]):
                best = (effect, name)
        return best

    def _consistent(self, errors: Sequence[float]) -> bool:
        # Enough earlier months, a median beyond the limit, and every month on its side.
        if len(errors) < _MIN_MONTHS:
            return False
        effect = median(errors)
        if abs(effect) < _MIN_SIGMAS * self._scale:
            return False
        each = _MIN_SIGMAS if len(errors) == _MIN_MONTHS else _EACH_SIGMAS
        return all(e * effect > 0 and abs(e) > each * self._scale for e in errors)


def _from_end(d: date) -> int:
    return _month_length(d.year, d.month) - d.day


@lru_cache(maxsize=256)
def _month_length(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]
