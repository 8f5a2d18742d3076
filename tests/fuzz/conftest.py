"""Hypothesis profiles for the fuzz tests: bounded by default (part of `make test`), longer
with STACKYARD_FUZZ_LONG=1."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,  # real files, YAML and the CLI: timings vary on a shared machine
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    "derandomize": False,
}
settings.register_profile("stackyard", max_examples=40, **_COMMON)
settings.register_profile("stackyard-long", max_examples=2_000, **_COMMON)
settings.load_profile(
    "stackyard-long" if os.environ.get("STACKYARD_FUZZ_LONG") == "1" else "stackyard"
)


def examples(default: int) -> int:
    """A test's example budget: ``default`` normally, 50x that in the long profile."""
    return default * 50 if os.environ.get("STACKYARD_FUZZ_LONG") == "1" else default
