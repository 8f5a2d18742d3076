"""The jaffle_shop example's data, generated once for the tests that only read it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from stackyard.examples.jaffle_shop.generator import generate

END = date(2025, 6, 30)
APP_TABLES = ("customers", "orders", "order_items")


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated example at scale 1, shared by the read-only tests."""
    project = tmp_path_factory.mktemp("shop")
    generate(project, scale=1, seed=42, end=END)
    return project
