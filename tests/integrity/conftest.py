"""Hypothesis profiles for the differential harness: a fixed, short one by default (and in CI),
a longer random one with STACKYARD_INTEGRITY_LONG=1."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    "database": None,
}
# Each step of a history runs real dlt and dbt (seconds each): few, fixed examples by default.
settings.register_profile("integrity", max_examples=3, derandomize=True, **_COMMON)
settings.register_profile("integrity-long", max_examples=40, derandomize=False, **_COMMON)

PROFILE = "integrity-long" if os.environ.get("STACKYARD_INTEGRITY_LONG") == "1" else "integrity"
# The per-kind harness runs eight kinds: by default only the named history of each (which
# meets every change and fault once); drawn histories with STACKYARD_INTEGRITY_LONG=1.
settings.register_profile("integrity-kinds", phases=[Phase.explicit], derandomize=True, **_COMMON)
settings.register_profile("integrity-long-kinds", max_examples=15, derandomize=False, **_COMMON)
