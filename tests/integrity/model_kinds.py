"""A model of what docs/project.md ("What each table keeps") promises for one source of any
kind, for the per-kind harness. Upstream is :class:`tests.integrity.upstreams.Upstream`; the
model keeps what the warehouse must hold after each command and the rows it must report.

* merge: every key ever loaded, at the version last loaded (a column added or renamed
  upstream is filled from then on; rows loaded before keep NULL there).
* append: every upstream row once, rows sharing the last cursor value included.
* replace: equal to upstream.
* A fraction arriving in an integer column is never rounded: the load of the source fails
  (types are frozen) or, for CSV, the row goes to ``_rejected_rows``; a reload makes the
  column fit.
* A source that cannot be reached fails the run and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.integrity.upstreams import Kind, Upstream


@dataclass
class Expected:
    exit_code: int
    rows_loaded: int | None  # None: not known (the run after a kill -9 may finish its load)
    rows_rejected: int


@dataclass
class SourceModel:
    kind: Kind
    up: Upstream = field(default_factory=Upstream)
    tick: int = 1
    next_id: int = 0
    w: dict[str, dict[Any, dict[str, Any]]] = field(
        default_factory=lambda: {"accounts": {}, "events": {}, "plans": {}}
    )
    loaded_versions: set[tuple[int, int]] = field(default_factory=set)
    accounts_changed: bool = True  # files: accounts file re-written since the last load
    w_widened: bool = False  # the warehouse's amount column holds fractions

    # ------------------------------------------------------------------ upstream changes

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _account(self, key: int, amount: float | int) -> dict[str, Any]:
        row: dict[str, Any] = {"id": key, "tick": self.tick, "amount": amount}
        row["label" if self.up.renamed else "name"] = f"a{self.tick}"
        if self.up.noted:
            row["note"] = f"n{self.tick}"
        return row

    def _accounts_touched(self) -> None:
        self.accounts_changed = True

    def insert_accounts(self, n: int) -> None:
        self.tick += 1
        for _ in range(n):
            key = self._id()
            self.up.accounts[key] = self._account(key, key * 10)
        self._accounts_touched()

    def update_account(self, pick: int, amount: float | None = None) -> None:
        if not self.up.accounts:
            return
        self.tick += 1
        key = sorted(self.up.accounts)[pick % len(self.up.accounts)]
        self.up.accounts[key] = self._account(key, key * 10 + 1 if amount is None else amount)
        self._accounts_touched()

    def delete_account(self, pick: int) -> None:
        if self.up.accounts:
            del self.up.accounts[sorted(self.up.accounts)[pick % len(self.up.accounts)]]
            self._accounts_touched()

    def new_events(self, n: int) -> None:
        self.tick += 1
        self._events(n, self.tick)

    def events_at_boundary(self, n: int) -> None:
        """Rows sharing the newest cursor value, arriving after it was loaded."""
        self._events(n, max((e["tick"] for e in self.up.events), default=self.tick))

    def _events(self, n: int, tick: int) -> None:
        self.up.events.extend({"id": self._id(), "kind": "view", "tick": tick} for _ in range(n))

    def change_plans(self, pick: int) -> None:
        key = pick % 4
        if key in self.up.plans and pick % 2:
            del self.up.plans[key]
        else:
            self.up.plans[key] = {"id": key, "name": f"p{self.tick}"}

    def add_column(self, pick: int) -> None:
        """accounts gains a column ``note``; the next change fills it."""
        if not self.up.noted:
            self.up.noted = True
            self.update_account(pick)

    def rename_column(self, pick: int) -> None:
        """accounts.name becomes accounts.label (every row, as a real rename does)."""
        if self.up.renamed:
            return
        self.up.renamed = True
        for row in self.up.accounts.values():
            row["label"] = row.pop("name")
        self.update_account(pick)

    def widen(self, pick: int) -> None:
        """accounts.amount becomes a floating-point column, and one row holds a fraction."""
        self.up.widened = True
        self.update_account(pick, amount=pick + 0.5)

    # ------------------------------------------------------------------ the promises

    def run(self, refresh: bool = False) -> Expected:
        """What ``stackyard run`` (``refresh``: ``reload`` / ``--full-refresh``) must do."""
        if not self.kind.reachable:
            return Expected(1, 0, 0)
        w_widened = self.w_widened
        if refresh:
            w_widened = self._fractions_fit()
        semantics = self.kind.semantics
        accounts = self._accounts_to_load(refresh)
        if self.kind.widening == "fail" and self.up.widened and not w_widened and accounts:
            return Expected(1, 0, 0)  # the whole source fails; nothing changes
        if refresh:
            self.w = {"accounts": {}, "events": {}, "plans": {}}
            self.loaded_versions = set()
        self.w_widened = w_widened
        rejected = 0
        if self.kind.widening == "reject" and not w_widened:
            kept = [r for r in accounts if float(r["amount"]).is_integer()]
            rejected, accounts = len(accounts) - len(kept), kept
        loaded = len(accounts)
        for row in accounts:
            self.w["accounts"][row["id"]] = dict(row)
            self.loaded_versions.add((row["id"], row["tick"]))
        self.accounts_changed = False
        if semantics["events"] == "append":
            new = [e for e in self.up.events if e["id"] not in self.w["events"]]
        else:
            new = list(self.up.events)
            self.w["events"] = {}
        self.w["events"].update({e["id"]: dict(e) for e in new})
        loaded += len(new)
        self.w["plans"] = {k: dict(v) for k, v in self.up.plans.items()}
        loaded += len(self.up.plans)
        return Expected(0, loaded, rejected)

    def _accounts_to_load(self, refresh: bool) -> list[dict[str, Any]]:
        rows = list(self.up.accounts.values())
        if self.kind.semantics["events"] == "replace":  # files: a changed file is read whole
            return rows if refresh or self.accounts_changed else []
        if refresh:
            return rows
        return [r for r in rows if (r["id"], r["tick"]) not in self.loaded_versions]

    def _fractions_fit(self) -> bool:
        """Whether a fresh load makes the amount column a floating-point one."""
        if self.kind.widening == "reject":  # CSV: inferred from the values
            return any(not float(r["amount"]).is_integer() for r in self.up.accounts.values())
        return self.up.widened

    def tables(self) -> dict[str, list[tuple[Any, ...]]]:
        return {t: canonical(rows.values()) for t, rows in self.w.items()}


def canonical(rows: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows as sorted tuples of (column, value), NULLs left out (a column a row never had is
    NULL in the warehouse), numbers compared by value (3 and 3.0 are one number; 10.5 and 10
    are not)."""

    def number(value: Any) -> Any:
        if isinstance(value, Decimal | float) and not isinstance(value, bool):
            return int(value) if float(value).is_integer() else float(value)
        return value

    return sorted(
        tuple(sorted((c, number(v)) for c, v in row.items() if v is not None)) for row in rows
    )
