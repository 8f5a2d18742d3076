"""The differential harness: random histories of upstream changes, interleaved with
``stackyard run``, ``reload``, ``run --full-refresh`` and a lost warehouse; after every command
the warehouse is compared with the model of what docs/project.md promises (tests/integrity/
model.py), and the counts the command printed with what the model says it loaded.

Fixed examples by default (a short, derandomised profile); STACKYARD_INTEGRITY_LONG=1 runs
many random ones.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests.integrity.conftest import PROFILE
from tests.integrity.helpers import cli_json
from tests.integrity.model import World, lose, warehouse

_pick = st.integers(0, 7)
_payments = st.lists(
    st.tuples(st.integers(1, 6).map(str), st.integers(1, 999)), min_size=1, max_size=5
)
STEP = st.one_of(
    st.tuples(st.just("insert_accounts"), st.integers(1, 3)),
    st.tuples(st.just("update_accounts"), _pick),
    st.tuples(st.just("delete_account"), _pick),
    st.tuples(st.just("new_events"), st.integers(1, 3)),
    st.tuples(st.just("events_at_boundary"), st.integers(1, 3)),
    st.tuples(st.just("change_plans"), _pick),
    st.tuples(st.just("write_products"), st.integers(0, 2)),
    st.tuples(st.just("remove_products"), st.integers(0, 2)),
    st.tuples(st.just("write_payments"), _payments),
    st.just(("run", None)),
    st.just(("full_refresh", None)),
    st.just(("reload", None)),
    st.just(("lose_warehouse", None)),
)
COMMANDS = {"run", "full_refresh", "reload", "lose_warehouse"}


def _apply(world: World, project: Path, step: tuple[str, Any], trail: list[str]) -> None:
    name, arg = step
    trail.append(f"{name}({arg!r})" if arg is not None else name)
    if name not in COMMANDS:
        getattr(world, name)(arg)
        return
    if name == "lose_warehouse":
        lose(project)
        world.lose_warehouse()
        return
    if name == "reload":
        expected = world.run(refresh=True)
        results = [cli_json("reload", s, "--yes", "-p", str(project)) for s in ("app", "files")]
    else:
        expected = world.run(refresh=name == "full_refresh")
        flags = ["--full-refresh"] if name == "full_refresh" else []
        results = [cli_json("run", *flags, "-p", str(project))]
    where = " → ".join(trail)
    code = max(c for c, _ in results)
    assert code == expected.exit_code, f"{where}: exit {code}, promised {expected.exit_code}"
    counts = [r["counts"] for _, r in results]
    printed = (
        sum(c["rows_loaded"] for c in counts),
        sum(c["rows_rejected"] for c in counts),
        sum(c["rows_collapsed"] for c in counts),
    )
    promised = (expected.rows_loaded, expected.rows_rejected, expected.rows_collapsed)
    assert printed == promised, f"{where}: counts {printed}, promised {promised}"
    found, wanted = warehouse(project), world.tables()
    for table in wanted:
        assert found[table] == wanted[table], (
            f"{where}: {table} holds {found[table]}, promised {wanted[table]}"
        )


def _history(steps: list[tuple[str, Any]]) -> None:
    root = Path(tempfile.mkdtemp(prefix="stackyard-integrity-"))
    try:
        project = root / "p"
        project.mkdir()
        world = World(project)
        world.setup()
        trail: list[str] = []
        for step in [("run", None), *steps, ("run", None)]:
            _apply(world, project, step, trail)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@settings(settings.get_profile(PROFILE))
@given(st.lists(STEP, min_size=2, max_size=6))
# named regressions of the cases, run before the generated histories
@example(  # 2: rows sharing the last cursor value are loaded once, and later ones too
    [("events_at_boundary", 2), ("run", None), ("events_at_boundary", 1)]
)
@example(  # 6 + 4: duplicate keys in one file; the last product file removed, then back
    [("write_payments", [("3", 1), ("3", 2), ("4", 5)]), ("remove_products", 0), ("run", None),
     ("write_products", 1)]
)  # fmt: skip
@example(  # 9: a lost warehouse fails the next run; reload, then more changes
    [("update_accounts", 1), ("run", None), ("lose_warehouse", None), ("delete_account", 0),
     ("run", None), ("reload", None), ("insert_accounts", 1)]
)  # fmt: skip
@example(  # 9: --full-refresh after a loss also drops what was deleted upstream
    [("delete_account", 2), ("change_plans", 1), ("lose_warehouse", None),
     ("full_refresh", None)]
)  # fmt: skip
def test_random_histories_keep_what_the_docs_promise(steps: list[tuple[str, Any]]) -> None:
    _history(steps)
