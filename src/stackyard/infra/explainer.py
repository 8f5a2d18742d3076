"""Plans in words: the statements, and who gains and who loses which access."""

from __future__ import annotations

from dataclasses import dataclass

from stackyard.infra.plan import Plan


@dataclass(frozen=True)
class AccessChange:
    """What one role or user gains and loses in a plan."""

    grantee: str
    gains: tuple[str, ...]
    loses: tuple[str, ...]


def access_changes(plan: Plan) -> list[AccessChange]:
    """Who gains and who loses what, one entry per grantee, sorted by name.

    >>> from stackyard.infra.plan import Step
    >>> p = Plan("p", "t", "postgres", (Step("grant", "GRANT …", "…", grantee="r",
    ...     gains=("USAGE on schema raw",)),))
    >>> access_changes(p)[0].gains
    ('USAGE on schema raw',)
    """
    gains: dict[str, list[str]] = {}
    loses: dict[str, list[str]] = {}
    for step in plan.steps:
        if step.gains:
            gains.setdefault(step.grantee, []).extend(step.gains)
        if step.loses:
            loses.setdefault(step.grantee, []).extend(step.loses)
    return [
        AccessChange(name, tuple(gains.get(name, ())), tuple(loses.get(name, ())))
        for name in sorted({*gains, *loses})
    ]


def explain(plan: Plan, *, limit: int = 8, applied: bool = False) -> str:
    """The plan as text: statements (destructive ones marked ``!``), then the access summary.

    Args:
        plan: the plan.
        limit: how many items of one grantee's gains or losses to list before summarising.
        applied: the plan was applied (its destructive steps were allowed): no hint to
            allow them.

    Returns:
        Plain text for a terminal or a CI log.
    """
    lines = [f"access plan for target '{plan.target}' ({plan.engine}, project {plan.project})"]
    if not plan.live_known:
        lines.append("  ! live state unknown: planned against an empty warehouse")
    if not plan.steps:
        lines.append("no changes: the warehouse matches the declaration")
    else:
        destructive = len(plan.destructive_steps)
        lines.append(
            f"{len(plan.steps)} statements"
            + (f", {destructive} destructive (marked !)" if destructive else "")
            + ":"
        )
        for number, step in enumerate(plan.steps, 1):
            mark = "!" if step.destructive else " "
            lines.append(f" {mark}{number:>4}  {step.statement};")
        changes = access_changes(plan)
        if changes:
            lines += ["", "who gains and who loses access:"]
        for change in changes:
            for verb, items in (("gains", change.gains), ("loses", change.loses)):
                if not items:
                    continue
                shown = ", ".join(items[:limit])
                more = f" and {len(items) - limit} more" if len(items) > limit else ""
                lines.append(f"  {change.grantee} {verb}: {shown}{more}")
    for note in plan.notes:
        lines.append(f"note: {note}")
    if plan.unmanaged:
        lines.append(
            f"kept: {len(plan.unmanaged)} grants on declared objects to roles this project does "
            "not declare (`stackyard access review` lists them)"
        )
    if plan.destructive_steps and not applied:
        lines.append("destructive steps need: stackyard apply --allow-destructive")
    return "\n".join(lines)
