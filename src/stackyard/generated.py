"""Files stackyard writes into a project for other tools, which people may edit afterwards.

``stackyard deploy prefect`` (prefect.yaml, prefect_flows.py) and ``stackyard ci github``
(the GitHub Actions workflow) rewrite their files from stackyard.yml on every run. A person
may edit such a file (a work pool's settings, a CI step), and a rewrite that silently
replaced it would lose that work. So each file's first line carries a checksum of the rest
(:func:`stamped`): a file whose text no longer matches it, or that has none (a file someone
else wrote), is never overwritten unless ``force`` is given, and then its old text is kept
beside it as ``<file>.bak`` first. :func:`write_generated` is the one place that decides.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from stackyard.errors import ConfigError, StackyardError
from stackyard.files import write_atomic

BACKUP_SUFFIX = ".bak"

_STAMP = "stackyard:generated"
_STAMP_RE = re.compile(rf"# {_STAMP} sha256=([0-9a-f]{{16}})\b")

# What a command finds in a file it is about to write (``FileChange.state``).
NEW, UNCHANGED, REGENERATED, EDITED, FOREIGN = (
    "new",
    "unchanged",
    "regenerated",
    "edited",
    "not written by stackyard",
)
REFUSED = (EDITED, FOREIGN)


@dataclass(frozen=True)
class Writer:
    """The command that writes a set of generated files, in the words its refusal uses.

    Attributes:
        name: the command's short name in dry runs, e.g. ``deploy``.
        command: what a person types, e.g. ``stackyard deploy prefect``.
        action: what would overwrite the files, e.g. ``deploying``.
        outcome: what the refusal left, e.g. ``nothing was written``.
        advice: where the settings the command writes belong instead of the file.
        error: what the refusal raises (exit 2 either way); each command keeps the one it
            always raised.
    """

    name: str
    command: str
    action: str
    outcome: str
    advice: str
    error: type[StackyardError] = ConfigError


@dataclass(frozen=True)
class FileChange:
    """One generated file of a run: what was on disk, and where its old text was kept."""

    file: str
    state: str
    backup: str | None = None
    diff: str = ""  # a dry run's unified diff, from the file on disk to what would be written


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def stamped(text: str, command: str) -> str:
    """``text`` under a first line carrying the checksum of it, so the next run of
    ``command`` can tell whether anyone changed the file since.

    >>> first, rest = stamped("name: shop\\n", "stackyard deploy prefect").split("\\n", 1)
    >>> first.startswith("# stackyard:generated sha256="), rest
    (True, 'name: shop\\n')
    """
    return (
        f"# {_STAMP} sha256={_digest(text)} (edited by hand, the next "
        f"`{command}` stops unless --force)\n" + text
    )


def file_state(on_disk: str, text: str, older: Iterable[str] = ()) -> str:
    """What a file holds, compared with ``text`` (the stamped text a run would write).

    Args:
        on_disk: the file's text.
        text: what the run would write.
        older: texts an older stackyard, which wrote no checksum, wrote for the same project:
            a file identical to one of them holds nobody's edits.

    Returns:
        ``UNCHANGED`` (it is ``text``), ``REGENERATED`` (stackyard wrote it and nobody changed
        it since), ``EDITED`` (stackyard wrote it, then someone changed it) or ``FOREIGN`` (no
        checksum: someone else wrote it).

    >>> new = stamped("a: 1\\n", "stackyard ci github")
    >>> old = [stamped("a: 0\\n", "x"), stamped("a: 0\\n", "x") + "b: 2\\n"]
    >>> [file_state(t, new) for t in (new, *old)]
    ['unchanged', 'regenerated', 'edited']
    >>> file_state("a: 0\\n", new), file_state("# old\\na: 1\\n", new, older=["# old\\na: 1\\n"])
    ('not written by stackyard', 'regenerated')
    """
    if on_disk == text:
        return UNCHANGED
    first, _, rest = on_disk.partition("\n")
    match = _STAMP_RE.match(first)
    if match is None:
        # a file from a stackyard that wrote no checksum, identical to what this one writes
        # under the checksum line (or to what that one wrote), holds nobody's edits: it is
        # only brought up to date
        unedited = (text.partition("\n")[2], *older)
        return REGENERATED if on_disk in unedited else FOREIGN
    return REGENERATED if _digest(rest) == match.group(1) else EDITED


def write_generated(
    root: Path,
    texts: Mapping[str, str],
    writer: Writer,
    *,
    force: bool = False,
    dry_run: bool = False,
    older: Mapping[str, Iterable[str]] | None = None,
) -> tuple[FileChange, ...]:
    """Write each file of ``texts`` (paths relative to ``root``) unless that would lose an edit.

    All files are checked before any is written, so a refusal leaves every one as it was.

    Args:
        root: the project folder.
        texts: each file's stamped text (:func:`stamped`), by its path under ``root``.
        writer: the command, named in the refusal.
        force: overwrite a file edited by hand (or not written by stackyard), keeping its old
            text as ``<file>.bak`` first.
        dry_run: write nothing; each change carries its diff.
        older: per file, the texts an older stackyard wrote without a checksum
            (:func:`file_state`).

    Returns:
        Each file's change, in the order of ``texts``.

    Raises:
        StackyardError: ``writer.error`` (exit 2): a file to write was edited by hand since
            stackyard wrote it, or was not written by stackyard, and ``force`` was not given;
            nothing was written.
    """
    # a hand-made file need not be UTF-8: it is compared and shown with its bad bytes
    # replaced (so it is never stackyard's), and its backup is a byte-for-byte copy
    on_disk = {
        file: (root / file).read_bytes().decode("utf-8", "replace")
        if (root / file).is_file()
        else None
        for file in texts
    }
    changes = []
    for file, text in texts.items():
        old = on_disk[file]
        state = NEW if old is None else file_state(old, text, (older or {}).get(file, ()))
        backup = file + BACKUP_SUFFIX if force and state in REFUSED else None
        diff = _diff(file, old or "", text, writer) if dry_run and state != UNCHANGED else ""
        changes.append(FileChange(file, state, backup, diff))
    refused = [c for c in changes if c.state in REFUSED]
    if refused and not force and not dry_run:
        raise writer.error(
            "; ".join(_refusal(c, writer) for c in refused)
            + f": {writer.action} would overwrite "
            + ("it" if len(refused) == 1 else "them")
            + f", so {writer.outcome}",
            hint=f"see what would change with `{writer.command} --dry-run`; {writer.advice}; "
            f"`{writer.command} --force` overwrites, keeping the old "
            + " and ".join(f"{c.file} as {c.file}{BACKUP_SUFFIX}" for c in refused),
        )
    if not dry_run:
        import shutil

        for change in changes:
            if change.backup:
                shutil.copyfile(root / change.file, root / change.backup)
        for change in changes:
            if change.state != UNCHANGED:
                (root / change.file).parent.mkdir(parents=True, exist_ok=True)
                write_atomic(root / change.file, texts[change.file])
    return tuple(changes)


def _refusal(change: FileChange, writer: Writer) -> str:
    if change.state == EDITED:
        return f"{change.file} was edited by hand since `{writer.command}` wrote it"
    return (
        f"{change.file} has no checksum of `{writer.command}` (written by hand, or "
        "by a stackyard older than the checksums), so hand edits cannot be ruled out"
    )


def _diff(file: str, old: str, new: str, writer: Writer) -> str:
    import difflib

    # lines without their ends, so a file whose last line has no newline still diffs line by line
    lines = difflib.unified_diff(
        old.splitlines(),
        new.splitlines(),
        fromfile=f"{file} (on disk)",
        tofile=f"{file} ({writer.name})",
        lineterm="",
    )
    return "".join(line + "\n" for line in lines)
