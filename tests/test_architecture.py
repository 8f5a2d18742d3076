"""The layering rule of docs/architecture.md, checked on every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import stackyard

PACKAGE = Path(stackyard.__file__).parent

# Higher number = higher layer. A module may import its own layer or lower ones.
LAYERS = {
    "errors": 0,
    "console": 0,
    "results": 0,
    "config": 0,
    "warehouse": 1,
    "ingest": 2,
    "transform": 2,
    "infra": 2,
    "monitors": 2,
    "examples": 2,
    "lineage": 2,
    "runner": 3,
    "project": 3,
    "runbooks": 3,
    "context": 4,
    "cli": 5,
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_modules_import_only_downward() -> None:
    violations = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts)
        own = layer_of(module)
        if own not in LAYERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if not name.startswith("stackyard."):
                    continue
                other = layer_of(name)
                if other in LAYERS and LAYERS[other] > LAYERS[own]:
                    violations.append(f"{module} imports {name}")
    assert not violations, "layering violations:\n" + "\n".join(violations)


def test_every_layer_is_known() -> None:
    top = {
        p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if not p.name.startswith("_")
    }
    assert top <= set(LAYERS), f"add {sorted(top - set(LAYERS))} to LAYERS and the docs"
