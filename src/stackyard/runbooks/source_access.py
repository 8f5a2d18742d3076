"""The read chain in the "Adding Data Sources" verification: can people read the new schema?

A source lands in its loader's database, but people read it only through the read chain
(``ANALYTICS_SOURCES_READER`` → ``<LOADER>_DB_READER`` → the schema), which exists on the
warehouse only once the access plan is applied. On a target that enforces roles the
verification plans access control for the source's schema: nothing pending means the chain
holds; otherwise it says that ``stackyard apply`` is the next step and what it will grant.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackyard.errors import StackyardError
from stackyard.infra.declaration import SOURCES_READER
from stackyard.infra.engines import engine_class, has_engine
from stackyard.infra.layout import build_declaration
from stackyard.infra.plan import Step, diff
from stackyard.runbooks.source_results import Check
from stackyard.session import Session


@dataclass(frozen=True)
class ReadChain:
    """The read-chain part of the verification.

    Attributes:
        check: the checklist line, or ``None`` where the target enforces no roles.
        note: the next step in words, when access is pending.
    """

    check: Check | None
    note: str | None = None


def _mentions(step: Step, schema: str) -> bool:
    lowered = schema.lower()
    for text in (*step.gains, step.description):
        for word in text.replace(",", " ").split():
            if lowered in [part.strip('"').lower() for part in word.split(".")]:
                return True
    return False


def read_chain(session: Session, schema: str) -> ReadChain:
    """Whether the declared readers of ``schema`` can read it on the session's target now.

    Args:
        session: the target's session.
        schema: the source's schema (as ``dataset_for`` names it).

    Returns:
        On a target without roles, nothing to check. On a production target pending access
        fails the check (people cannot read yet); elsewhere it is a passing check with a
        note. Either way the note names the command and what it will grant.
    """
    warehouse = session.warehouse
    config = session.project.reloaded().config  # the source was just added to the file
    target = config.targets[session.target]
    if not warehouse.SUPPORTS_ROLES or not has_engine(target.type):
        return ReadChain(None)
    try:
        declaration = build_declaration(config)
    except StackyardError as exc:
        return ReadChain(
            Check("read chain", True, "not checked: the access declaration is invalid"),
            f"fix access: in stackyard.yml, then `stackyard plan -t {session.target}`: "
            f"{exc.message}",
        )
    readers = sorted(
        r.name
        for r in declaration.roles
        if any(a.schema == schema for a in declaration.access_of(r.name))
        and r.name in declaration.roles_held(SOURCES_READER) | {SOURCES_READER}
    )
    chain = " → ".join([SOURCES_READER, *[r for r in readers if r != SOURCES_READER]])
    command = f"`stackyard apply -t {session.target}`"
    if not warehouse.REACHABLE_HERE:
        note = f"run `stackyard plan -t {session.target}` and apply it: people read {schema} "
        note += f"through {chain} only once it is applied"
        return ReadChain(Check("read chain", True, "not checked: target not reachable"), note)
    try:
        engine = engine_class(target.type, session.target).for_target(declaration, target)
        plan = diff(
            engine,
            engine.read_state(warehouse),
            project=config.name,
            target=session.target,
            declaration_hash=declaration.digest(),
        )
    except StackyardError as exc:  # the source is loaded; say why access was not checked
        return ReadChain(
            Check("read chain", True, "not checked: the access plan could not be made"),
            f"run `stackyard plan -t {session.target}` to see who can read {schema}: {exc.message}",
        )
    pending = [s for s in plan.steps if not s.destructive and _mentions(s, schema)]
    if not pending:
        return ReadChain(Check("read chain", True, f"{chain} reads {schema}"))
    grants = "; ".join(s.description for s in pending[:5])
    more = f" and {len(pending) - 5} more" if len(pending) > 5 else ""
    production = session.target in declaration.production_targets
    note = f"people cannot read {schema} yet: {command} is the next step; it will {grants}{more}"
    detail = f"{len(pending)} grants on {schema} not applied yet ({chain})"
    return ReadChain(Check("read chain", not production, detail), note)
