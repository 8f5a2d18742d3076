"""The schema-evolution runbook as commands: ``stackyard evolve rename`` and ``evolve retype``.

A rename of a model's column goes out in three phases, each a list of typed steps that
``--dry-run`` explains, each applied (and rolled back) on its own:

* **expand** — the model outputs the column under both names (its SQL wrapped, never edited);
* **migrate** — every model that reads the old name (found by column lineage, not grep) reads
  the new one under its own output names; rebuilt and tested with everything downstream;
* **contract** — not before the deprecation date: the model outputs only the new name, the
  change is approved in stackyard.yml, everything downstream rebuilt and tested.

A type change first counts the values that would not cast and refuses above a threshold;
expand adds the typed column beside the old one, and contract replaces it in place. Every
file a phase writes is kept in ``.stackyard/evolve/`` first, so a rollback puts back exactly
what was there and rebuilds (:mod:`stackyard.runbooks.evolve_journal`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from stackyard.errors import UsageError
from stackyard.lineage.graph import ColumnGraph, ColumnRef
from stackyard.runbooks.evolve_journal import EvolveJournal, refuse_moved_model
from stackyard.runbooks.evolve_properties import renamed_properties
from stackyard.runbooks.evolve_steps import (
    PHASES,
    EvolveResult,
    Phase,
    Step,
    cast_failures,
    check_name,
    check_new_name,
    check_phases,
    check_type,
    migrated,
    model_column,
    narrows,
    original_sql,
    wrap,
)
from stackyard.runbooks.evolve_verify import build_failed, cut_short, verify


class EvolveRunbook:
    """Plans and applies the phases of a column rename or type change.

    Args:
        project_dir: the project folder (journals go under ``.stackyard/evolve``).
        transform_dir: the dbt project.
        graph: builds the project's current column lineage (fresh on each call).
        build: runs ``dbt build`` on a selection; returns the failed nodes, each named
            with dbt's error message when there is one.
        query: runs a query on the target's warehouse and returns its rows.
        approve: records an approved breaking change in stackyard.yml.
        quote: quotes an identifier for the warehouse.
        dialect: the sqlglot dialect of the models' SQL (to tell which columns a reader's
            references come from).
        exact_case: the warehouse tells ``Name`` from ``name`` (a new name is lower case).
        target: the target it runs on (a change under way belongs to the one it began on).
    """

    def __init__(
        self,
        *,
        project_dir: Path,
        transform_dir: Path,
        graph: Callable[[], ColumnGraph],
        build: Callable[[list[str]], list[str]],
        query: Callable[[str], list[tuple[Any, ...]]],
        approve: Callable[[str, str, str, str], None],
        quote: Callable[..., str],
        dialect: str | None = None,
        exact_case: bool = False,
        target: str = "",
    ) -> None:
        self.project_dir = project_dir
        self.transform_dir = transform_dir
        self.graph = graph
        self.build = build
        self.query = query
        self.approve = approve
        self.quote = quote
        self.dialect, self.exact_case, self.target = dialect, exact_case, target

    # ------------------------------------------------------------------ planning

    def plan_rename(self, spec: str, new: str, contract_after: date | None = None) -> EvolveResult:
        """The phases of renaming ``MODEL.OLD`` to ``new``, with their status now."""
        graph = self.graph()
        node, old = model_column(graph, spec)
        check_name(new, self.exact_case)
        journal = EvolveJournal.load(self.project_dir, node, old)
        journal.check_change("rename", f"{node}.{old}", new, target=self.target)
        info = graph.nodes[node]
        path = self.transform_dir / info.path
        original = original_sql(path.read_text(encoding="utf-8"))
        columns = list(info.columns)
        check_new_name(graph, node, old, new, in_progress="expand" in journal.applied)
        # After expand the model outputs both names: the list for contract drops the copy.
        base_columns = [c for c in columns if c.lower() != new.lower()]
        q = self.quote
        expand_text = wrap(original, f"*, {q(old)} AS {q(new)}", f"rename {old} -> {new}")
        contract_cols = ", ".join(
            f"{q(old)} AS {q(new)}" if c.lower() == old.lower() else q(c) for c in base_columns
        )
        contract_text = wrap(original, contract_cols, f"rename {old} -> {new} (contracted)")
        readers = sorted({m for m, _ in graph.readers([ColumnRef(node, old)]) if m != node})
        migrate_steps = [
            Step(
                "write_model",
                f"{r} reads {node}.{new} instead of {old}, keeping its own column names",
                path=graph.nodes[r].path,
                text=migrated(graph, r, node, old, new, q, self.dialect),
            )
            for r in readers
        ]
        migrate_steps.append(
            Step("verify", f"lineage shows no model reading {node}.{old}", select=(node,))
        )
        # Downstream too: Postgres drops the views over a rebuilt table, failing their tests.
        below = tuple(f"{r}+" for r in readers)
        what = "rebuild and test the migrated models and everything downstream"
        migrate_steps.append(Step("build", what, select=below))
        deadline = contract_after or journal.contract_after or date.today()
        phases = [
            Phase(
                "expand",
                (
                    Step("write_model", f"{node} outputs {old} and {new}", info.path, expand_text),
                    Step("build", f"rebuild and test {node}", select=(node,)),
                    Step("verify", f"{node} has both {old} and {new}", select=(node,)),
                ),
                f"put {info.path} back as it was and rebuild {node}",
            ),
            Phase(
                "migrate",
                tuple(migrate_steps),
                "put every migrated model back as it was and rebuild them",
            ),
            Phase(
                "contract",
                (
                    Step(
                        "write_model",
                        f"{node} outputs only {new} (in {old}'s place)",
                        info.path,
                        contract_text,
                    ),
                    *(
                        Step("write_model", f"{p}: {old}'s tests move to {new}", p, t)
                        for p, t in renamed_properties(self.transform_dir, node, old, new)
                    ),
                    Step(
                        "build",
                        f"rebuild and test {node} and everything downstream",
                        select=(f"{node}+",),
                    ),
                    Step("verify", f"nothing reads {node}.{old}; no broken reference"),
                    Step("approve", "record the rename as approved in stackyard.yml"),
                ),
                f"put {info.path} back as it was after expand and rebuild downstream",
            ),
        ]
        return EvolveResult(
            "rename",
            node,
            old,
            new,
            tuple(journal.status(phases, deadline)),
            messages=(f"{len(readers)} model(s) read {node}.{old}: {', '.join(readers) or '-'}",),
        )

    def plan_retype(
        self, spec: str, data_type: str, max_failure_rate: float = 0.001
    ) -> EvolveResult:
        """The phases of changing ``MODEL.COLUMN`` to ``data_type``, after counting the
        values that would not cast (refused above ``max_failure_rate``)."""
        graph = self.graph()
        node, column = model_column(graph, spec)
        info = graph.nodes[node]
        if info.relation is None:
            raise UsageError(f"{node} is ephemeral: there is no table to check the casts on")
        check_type(data_type)
        q = self.quote
        relation = q(info.relation[1], info.relation[2])
        failures = cast_failures(self.query, relation, q(column), data_type)
        journal = EvolveJournal.load(self.project_dir, node, column)
        journal.check_change("retype", f"{node}.{column}", data_type, target=self.target)
        path = self.transform_dir / info.path
        original = original_sql(path.read_text(encoding="utf-8"))
        shadow = f"{column}__{re.sub(r'[^a-z0-9]+', '_', data_type.lower()).strip('_')}"
        expand_text = wrap(
            original,
            f"*, TRY_CAST({q(column)} AS {data_type}) AS {q(shadow)}",
            f"retype {column} -> {data_type}",
        )
        contract_cols = ", ".join(
            f"CAST({q(c)} AS {data_type}) AS {q(c)}" if c.lower() == column.lower() else q(c)
            for c in info.columns
            if c.lower() != shadow.lower()
        )
        contract_text = wrap(original, contract_cols, f"retype {column} -> {data_type} (done)")
        rate = failures["rate"]
        refused = rate > max_failure_rate
        check = Step(
            "check_casts",
            f"{failures['failed']} of {failures['rows']} values of {column} do not cast to "
            f"{data_type} unchanged ({rate:.4%}; limit {max_failure_rate:.4%})",
        )
        phases = [
            Phase(
                "expand",
                (
                    check,
                    Step(
                        "write_model", f"{node} adds {shadow} ({data_type})", info.path, expand_text
                    ),
                    Step("build", f"rebuild and test {node}", select=(node,)),
                ),
                f"put {info.path} back as it was and rebuild {node}",
            ),
            Phase(
                "migrate",
                (Step("verify", f"consumers of {node}.{column} rebuilt in contract"),),
                "nothing to undo",
            ),
            Phase(
                "contract",
                (
                    Step(
                        "write_model",
                        f"{node}.{column} becomes {data_type}",
                        info.path,
                        contract_text,
                    ),
                    Step(
                        "build",
                        f"rebuild and test {node} and everything downstream",
                        select=(f"{node}+",),
                    ),
                    # Only a narrowing is a breaking change to approve: an approval of a
                    # widening, recorded as one, would let a later narrowing pass --check.
                    *(
                        (Step("approve", "record the type narrowing as approved in stackyard.yml"),)
                        if narrows(self.query, info.relation, column, data_type)
                        else ()
                    ),
                ),
                f"put {info.path} back as it was after expand and rebuild downstream",
            ),
        ]
        status = journal.status(phases, date.today())
        if refused:
            status = [
                Phase(p.name, p.steps, p.rollback, "blocked", "too many values do not cast")
                if p.status == "pending"
                else p
                for p in status
            ]
        return EvolveResult(
            "retype",
            node,
            column,
            data_type,
            tuple(status),
            cast_failures=failures,
            failed=refused,
            messages=(
                (
                    f"refused: {failures['failed']} values do not cast (examples: "
                    f"{failures['examples']}); fix them upstream or raise --max-failure-rate",
                )
                if refused
                else ()
            ),
        )

    # ------------------------------------------------------------------ applying

    def apply(
        self,
        plan: EvolveResult,
        phases: tuple[str, ...] = PHASES,
        contract_after: date | None = None,
        *,
        asked: bool = False,
    ) -> EvolveResult:
        """Apply the pending phases asked for, in order (one that fails is rolled back); the
        plan is returned with what was applied, rolled back, and why it stopped.

        Args:
            plan: from :meth:`plan_rename` or :meth:`plan_retype`.
            phases: which phases to apply (the default: every pending one).
            contract_after: the deprecation date to record (contract waits for it).
            asked: ``phases`` were named (``--phase``): those applied before are said to be.

        Raises:
            UsageError: a phase asked for comes before one it needs (nothing is run).
        """
        journal = EvolveJournal.load(self.project_dir, plan.node, plan.column)
        journal.check_order(plan.phases, phases)
        if plan.failed:
            return plan
        if contract_after is not None:
            journal.set_contract_after(contract_after)
        applied: list[str] = []
        rolled: list[str] = []
        messages = list(plan.messages)
        failed = False
        for phase in plan.phases:
            if phase.name in phases and phase.status == "applied" and asked:
                # Asked for by name and done before: said, not run again (it read as nothing).
                messages.append(journal.already_applied(phase.name))
            if phase.name not in phases or phase.status == "applied":
                continue
            if phase.status == "blocked":
                messages.append(f"{phase.name} not applied: {phase.why}")
                failed = True
                break
            if wait := journal.waiting(phase.name):  # not due yet: "all due" stops before it
                messages.append(wait)
                break
            journal.record(plan.action, plan.node, plan.column, plan.to, phase, self.target)
            try:
                problem = self._run_phase(plan, phase, journal)
            except BaseException as exc:
                # Cut short (Ctrl-C, an error): its files go back; no build (the next follows).
                journal.undo(phase.name, None)
                raise cut_short(plan, phase.name, exc) from None
            if problem:
                messages.append(f"{phase.name} failed: {problem}; rolled back")
                journal.undo(phase.name, self.build)
                rolled.append(phase.name)
                failed = True
                break
            applied.append(phase.name)
            messages.append(f"{phase.name} applied")
        return replace(
            self._replan(plan),
            applied=tuple(applied),
            rolled_back=tuple(rolled),
            messages=tuple(messages),
            failed=failed,
            cast_failures=plan.cast_failures,
        )

    def change(
        self,
        action: str,
        spec: str,
        to: str,
        *,
        phases: Sequence[str] = (),
        rollback: str | None = None,
        dry_run: bool = False,
        contract_after: date | None = None,
        max_failure_rate: float = 0.001,
    ) -> EvolveResult:
        """``stackyard evolve rename|retype``: roll back a phase, explain the phases, or apply
        them — each with ``dry_run`` explaining and changing nothing.

        Args:
            action: ``rename`` or ``retype``.
            spec: ``MODEL.COLUMN``.
            to: the new name (rename) or type (retype).
            phases: the phases to apply (default: every one due).
            rollback: the applied phase to undo instead.
            dry_run: explain the steps (of the phases, or of the rollback) only.
            contract_after: a rename's deprecation date.
            max_failure_rate: a type change is refused when more values do not cast.

        Raises:
            UsageError: an unknown phase, or one asked for before one it needs; nothing is
                run.
        """
        wanted = tuple(phases or PHASES)
        check_phases(wanted, rollback)
        refuse_moved_model(self.project_dir, spec, self._is_model, self.target)
        if rollback:
            return self.rollback(action, spec, to, rollback, dry_run=dry_run)
        if action == "rename" and (done := self._contracted(spec, to)):
            return replace(done, dry_run=dry_run)  # run again, or asked after: all applied
        if action == "rename":
            plan = self.plan_rename(spec, to, contract_after)
        else:
            plan = self.plan_retype(spec, to, max_failure_rate)
        if dry_run:
            return replace(plan, dry_run=True)
        return self.apply(plan, wanted, contract_after, asked=bool(phases))

    def rollback(
        self, action: str, spec: str, to: str, phase: str, *, dry_run: bool = False
    ) -> EvolveResult:
        """Undo one applied phase: put its files back and rebuild what they feed.

        Works from the journal the phases kept, not from the warehouse: after contract the
        old column no longer exists anywhere else.

        Args:
            action: ``rename`` or ``retype``.
            spec: ``MODEL.COLUMN`` as given when the phases were applied (the old name).
            to: the new name (rename) or type (retype).
            phase: the phase to undo; no later phase may still be applied.
            dry_run: only explain the rollback's steps (no file written, nothing built).

        Raises:
            UsageError: the model is unknown, the phase was never applied, a later phase is
                still applied, or the journal is of another change.
        """
        node_text, _, column = spec.rpartition(".")
        if not node_text or not column:
            raise UsageError(f"'{spec}' names no column", hint="give MODEL.COLUMN")
        node, _ = self.graph().resolve(node_text)
        journal = EvolveJournal.load(self.project_dir, node, column)
        journal.check_rollback(action, f"{node}.{column}", to, phase, self.target)
        column = str(journal.data.get("column") or column)
        if dry_run:
            steps = journal.rollback_steps(phase)
            undo = Phase(phase, steps, f"apply again with --phase {phase}", "applied")
            shown = tuple(undo if p.name == phase else p for p in journal.phases())
            note = f"{phase} would be rolled back: nothing was changed"
            return EvolveResult(action, node, column, to, shown, messages=(note,), dry_run=True)
        kept: list[str] = []
        failures = journal.undo(phase, self.build, kept)
        note = f"{phase} rolled back" + (f"; failing after it: {failures}" if failures else "")
        note += "".join(f"; changed since {phase}, kept as {k}" for k in kept)
        return EvolveResult(
            action,
            node,
            column,
            to,
            journal.phases(),
            (),
            (phase,),
            (note,),
            bool(failures),
        )

    def _is_model(self, name: str) -> bool:
        try:
            return self.graph().resolve(name) is not None
        except UsageError:
            return False

    def _contracted(self, spec: str, to: str) -> EvolveResult | None:
        """A rename of ``spec`` to ``to`` whose every phase is applied (the old name is gone
        from the model, so planning it again read "no column")."""
        node_text, _, column = spec.rpartition(".")
        if not node_text or not column:
            return None
        node, _ = self.graph().resolve(node_text)
        journal = EvolveJournal.load(self.project_dir, node, column)
        if not journal.completed_rename(to):
            return None
        said = f"every phase is applied: {node}.{column} is {journal.data.get('to')}"
        return EvolveResult("rename", node, column, to, journal.phases(), messages=(said,))

    def _run_phase(self, plan: EvolveResult, phase: Phase, journal: EvolveJournal) -> str:
        for step in phase.steps:
            if step.kind == "write_model":
                path = self.transform_dir / step.path
                rel = str(path.relative_to(self.project_dir))
                journal.keep(phase.name, rel, path.read_text(encoding="utf-8"))
                path.write_text(step.text, encoding="utf-8")
                journal.wrote(phase.name, rel, step.text)
            elif step.kind == "build":
                if step.select:
                    failures = self.build(list(step.select))
                    if failures:
                        return build_failed(plan, phase.name, self.graph(), failures)
            elif step.kind == "approve":
                change = "rename" if plan.action == "rename" else "type_narrowing"
                project_file = self.project_dir / "stackyard.yml"
                journal.keep(phase.name, "stackyard.yml", project_file.read_text(encoding="utf-8"))
                self.approve(plan.node, plan.column, change, f"stackyard evolve {plan.action}")
            elif step.kind == "verify":
                problem = verify(plan, phase.name, self.graph(), self.query)
                if problem:
                    return problem
        return ""

    def _replan(self, plan: EvolveResult) -> EvolveResult:
        journal = EvolveJournal.load(self.project_dir, plan.node, plan.column)
        deadline = journal.contract_after or date.today()
        return EvolveResult(
            plan.action,
            plan.node,
            plan.column,
            plan.to,
            tuple(journal.status(list(plan.phases), deadline)),
        )

    # ------------------------------------------------------------------ checks
