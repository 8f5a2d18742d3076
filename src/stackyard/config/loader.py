"""Reading stackyard.yml into a :class:`ProjectConfig`, with errors that point at the line.

PyYAML's composer keeps the position of every node; we keep the line of each key so that a
pydantic error at ``('sources', 'shop_db', 'tabels')`` becomes ``stackyard.yml:14``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from stackyard.config.bounds import (
    MAX_DEPTH,
    check_expanded_size,
    check_yaml_shape,
    read_text_file,
    yaml_error,
)
from stackyard.config.model import ProjectConfig
from stackyard.config.redact import shown_value
from stackyard.errors import ConfigError, ProjectNotFoundError, did_you_mean

PROJECT_FILE = "stackyard.yml"

Loc = tuple[str | int, ...]


def find_project_file(start: Path) -> Path:
    """The stackyard.yml in ``start`` or the nearest folder above it.

    Raises:
        ProjectNotFoundError: when no folder up to the file-system root has one.
    """
    try:
        start = start.resolve()
        if start.is_file():
            return start
        for folder in (start, *start.parents):
            candidate = folder / PROJECT_FILE
            if candidate.is_file():
                return candidate
    except OSError as exc:  # a name too long, a loop of links, a folder we may not read
        raise ProjectNotFoundError(
            f"cannot look for {PROJECT_FILE} in {str(start)[:200]}: {exc.strerror}",
            hint="pass --project DIR with the project's folder",
        ) from None
    raise ProjectNotFoundError(
        f"no {PROJECT_FILE} in {start} or any folder above it",
        hint="run the command inside a stackyard project, pass --project DIR, or create one "
        "with `stackyard init DIR`",
    )


def read_yaml_with_lines(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse a YAML file, returning the data and the line number of every mapping key.

    Hostile input is refused before it can cost memory or time: files over
    ``MAX_FILE_BYTES``, nesting deeper than ``MAX_DEPTH``, and aliases that would expand to
    more than ``MAX_NODES`` values (the "billion laughs" file); see :mod:`stackyard.config.bounds`.

    Raises:
        ConfigError: on a file that is not UTF-8 or not valid YAML, a key given twice in one
            mapping, a key that is a list or mapping, or one of the bounds above.
    """
    text = read_text_file(path)
    check_yaml_shape(text, path.name)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise yaml_error(exc, path.name) from None
    except RecursionError:  # a guard behind check_yaml_shape's depth limit
        raise ConfigError(
            f"{path.name}: nested too deeply to read",
            hint=f"stackyard.yml needs at most {MAX_DEPTH} levels of nesting",
        ) from None
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {(): 1}
    if node is None:
        return {}, lines
    check_expanded_size(node, path.name)
    constructor = yaml.SafeLoader("")

    def scalar(n: yaml.Node) -> Any:
        try:
            return constructor.construct_object(n, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            if n.tag == "tag:yaml.org,2002:timestamp" and not text[n.start_mark.index :].startswith(
                "!"
            ):
                # YAML read a plain value as a date (no tag written): say so, not "no tags".
                raise ConfigError(
                    f"{path.name}:{n.start_mark.line + 1}: '{n.value}' is not a date: {problem}",
                    hint="write a date as YYYY-MM-DD (e.g. 2026-12-25), or quote it if it is text",
                ) from None
            raise ConfigError(
                f"{path.name}:{n.start_mark.line + 1}: cannot read the value {n.tag}: {problem}",
                hint="write plain text, numbers, lists and mappings (no YAML tags)",
            ) from None

    def build(n: yaml.Node, loc: Loc) -> Any:
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    found = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
                    raise ConfigError(
                        f"{path.name}:{line}: expected a name as the key, found {found}",
                        hint="a key is one word before the colon, e.g. `tables:`",
                    )
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise ConfigError(
                        f"{path.name}:{line}: merge keys (<<) are not supported",
                        hint="write the keys out in full",
                    )
                key = scalar(key_node)
                if key in out:
                    raise ConfigError(
                        f"{path.name}:{line}: key '{key}' appears twice",
                        hint="keep one of them; YAML would silently use the last",
                    )
                lines[(*loc, key)] = line
                out[key] = build(value_node, (*loc, key))
            return out
        if isinstance(n, yaml.SequenceNode):
            items = []
            for i, item in enumerate(n.value):
                lines[(*loc, i)] = item.start_mark.line + 1
                items.append(build(item, (*loc, i)))
            return items
        return scalar(n)

    return build(node, ()), lines


def load_project_config(path: Path) -> ProjectConfig:
    """Read and validate stackyard.yml.

    Raises:
        ConfigError: listing every problem with its line, key and expected value.
    """
    data, lines = read_yaml_with_lines(path)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path.name}: expected a mapping of keys (name, targets, sources, …), "
            f"found {type(data).__name__}",
            hint="see docs/project.md for the file's shape",
        )
    try:
        return ProjectConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            _format_validation_error(exc, path, data, lines),
            hint=f"fix the keys above ({_docs_for(exc, data)})",
        ) from None


def _docs_for(exc: ValidationError, data: Any) -> str:
    """The docs that describe the keys in error: the ``monitors:`` keys are in
    docs/observability.md, every other key in docs/project.md."""
    sections = {next(iter(_data_loc(e["loc"], data)), "") for e in exc.errors()}
    if sections == {"monitors"}:
        return "docs/observability.md describes the monitors: keys"
    if "monitors" in sections:
        return "docs/project.md describes every key, docs/observability.md the monitors: keys"
    return "docs/project.md describes every key"


