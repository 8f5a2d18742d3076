"""The layering rule of docs/architecture.md, checked on every module's imports."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import stackyard

PACKAGE = Path(stackyard.__file__).parent

# Higher number = higher layer. A module may import its own layer or lower ones.
LAYERS = {
    "errors": 0,
    "console": 0,
    "results": 0,
    "files": 0,
    "generated": 0,
    "config": 0,
    "warehouse": 1,
    "metadata": 2,
    "ingest": 3,
    "transform": 3,
    "infra": 3,
    "monitors": 3,
    "session": 3,
    "examples": 3,
    "lineage": 3,
    "runner": 4,
    "project": 4,
    "runbooks": 4,
    "context": 5,
    "integrations": 6,
    "cli": 7,
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


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _top_level_imports(path: Path, known: set[str]) -> set[str]:
    """Modules of the package a module imports when it is imported (not lazily, not for
    type checking only)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found.update(n for n in names if n in known)
    return found


def test_no_import_circle() -> None:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(paths)
    graph = {m: _top_level_imports(p, known) - {m} for m, p in paths.items()}
    circles = []
    state: dict[str, int] = {}

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for other in sorted(graph[module]):
            if state.get(other) == 1:
                circles.append(" → ".join([*stack[stack.index(other) :], other]))
            elif other not in state:
                visit(other, [*stack, other])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    # A package's __init__ importing its own submodules is not a circle.
    circles = [c for c in circles if not _package_init_only(c)]
    assert not circles, "import circles:\n" + "\n".join(circles)


def _package_init_only(circle: str) -> bool:
    modules = circle.split(" → ")
    return all(
        a == b or b.startswith(a + ".") or a.startswith(b + ".")
        for a, b in itertools.pairwise(modules)
    )


# Modules let past the 500-line cap, by path under src/stackyard: none (docs/architecture.md);
# a long module is split along its jobs instead.
LONG_MODULES_ALLOWED: set[str] = set()


def test_no_module_over_500_lines() -> None:
    long = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > 500 and rel not in LONG_MODULES_ALLOWED:
            long.append(f"{rel}: {lines} lines")
    assert not long, "split these modules along their jobs:\n" + "\n".join(long)


# Who may close a warehouse connection: the session that owns it, and the engine modules that
# implement close() (a lost connection is dropped where the driver reports it).
CLOSE_OWNERS = {"session.py"}


def test_only_the_session_closes_warehouse_connections() -> None:
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in CLOSE_OWNERS or rel.startswith("warehouse/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "close"
                and "warehouse" in ast.unparse(node.func.value).lower()
            ):
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "only a Session closes its warehouse (use session.release()):\n" + "\n".join(
        found
    )


CONTEXT_SHAPE = {
    "config",
    "config_file",
    "project_dir",
    "transform_dir",
    "warehouse",
    "target_name",
}


def test_nothing_below_the_context_receives_it() -> None:
    """Lower layers get a Session, Sessions or Project; none names the Context or copies its
    shape in a Protocol."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.split("/")[0] in ("cli", "context", "__init__.py", "integrations"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(b).endswith("Protocol") for b in node.bases
            ):
                members = {
                    getattr(m, "name", None) or ast.unparse(getattr(m, "target", m))
                    for m in node.body
                }
                if members & CONTEXT_SHAPE:
                    found.append(f"{rel}: Protocol {node.name} copies the Context's shape")
            if isinstance(node, ast.ImportFrom) and node.module == "stackyard.context":
                found.append(f"{rel}: imports stackyard.context")
            if (
                isinstance(node, ast.Attribute)
                and node.attr in CONTEXT_SHAPE
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "context"
            ):
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "\n".join(found)


def test_the_cli_reaches_the_context_typed() -> None:
    """mypy follows calls from the CLI into the Context: _context returns a Context, not Any."""
    import inspect

    from stackyard.cli import common

    signature = inspect.signature(common._context)
    assert signature.return_annotation == "Context"
    assert "Any" not in str(inspect.signature(common._with_context))


ENGINE_NAMES = {"duckdb", "postgres", "snowflake", "bigquery"}


def test_no_dispatch_on_engine_names_outside_the_registries() -> None:
    """Code asks a warehouse's capability flags or the engine registry, never its name."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(("warehouse/", "examples/")) or rel == "infra/engines.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                names = {
                    o.value
                    for o in operands
                    if isinstance(o, ast.Constant) and o.value in ENGINE_NAMES
                }
                if names:
                    found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "dispatch on engine names:\n" + "\n".join(found)
