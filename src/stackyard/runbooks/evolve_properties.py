"""A renamed column's dbt properties: its entry in the model's YAML (description, tests) and
``relationships`` tests of other models that point at it move to the new name when the old
column goes (the rename's contract phase). Without it the contract's build failed on the
model's own tests of a column that no longer exists."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any


def renamed_properties(transform_dir: Path, node: str, old: str, new: str) -> list[tuple[str, str]]:
    """The property files under ``models/`` that name ``node.old``, rewritten for ``new``.

    Args:
        transform_dir: the dbt project.
        node: the model whose column is renamed.
        old: the column's name now.
        new: its new name.

    Returns:
        ``(path relative to the dbt project, new text)`` for every file that changes; the
        rest of each file (comments, order, quoting) is kept as written.
    """
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never re-wrap a user's long description
    changed: list[tuple[str, str]] = []
    for path in sorted((transform_dir / "models").rglob("*.y*ml")):
        text = path.read_text(encoding="utf-8")
        if old.lower() not in text.lower():
            continue
        data = yaml.load(text)
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, list):
            continue
        edits = 0
        for model in models:
            if not isinstance(model, dict):
                continue
            if model.get("name") == node:
                edits += _rename_entry(model, old, new)
            for column in model.get("columns") or []:
                if not isinstance(column, dict):
                    continue
                edits += _repoint_relationships(column, node, old, new)
        if edits:
            out = StringIO()
            yaml.dump(data, out)
            changed.append((str(path.relative_to(transform_dir)), out.getvalue()))
    return changed


def _rename_entry(model: dict[str, Any], old: str, new: str) -> int:
    columns = model.get("columns")
    if not isinstance(columns, list):
        return 0
    entries = [c for c in columns if isinstance(c, dict)]
    olds = [c for c in entries if str(c.get("name", "")).lower() == old.lower()]
    if not olds:
        return 0
    if any(str(c.get("name", "")).lower() == new.lower() for c in entries):
        # The new name has its own entry already: that one stands, the old one goes.
        for entry in olds:
            columns.remove(entry)
        return len(olds)
    olds[0]["name"] = new
    return 1


def _repoint_relationships(column: dict[str, Any], node: str, old: str, new: str) -> int:
    ref = re.compile(rf"""\s*ref\(\s*['"]{re.escape(node)}['"]\s*\)\s*""")
    edits = 0
    for key in ("data_tests", "tests"):
        for test in column.get(key) or []:
            spec = test.get("relationships") if isinstance(test, dict) else None
            if not isinstance(spec, dict):
                continue
            # dbt 1.10+ puts a generic test's arguments under `arguments:`; older files not.
            nested = spec.get("arguments")
            args: dict[str, Any] = nested if isinstance(nested, dict) else spec
            field = args.get("field")
            if (
                isinstance(field, str)
                and field.lower() == old.lower()
                and ref.fullmatch(str(args.get("to", "")))
            ):
                args["field"] = new
                edits += 1
    return edits