def _format_validation_error(
    exc: ValidationError, path: Path, data: Any, lines: Mapping[Loc, int]
) -> str:
    problems: list[str] = []
    # A value that fits no branch of a union (`sensitivity: medum`: neither a name nor a
    # number) fails once per branch; one problem per key is said, the named values first,
    # as those are what was most likely meant.
    chosen: dict[Loc, tuple[Any, bool]] = {}
    for error in exc.errors():
        loc = _data_loc(error["loc"], data)
        if error["type"] == "union_tag_invalid":
            field = str((error.get("ctx") or {}).get("discriminator", "")).strip("'")
            loc = (*loc, field) if field else loc
        if (
            len(loc) > 1
            and loc[-1] not in lines
            and loc[:-1] in lines
            and _is_scalar(loc[:-1], data)
        ):
            loc = loc[:-1]  # a union branch's label, not a key
        # A word was meant as one of the names; a number as a number.
        literal = error["type"] == "literal_error"
        fits = literal == isinstance(error.get("input"), str)
        if loc not in chosen or (fits and not chosen[loc][1]):
            chosen[loc] = (error, fits)
    for loc, (error, _) in chosen.items():
        line = _line_for(loc, lines)
        key = ".".join(str(p) for p in loc) or "(top level)"
        problems.append(f"{path.name}:{line}: {key}: {_explain(error, loc, data)}")
    return (
        "\n".join(problems)
        if len(problems) == 1
        else (f"{len(problems)} problems in {path.name}:\n" + "\n".join(f"  {p}" for p in problems))
    )


def _data_loc(loc: tuple[Any, ...], data: Any) -> Loc:
    """Drop the parts of a pydantic location that are not keys in the data.

    A discriminated union adds its tag (``'sql_database'``) to the location, and a
    ``model_validator`` failure ends in nothing extra; what remains is the path a user sees.
    """
    out: list[str | int] = []
    node = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            out.append(part)
            node = node[part]
        elif (
            isinstance(node, dict)
            and isinstance(part, str)
            and node.get("kind", node.get("type")) == part
        ):
            continue  # the discriminator's tag
        elif isinstance(part, str) and "[" in part:
            continue  # pydantic's "function-after[...]" and similar
        else:
            out.append(part)
            node = None
    return tuple(out)


def _is_scalar(loc: Loc, data: Any) -> bool:
    node = data
    for part in loc:
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if not (isinstance(node, dict) and part in node) and not in_list:
            return False
        node = node[part]
    return not isinstance(node, dict | list)


def _line_for(loc: Loc, lines: Mapping[Loc, int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _explain(error: Any, loc: Loc, data: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], data)
        name = str(loc[-1]) if loc else ""
        suggestion = did_you_mean(name, allowed)
        expected = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f"unknown key{suggestion}{expected}"
    if kind == "union_tag_invalid":
        expected = str(ctx.get("expected_tags", ""))
        tags = [t.strip(" '") for t in expected.split(",")]
        found = str(ctx.get("tag", ""))
        field = str(ctx.get("discriminator", "")).strip("'")
        return f"unknown value '{found}'{did_you_mean(found, tags)}; expected one of: {', '.join(tags)}"
    if kind == "union_tag_not_found":
        field = str(ctx.get("discriminator", "")).strip("'")
        return f"missing key '{field}' (it says which kind of thing this is)"
    if kind == "missing":
        return "this key is required but missing"
    if kind == "literal_error" and isinstance(error.get("input"), str):
        names = [
            n.strip(" '") for n in str(ctx.get("expected", "")).replace(" or ", ", ").split(",")
        ]
        suggestion = did_you_mean(error["input"], [n for n in names if n])
        return f"{error['msg']} (found: {shown_value(loc, error['input'])}){suggestion}"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if "input" in error and not isinstance(error["input"], dict | list):
        message += f" (found: {shown_value(loc, error['input'])})"
    return message


def _allowed_keys(loc: Loc, data: Any) -> list[str]:
    """The keys the model at ``loc`` accepts (by alias), best effort, for suggestions."""
    model: Any = ProjectConfig
    node = data
    for part in loc:
        node = node.get(part) if isinstance(node, dict) else None
        model = _child_model(model, part, node)
        if model is None:
            return []
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or name for name, f in model.model_fields.items()]
    return []


def _child_model(model: Any, part: str | int, value: Any) -> Any:
    if isinstance(model, type) and issubclass(model, BaseModel):
        fields = {f.alias or n: f for n, f in model.model_fields.items()}
        field = fields.get(str(part))
        return _unwrap(field.annotation, value) if field else None
    origin = typing.get_origin(model)
    if origin in (dict, list):
        return _unwrap(typing.get_args(model)[-1], value)
    return None


def _unwrap(annotation: Any, value: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0], value)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(options) == 1:
            return _unwrap(options[0], value)
        models = [a for a in options if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
        # A discriminated union: pick the member whose kind/type literal the data names.
        tag = value.get("kind", value.get("type")) if isinstance(value, dict) else None
        for candidate in models:
            for key in ("kind", "type"):
                field = candidate.model_fields.get(key)
                if field and tag in typing.get_args(field.annotation):
                    return candidate
        return None
    return annotation
