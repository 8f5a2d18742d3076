"""``dbt_project.yml``, read for what stackyard needs of it (the profile, where packages go,
model configs) by every command the same way: a file dbt could not read either is a config
error naming the file, the line and column, and the YAML problem, before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from stackyard.config.bounds import read_text_file
from stackyard.errors import ConfigError

DBT_PROJECT_FILE = "dbt_project.yml"


def read_dbt_project(transform_dir: Path) -> dict[str, Any]:
    """The dbt project's ``dbt_project.yml`` as a mapping.

    Args:
        transform_dir: the dbt project's folder.

    Returns:
        The file's settings (empty when the file is empty).

    Raises:
        ConfigError: the file is missing, is not UTF-8 or not valid YAML (naming its line and
            column), or does not hold a mapping of settings.
    """
    path = transform_dir / DBT_PROJECT_FILE
    if not path.is_file():
        raise ConfigError(
            f"{path} does not exist: the transform folder is not a dbt project",
            hint="restore it, or point transform.path in stackyard.yml at your dbt project",
        )
    text = read_text_file(path, what=str(path))
    hint = f"fix {path} (dbt cannot read it either), then run the command again"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{_where(exc, path)}: not valid YAML: {_problem(exc)}",
            hint=f"{hint}; check the indentation, quoting and brackets there",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} holds a {type(data).__name__}, not a mapping of dbt project settings "
            "(name:, profile:, models: …)",
            hint=hint,
        )
    return data


def _where(exc: yaml.YAMLError, path: Path) -> str:
    """``path:line:column`` of the problem (1-based, as editors count), or the path alone.

    >>> try:
    ...     yaml.safe_load("name: [broken\\n  profile: x\\n")
    ... except yaml.YAMLError as exc:
    ...     print(_where(exc, Path("dbt_project.yml")))
    dbt_project.yml:2:10
    """
    mark = getattr(exc, "problem_mark", None)
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)


def _problem(exc: yaml.YAMLError) -> str:
    """What PyYAML found, with where the construct it was reading began.

    >>> try:
    ...     yaml.safe_load("name: [broken\\n  profile: x\\n")
    ... except yaml.YAMLError as exc:
    ...     print(_problem(exc))
    expected ',' or ']', but got ':' (while parsing a flow sequence begun at line 1, column 7)
    """
    if isinstance(exc, yaml.reader.ReaderError):
        # A control character or a NUL: a position in the text, not a line.
        return f"a character YAML does not allow (#x{exc.character:04x}) at offset {exc.position}"
    problem = str(getattr(exc, "problem", None) or str(exc).splitlines()[0])
    context = getattr(exc, "context", None)
    mark = getattr(exc, "context_mark", None)
    if context and mark is not None:
        return f"{problem} ({context} begun at line {mark.line + 1}, column {mark.column + 1})"
    return f"{problem} ({context})" if context else problem
