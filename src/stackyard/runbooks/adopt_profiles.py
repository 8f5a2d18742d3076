"""The team's dbt profile as stackyard targets, for ``stackyard adopt dbt``.

The outputs of the profile the project asks for (``profile:`` in ``dbt_project.yml``) become
targets of the same names, so ``stackyard run -t prod`` builds where ``dbt build -t prod``
did. The profiles file is found as dbt finds it: ``--profiles-dir``, else
``$DBT_PROFILES_DIR``, else the current folder, else (where dbt is run from the project's
folder) the dbt project's folder, else ``~/.dbt``; it is only read.

A password or key given as ``{{ env_var('NAME') }}`` becomes ``{secret: NAME}``, read from
the same variable; one written out in the file goes to ``.stackyard/secrets.toml`` (owner
only, git-ignored), never into ``stackyard.yml``. An output stackyard cannot take as it is (a
type it does not run on, another value computed by Jinja, a key file's path) is left out,
and the report says why, so that nothing is adopted half right.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stackyard.errors import UsageError

PROFILES_FILE = "profiles.yml"
_ENV_VAR = re.compile(r"^\{\{\s*env_var\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*\)\s*\}\}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_SECRETS = ("password", "private_key", "private_key_passphrase")
# dbt's own tuning, which changes nothing stackyard keeps: read and dropped for every type.
_DBT_ONLY = {
    "type",
    "keepalives_idle",
    "retries",
    "connect_retries",
    "client_session_keep_alive",
    "query_tag",
    "reuse_connections",
    "priority",
    "job_execution_timeout_seconds",
    "job_retries",
}


@dataclass(frozen=True)
class ProfileTargets:
    """What the team's profile gives.

    Attributes:
        found_in: the profiles file read (``None``: none was found).
        targets: target name to its stackyard.yml entry.
        secrets: secret name to value, for ``.stackyard/secrets.toml`` (values written out
            in the profiles file).
        left_out: ``(output, why)`` for each output not adopted (output ``None``: the file
            has no such profile).
    """

    found_in: Path | None = None
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    left_out: tuple[tuple[str | None, str], ...] = ()

    def left_out_lines(self) -> list[str]:
        """One line per output not adopted.

        >>> ProfileTargets(left_out=(("prod", "why"),)).left_out_lines()
        ["output 'prod': why"]
        """
        return [f"output '{o}': {why}" if o else why for o, why in self.left_out]


def profiles_file(
    dbt_dir: Path, profiles_dir: Path | None, environ: Mapping[str, str], cwd: Path | None = None
) -> Path | None:
    """The profiles file dbt would read for the project in ``dbt_dir``, run from ``cwd``
    (default: the current folder) or from the project's own folder.

    Raises:
        UsageError: ``profiles_dir`` was given and holds no profiles.yml.
    """
    if profiles_dir is not None:
        given = profiles_dir.expanduser() / PROFILES_FILE
        if not given.is_file():
            raise UsageError(
                f"{profiles_dir} has no {PROFILES_FILE}",
                hint="give the folder dbt's --profiles-dir names; nothing was written",
            )
        return given
    here = str(cwd if cwd is not None else Path.cwd())
    folders = [environ.get("DBT_PROFILES_DIR"), here, str(dbt_dir)]
    home = environ.get("HOME")
    folders.append(str(Path(home) / ".dbt") if home else None)
    for folder in folders:
        if folder and (Path(folder).expanduser() / PROFILES_FILE).is_file():
            return Path(folder).expanduser() / PROFILES_FILE
    return None


def profile_targets(
    path: Path | None, profile: str, dbt_dir: Path, project_dir: Path
) -> ProfileTargets:
    """The outputs of ``profile`` in the profiles file at ``path`` as stackyard targets.

    Args:
        path: the profiles file (``None``: there is none).
        profile: the profile the dbt project asks for.
        dbt_dir: the dbt project (a DuckDB path in the profile is relative to it).
        project_dir: the stackyard project (where the target's path is written from).

    Raises:
        UsageError: the file is not YAML dbt could read.
    """
    if path is None or not profile:
        return ProfileTargets()
    try:
        with path.open(encoding="utf-8") as stream:  # the error names the file, not a string
            data = yaml.safe_load(stream)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(
            f"{path} cannot be read as YAML ({exc})",
            hint="fix it (dbt cannot read it either); nothing was written",
        ) from None
    entry = data.get(profile) if isinstance(data, dict) else None
    outputs = entry.get("outputs") if isinstance(entry, dict) else None
    if not isinstance(outputs, dict):
        return ProfileTargets(path, left_out=((None, f"{path} has no profile '{profile}'"),))
    targets: dict[str, dict[str, Any]] = {}
    secrets: dict[str, str] = {}
    left_out: list[tuple[str | None, str]] = []
    for name, output in outputs.items():
        try:
            target, found = _target(str(name), output, dbt_dir, project_dir)
        except _LeftOut as why:
            left_out.append((str(name), str(why)))
            continue
        problem = _invalid(target)
        if problem:
            left_out.append((str(name), f"{problem}; add the target by hand"))
            continue
        targets[str(name)] = target
        secrets.update(found)
    return ProfileTargets(path, targets, secrets, tuple(left_out))


def _invalid(entry: dict[str, Any]) -> str | None:
    """Why stackyard.yml would refuse ``entry`` as a target, or ``None``."""
    from pydantic import TypeAdapter, ValidationError

    from stackyard.config.model import Target

    try:
        TypeAdapter(Target).validate_python(entry)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:])
        return f"{where + ': ' if where else ''}{first['msg']}"
    return None


class _LeftOut(Exception):
    """Why one output is not adopted."""


def _target(
    name: str, output: Any, dbt_dir: Path, project_dir: Path
) -> tuple[dict[str, Any], dict[str, str]]:
    from stackyard.warehouse import warehouse_class

    if not _NAME.match(name):
        raise _LeftOut("a target name is lower-case letters, digits and _; add it by hand")
    if not isinstance(output, dict):
        raise _LeftOut("it is not a mapping")
    kind = str(output.get("type", ""))
    try:
        engine = warehouse_class(kind)
    except KeyError:
        raise _LeftOut(f"type '{kind}' is not one stackyard runs on") from None
    if not engine.DBT_OUTPUT:
        raise _LeftOut(f"stackyard does not read dbt's {kind} outputs; add the target by hand")
    entry: dict[str, Any] = {"type": kind}
    secrets: dict[str, str] = {}
    for key, value in output.items():
        if key in _DBT_ONLY:
            continue
        if key not in engine.DBT_OUTPUT:
            raise _LeftOut(f"stackyard has no setting for its '{key}'; add the target by hand")
        for setting in engine.DBT_OUTPUT[key]:
            found, secret = _value(name, setting, value)
            *parents, last = setting.split(".")
            holder = entry
            for parent in parents:
                holder = holder.setdefault(parent, {})
            holder[last] = found
            secrets.update(secret)
    if engine.STORAGE == "file":
        entry["path"] = _file_path(str(entry.get("path", ":memory:")), dbt_dir, project_dir)
    return entry, secrets


def _value(target: str, key: str, value: Any) -> tuple[Any, dict[str, str]]:
    """A setting's value as stackyard.yml holds it, and the secret to keep apart, if any."""
    text = value if isinstance(value, str) else None
    env = _ENV_VAR.match(text.strip()) if text is not None else None
    if key in _SECRETS:
        if env:
            return {"secret": env.group(1)}, {}
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _LeftOut(f"its {key} is not text; give it as {{secret: …}} by hand")
        if text is not None and ("{{" in text or "{%" in text):
            raise _LeftOut(f"its {key} is computed by Jinja; give it as {{secret: …}} by hand")
        name = f"{target}_{key}".upper()
        return {"secret": name}, {name: str(value)}
    if text is not None and ("{{" in text or "{%" in text):
        raise _LeftOut(
            f"its {key} is computed by Jinja ({text.strip()}), which stackyard.yml does not "
            "evaluate; add the target by hand"
        )
    return value, {}


def _file_path(path: str, dbt_dir: Path, project_dir: Path) -> str:
    if path == ":memory:" or path.startswith("md:"):
        raise _LeftOut(f"its database is '{path}', not a file stackyard can keep")
    full = Path(path).expanduser()
    full = full if full.is_absolute() else dbt_dir / full
    return Path(os.path.relpath(full, project_dir)).as_posix()


def sandbox_name(taken: Collection[str]) -> str:
    """The name of stackyard's new DuckDB target: ``dev`` unless the profile has one.

    >>> sandbox_name({"prod"}), sandbox_name({"dev"}), sandbox_name({"dev", "sandbox"})
    ('dev', 'sandbox', 'stackyard_dev')
    >>> sandbox_name({"dev", "sandbox", "stackyard_dev"})
    'stackyard_dev_2'
    """
    for name in ("dev", "sandbox", "stackyard_dev"):
        if name not in taken:
            return name
    number = 2
    while f"stackyard_dev_{number}" in taken:
        number += 1
    return f"stackyard_dev_{number}"


def keep_secrets(path: Path, secrets: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Add ``secrets`` to the secrets file at ``path`` (owner only), never replacing a value
    it holds already. Returns the names written and the names it already held (kept)."""
    from stackyard.config.private import write_private

    held = path.read_text(encoding="utf-8") if path.is_file() else ""
    kept = [k for k in secrets if re.search(rf"(?m)^\s*{re.escape(k)}\s*=", held)]
    written = {k: v for k, v in secrets.items() if k not in kept}
    if written:
        write_private(
            path, held + ("" if not held or held.endswith("\n") else "\n") + toml_lines(written)
        )
    return list(written), kept


def shown_path(path: Path, project_dir: Path, environ: Mapping[str, str]) -> str:
    """``path`` as a comment in stackyard.yml shows it: from the project, else from ``~``.

    >>> shown_path(Path("/p/x/profiles.yml"), Path("/p/x"), {})
    'profiles.yml'
    >>> shown_path(Path("/h/.dbt/profiles.yml"), Path("/p"), {"HOME": "/h"})
    '~/.dbt/profiles.yml'
    """
    full = path.resolve() if path.exists() else path
    for base, shown in ((project_dir, ""), (Path(environ.get("HOME") or "/nonexistent"), "~/")):
        try:
            return shown + full.relative_to(base.resolve() if base.exists() else base).as_posix()
        except ValueError:
            continue
    return full.as_posix()


def toml_lines(secrets: Mapping[str, str]) -> str:
    """``NAME = "value"`` lines for ``.stackyard/secrets.toml``.

    >>> print(toml_lines({"PROD_PASSWORD": 'p"w'}), end="")
    PROD_PASSWORD = "p\\"w"
    """
    import json

    # A JSON string is a TOML basic string (the same escapes).
    return "".join(f"{name} = {json.dumps(value)}\n" for name, value in secrets.items())
