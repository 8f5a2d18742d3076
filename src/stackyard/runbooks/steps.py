"""Runbooks as typed steps: what a runbook will do, said before it does it.

A runbook first builds a :class:`RunbookPlan` — a frozen list of :class:`RunbookStep`, each
with the change it makes and how that change is undone — then performs the steps in order.
``--dry-run`` prints the plan (:func:`explain`) and changes nothing, the way ``stackyard
plan`` shows an access plan before ``apply`` (:mod:`stackyard.infra.plan`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RunbookStep:
    """One step of a runbook.

    Attributes:
        action: what kind of change, e.g. ``edit stackyard.yml``, ``load``, ``drop schema``.
        detail: the change itself, in the user's words.
        undo: how the change is rolled back (known before it runs); empty when nothing is
            changed (a check).
        destructive: the step deletes something that cannot be restored from the project.
    """

    action: str
    detail: str
    undo: str = ""
    destructive: bool = False


@dataclass(frozen=True)
class RunbookPlan:
    """The steps of one runbook invocation, in the order they run."""

    runbook: str
    subject: str
    steps: tuple[RunbookStep, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (``--dry-run --json``)."""
        return {
            "runbook": self.runbook,
            "subject": self.subject,
            "steps": [asdict(s) for s in self.steps],
            "notes": list(self.notes),
        }


def explain(plan: RunbookPlan) -> list[str]:
    """The plan as lines of text, one per step, each with its rollback.

    >>> plan = RunbookPlan("source add", "crm", (RunbookStep("load", "first load", "drop"),))
    >>> explain(plan)
    ['source add crm: 1 step (dry run: nothing changed)', '  1. load: first load', '     undo: drop']
    """
    count = len(plan.steps)
    lines = [
        f"{plan.runbook} {plan.subject}: {count} step{'s' if count != 1 else ''} "
        "(dry run: nothing changed)"
    ]
    for number, step in enumerate(plan.steps, 1):
        mark = " (destructive)" if step.destructive else ""
        lines.append(f"  {number}. {step.action}{mark}: {step.detail}")
        if step.undo:
            lines.append(f"     undo: {step.undo}")
    lines.extend(f"  note: {note}" for note in plan.notes)
    return lines
