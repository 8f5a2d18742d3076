"""The detector's settings and its verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

Status = Literal["ok", "anomaly", "insufficient_history"]
Direction = Literal["drop", "spike"]
Model = Literal["log", "count", "level"]

#: Band half-width, in robust standard deviations, for each named sensitivity. Chosen with
#: bench/anomaly_detector.py on its tuning seeds only (docs/observability.md has the figures
#: on held-out data).
SENSITIVITY_THRESHOLDS: dict[str, float] = {"high": 3.5, "medium": 4.0, "low": 5.0}


class AnomalyConfig(BaseModel):
    """How one table's volume is judged; the defaults work without tuning.

    Meant to sit under a table in stackyard.yml, so every field has a user-facing description.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sensitivity: Literal["low", "medium", "high"] | PositiveFloat = Field(
        "medium",
        description=(
            "How readily to alert: 'high' alerts on smaller deviations, 'low' only on large "
            "ones. A number sets the band half-width in robust standard deviations directly "
            "(medium = 4.0; larger means fewer alerts)."
        ),
    )
    direction: Literal["both", "drop", "spike"] = Field(
        "both",
        description="Alert on drops, spikes or both ('drop' ignores days with too many rows).",
    )
    seasonality: Literal["weekly", "none"] = Field(
        "weekly",
        description="'weekly' learns a usual level per weekday; 'none' treats all days alike.",
    )
    min_history: int = Field(
        14,
        ge=14,
        description=(
            "Fewest usable earlier days (not holidays, not excluded) needed to judge a day; "
            "with fewer, the verdict is 'insufficient_history'."
        ),
    )
    training_days: int = Field(
        56,
        ge=14,
        le=3660,
        description="How many days back the baseline looks (8 weeks by default).",
    )

    @model_validator(mode="after")
    def _history_fits_training_window(self) -> AnomalyConfig:
        if self.min_history > self.training_days:
            raise ValueError(
                f"min_history ({self.min_history}) is larger than training_days "
                f"({self.training_days}): no day could ever be judged; lower min_history "
                "or raise training_days"
            )
        return self

    @property
    def threshold(self) -> float:
        """The band half-width in robust standard deviations this sensitivity stands for."""
        if isinstance(self.sensitivity, str):
            return SENSITIVITY_THRESHOLDS[self.sensitivity]
        return float(self.sensitivity)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of one day's volume.

    Attributes:
        status: ``"ok"``, ``"anomaly"`` or ``"insufficient_history"``.
        reason: one sentence a person can act on, e.g. "0 rows is below the expected band
            950–1,120 (usual for a Tuesday): the table looks empty, an outage".
        day: the judged date.
        value: the judged value.
        expected: the value the baseline predicts for this day, or ``None`` without a baseline.
        lower: lower edge of the band of normal values, or ``None``.
        upper: upper edge of the band of normal values, or ``None``.
        score: log-ratio of value to expected in robust standard deviations (negative for a
            drop); ``None`` without a baseline. Beyond ±threshold is outside the band.
        direction: ``"drop"`` or ``"spike"`` when the value is outside the band, else ``None``.
        baseline_size: how many earlier days the baseline was built from.
        reanchored: ``True`` when the last days were taken as a new level (a step change).
        model: ``"log"`` (log-ratio bands, for tables with steady volume) or ``"count"``
            (count bands, for tables with frequent empty days or a few rows a day) or
            ``"level"`` (additive bands, for a column's mean or median).
        sequential: ``True`` when the alert comes from the last days taken together (a step
            or a slow drift) rather than from the judged day alone.
    """

    status: Status
    reason: str
    day: date
    value: float
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    score: float | None = None
    direction: Direction | None = None
    baseline_size: int = 0
    reanchored: bool = False
    model: Model = "log"
    sequential: bool = False

    @property
    def is_anomaly(self) -> bool:
        """Whether this verdict should raise an alert."""
        return self.status == "anomaly"
