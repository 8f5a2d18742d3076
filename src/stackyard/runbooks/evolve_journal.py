"""What ``stackyard evolve`` keeps between its phases (see :mod:`stackyard.runbooks.evolve`).

One JSON file per column being changed, ``.stackyard/evolve/NODE__COLUMN.json``: what is
being done (``rename`` to a new name, or ``retype``), the deprecation date, and for each
applied phase the files it replaced (their text before the phase), so a rollback puts back
exactly what was there. A rollback reads only this journal: after contract the old column
is gone from the project and the warehouse, so it could not be looked up there again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from stackyard.config.private import tighten, write_private
from stackyard.errors import UsageError
from stackyard.runbooks.evolve_steps import PHASES, Phase, Step, as_date


@dataclass
class EvolveJournal:
    """The saved state of one column's evolution.

    Attributes:
        path: the journal file.
        data: its content: ``action``, ``node``, ``column``, ``to``, ``contract_after`` and
            ``phases`` (``{phase: {"files": {path: text before}, "on": day, "rollback": …}}``).
    """

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, project_dir: Path, node: str, column: str) -> EvolveJournal:
        """The journal of ``node.column`` (empty when no phase ran); names match in any case."""
        folder = project_dir / ".stackyard" / "evolve"
        wanted = f"{node}__{column}.json"
        path = folder / wanted
        if folder.is_dir() and not path.is_file():
            path = next((p for p in folder.iterdir() if p.name.lower() == wanted.lower()), path)
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        return cls(path, dict(data))

    def save(self) -> None:
        """Write the journal (the folder is made when missing)."""
        write_private(self.path, json.dumps(self.data, indent=2))
        # It keeps copies of models and stackyard.yml: owner-only, as all of .stackyard is.
        tighten(self.path.parent)

    @property
    def applied(self) -> dict[str, Any]:
        """The applied phases and what each replaced."""
        return dict(self.data.get("phases") or {})

    def completed_rename(self, to: str) -> bool:
        """Whether this is a rename to ``to`` whose contract is applied."""
        return (
            "contract" in self.applied
            and self.data.get("action") == "rename"
            and str(self.data.get("to", "")).lower() == to.lower()
        )

    @property
    def contract_after(self) -> date | None:
        """The deprecation date given at expand time, if any."""
        return as_date(self.data.get("contract_after"))

    def set_contract_after(self, day: date) -> None:
        """Record the deprecation date: contract refuses to run before it."""
        self.data["contract_after"] = day.isoformat()
        self.save()

    def record(
        self, plan_action: str, node: str, column: str, to: str, phase: Phase, target: str = ""
    ) -> None:
        """Note what is being done, on which target, and that ``phase`` is being applied
        (files added by :meth:`keep` as the phase writes them)."""
        self.data.update(action=plan_action, node=node, column=column, to=to)
        if target and not self.applied:
            self.data["target"] = target
        self.data.setdefault("phases", {})[phase.name] = {
            "files": {},
            "on": str(date.today()),
            "rollback": phase.rollback,
        }
        self.save()

    def wrote(self, phase: str, rel: str, text: str) -> None:
        """Note what ``phase`` wrote to a file, to tell later hand edits from it."""
        entry = self.data["phases"][phase]
        entry.setdefault("written", {})[rel] = _digest(text)
        self.save()

    def edited_since(self, phase: str, rel: str) -> bool:
        """Whether the file changed since ``phase`` wrote it (a hand edit a rollback would
        throw away)."""
        written = ((self.applied.get(phase) or {}).get("written") or {}).get(rel)
        path = self.path.parents[2] / rel
        if written is None or rel == "stackyard.yml" or not path.is_file():
            return False
        return _digest(path.read_text(encoding="utf-8")) != written

    def keep(self, phase: str, rel: str, text: str) -> None:
        """Keep a file's text before ``phase`` first changes it (saved at once, so a phase
        stopped half-way can still be rolled back)."""
        files = self.data["phases"][phase]["files"]
        if rel not in files:
            files[rel] = text
            self.save()

    def check_change(
        self, action: str, spec: str, to: str, phase: str | None = None, target: str = ""
    ) -> None:
        """Refuse ``action`` to ``to`` on a column whose journal records another change.

        A journal with no phase left applied (every one rolled back) records nothing in
        progress: a new change may start.

        Raises:
            UsageError: another change of the column has phases applied, or this one was
                started on another target (``target``: the one asked for).
        """
        recorded, recorded_to = self.data.get("action"), self.data.get("to")
        if not recorded or not self.applied:
            return
        self.check_target(spec, target)
        if recorded != action or (action == "rename" and str(recorded_to).lower() != to.lower()):
            doing = f"rename to {recorded_to}" if recorded == "rename" else f"{recorded}"
            last = phase or [p for p in PHASES if p in self.applied][-1]
            raise UsageError(
                f"{spec} is in the middle of a {doing}, not this {action}",
                hint=f"finish it or roll it back with the command that applied it (stackyard "
                f"evolve {recorded} {spec} {recorded_to} --rollback {last})",
            )

    def check_target(self, spec: str, target: str) -> None:
        """Refuse to go on with a change under way on another target than ``target``: a phase
        of it run there failed in dbt, and a rollback there "undid" a phase that target never
        had while the one that had it kept it.

        Raises:
            UsageError: phases of it are applied, on another target.
        """
        began = self.data.get("target")
        applied = [p for p in PHASES if p in self.applied]
        if target and began and began != target and applied:
            raise UsageError(
                f"{spec}'s {self.data.get('action')} is under way on target '{began}' "
                f"({', '.join(applied)} applied there), not on '{target}'",
                hint=f"run its phases and rollbacks with --target {began}; the model files "
                f"they change reach '{target}' with its next `stackyard run`",
            )

    def check_rollback(
        self, action: str, spec: str, to: str, phase: str, target: str = ""
    ) -> dict[str, str]:
        """The files ``phase`` replaced, after checking it can be undone now.

        Raises:
            UsageError: the journal is of another change, a later phase is still applied,
                or ``phase`` was never applied.
        """
        self.check_change(action, spec, to, phase, target)
        applied = self.applied
        later = [p for p in PHASES[PHASES.index(phase) + 1 :] if p in applied]
        if later:
            raise UsageError(
                f"{later[-1]} is applied after {phase}: roll back {later[-1]} first",
                hint="phases are undone in reverse order: contract, migrate, expand",
            )
        entry = applied.get(phase)
        if entry is None:
            raise UsageError(
                f"{phase} was never applied to {spec}: nothing to roll back",
                hint="`stackyard evolve … --dry-run` shows which phases are applied",
            )
        return dict(entry.get("files") or {})

    def rollback_steps(self, phase: str) -> tuple[Step, ...]:
        """The steps that undo an applied ``phase``: put back each file it replaced, then
        rebuild and test the models those files are and everything downstream."""
        files = (self.applied.get(phase) or {}).get("files") or {}
        steps = [
            Step(
                "restore_file",
                self._restore_says(rel, phase)
                + (
                    f" (it changed since {phase} wrote it: that text is kept as {rel}.bak)"
                    if self.edited_since(phase, rel)
                    else ""
                ),
                rel,
                text,
            )
            for rel, text in sorted(files.items())
        ]
        models = sorted({Path(rel).stem for rel in files if rel.endswith(".sql")})
        if models:
            select = tuple(f"{m}+" for m in models)
            steps.append(Step("build", f"dbt build {' '.join(select)}", select=select))
        return tuple(steps)

    @staticmethod
    def _restore_says(rel: str, phase: str) -> str:
        # stackyard.yml is not put back whole (see restore): the plan says what happens.
        if rel == "stackyard.yml":
            return f"remove from stackyard.yml the approval {phase} added"
        return f"put back {rel} as it was before {phase}"

    def restore(self, project_dir: Path, rel: str, text: str, phase: str = "") -> str | None:
        """Put back a file a phase replaced. stackyard.yml is not put back whole (that threw
        away what was written to it since, another change's approval among it): only the
        approval this change's phase added leaves it, the last one that matches.

        Returns:
            Where a hand edit made since ``phase`` wrote the file was kept (``FILE.bak``; a
            rollback threw it away without a word), or None.
        """
        path = project_dir / rel
        if rel != "stackyard.yml":
            kept = None
            if phase and self.edited_since(phase, rel):
                kept = f"{rel}.bak"
                (project_dir / kept).write_text(path.read_text(encoding="utf-8"), "utf-8")
            path.write_text(text, encoding="utf-8")
            return kept
        from stackyard.config.edit import ProjectFile

        reason = f"stackyard evolve {self.data.get('action')}"
        node, column = str(self.data.get("node")).lower(), str(self.data.get("column")).lower()
        edit = ProjectFile(path)
        if edit.remove_approval(
            lambda e: (
                e.get("reason") == reason
                and str(e.get("node", "")).lower() == node
                and str(e.get("column", "")).lower() == column
            )
        ):
            edit.save()
        return None

    def undo(
        self,
        phase: str,
        build: Callable[[list[str]], list[str]] | None,
        kept: list[str] | None = None,
    ) -> list[str]:
        """Put back the files ``phase`` replaced (``kept`` gets where hand edits made since
        went), rebuild what they feed with ``build`` (None: not rebuilt), forget the phase.

        Returns:
            What ``build`` reported failing.
        """
        failures: list[str] = []
        for step in self.rollback_steps(phase):
            if step.kind == "restore_file":
                copy = self.restore(self.path.parents[2], step.path, step.text, phase)
                if copy and kept is not None:
                    kept.append(copy)
            elif step.kind == "build" and build is not None:
                failures = build(list(step.select))
        self.forget(phase)
        return failures

    def forget(self, phase: str) -> None:
        """Drop a rolled-back phase from the journal."""
        self.data.get("phases", {}).pop(phase, None)
        self.save()

    def phases(self) -> tuple[Phase, ...]:
        """Each phase's status as the journal has it (no steps: for a rollback's report)."""
        applied = self.applied
        return tuple(
            Phase(
                p,
                (),
                str((applied.get(p) or {}).get("rollback") or ""),
                "applied" if p in applied else "pending",
            )
            for p in PHASES
        )

    def status(self, phases: list[Phase], deadline: date) -> list[Phase]:
        """The planned phases with their status: applied, pending, or blocked (contract
        before the deprecation date)."""
        done = set(self.applied)
        out = []
        for i, p in enumerate(phases):
            if p.name in done:
                out.append(Phase(p.name, p.steps, p.rollback, "applied"))
            elif any(q.name not in done for q in phases[:i]):
                out.append(Phase(p.name, p.steps, p.rollback, "pending", "after the phase before"))
            elif p.name == "contract" and date.today() < deadline:
                out.append(
                    Phase(p.name, p.steps, p.rollback, "blocked", f"deprecated until {deadline}")
                )
            else:
                out.append(Phase(p.name, p.steps, p.rollback, "pending"))
        return out

    def already_applied(self, phase: str) -> str:
        """What to say of ``phase`` asked for again after it was applied."""
        on = (self.applied.get(phase) or {}).get("on")
        when = f" on {on}" if on else ""
        return f"{phase} was already applied{when}: nothing to do, not run again"

    def waiting(self, phase: str) -> str | None:
        """Why ``phase`` is not due yet (contract before the deprecation date), or None: the
        plan's status was read before the phases ahead of it ran in the same call."""
        if phase == "contract" and self.contract_after and date.today() < self.contract_after:
            return f"contract not applied yet: deprecated until {self.contract_after}"
        return None

    def check_order(self, phases: tuple[Phase, ...], wanted: tuple[str, ...]) -> None:
        """Refuse a phase asked for while a phase before it is neither applied nor asked for.

        Raises:
            UsageError: naming the phase to run first.
        """
        done = set(self.applied) | {p.name for p in phases if p.status == "applied"}
        for name in PHASES:
            if name not in wanted or name in done:
                continue
            missing = [p for p in PHASES[: PHASES.index(name)] if p not in done | set(wanted)]
            if missing:
                raise UsageError(
                    f"{name} cannot run before {missing[0]}: run --phase {missing[0]} first",
                    hint="phases run in order: expand, migrate, contract "
                    "(`--dry-run` shows which are applied)",
                )


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def refuse_moved_model(
    project_dir: Path, spec: str, is_model: Callable[[str], bool], target: str = ""
) -> None:
    """Refuse a change of ``MODEL.COLUMN`` when a change of it is under way and ``MODEL`` is
    no model any more (renamed or deleted after a phase ran). It read "'stg_dlt__stores' is
    neither a model nor a source table (did you mean 'stg_dlt__orders'?)", naming neither the
    change in progress nor the files it wrote.

    Raises:
        UsageError: so, with the phases applied, the files they wrote, and how to undo them.
    """
    node, _, column = spec.rpartition(".")
    if not node or not column:
        return
    journal = EvolveJournal.load(project_dir, node, column)
    journal.check_target(spec, target)  # first: another target may not know the model yet
    phases = [p for p in PHASES if p in journal.applied]
    if not phases or is_model(node):
        return
    files = sorted({rel for p in phases for rel in journal.applied[p].get("files") or {}})
    doing = journal.data.get("action")
    raise UsageError(
        f"'{node}' is no model any more, but a {doing} of its column {column} is under way "
        f"({', '.join(phases)} applied, writing {', '.join(files)})",
        hint=f"give the model its name {node} back and roll back with `stackyard evolve "
        f"{doing} {spec} {journal.data.get('to')} --rollback {phases[-1]}`, or undo the "
        f"phases by hand: {journal.path} holds each file as it was",
    )
