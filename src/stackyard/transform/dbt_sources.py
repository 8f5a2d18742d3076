"""The dbt ``_sources.yml`` that ``source add`` and ``source remove`` keep: one owner for it.

Entries stackyard adds carry ``meta.stackyard_source``; everything else in the file (other
sources, comments, order) is kept as it is (ruamel.yaml round trip).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackyard.config.model import ExternalSource, ProjectConfig
from stackyard.errors import ConfigError
from stackyard.transform.staging import LOADER, sources_entry

SOURCES_FILE = Path("models") / "staging" / LOADER / "_sources.yml"
SOURCES_HEADER = (
    "# dbt sources for the data stackyard loads with dlt. Entries with meta.stackyard_source\n"
    "# are managed by `stackyard source add` / `stackyard source remove`.\n"
)


def write_sources_entry(
    project_dir: Path, transform_dir: Path, name: str, config: ProjectConfig, tables: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Add or update a source's entry in the generated ``_sources.yml``, comments kept.

    Returns:
        The files written and the files left unchanged, relative to the project folder.

    Raises:
        ConfigError: the file has a dbt source of that name that stackyard did not add.
    """
    from ruamel.yaml import YAML

    source = config.sources[name]
    loader, loaded_at = LOADER, "_loaded_at"
    if isinstance(source, ExternalSource):
        loader, loaded_at = source.loader, source.columns().loaded_at
    path = transform_dir / sources_file(loader)
    rel = str(path.relative_to(project_dir))
    entry = sources_entry(
        name,
        config.dataset_for(name),
        source.kind,
        tables,
        config.defaults.freshness.model_dump(),
        loader=loader,
        loaded_at=loaded_at,
    )
    yaml = _round_trip(YAML)
    if path.exists():
        original = path.read_text(encoding="utf-8")
        data = yaml.load(original) or {}
    else:
        original = None
        data = {"version": 2, "sources": []}
    sources = data.setdefault("sources", [])
    index = next((i for i, s in enumerate(sources) if s.get("name") == entry["name"]), None)
    if index is not None:
        current = sources[index]
        if (current.get("meta") or {}).get("stackyard_source") != name:
            raise ConfigError(
                f"{rel} already has a dbt source '{entry['name']}' that stackyard did not add",
                hint="rename one of them; nothing was changed",
            )
        if _plain(current) == entry:
            return [], [rel]
    text = None
    if original is not None:
        text = _spliced(yaml, original, data, index, entry)
    if text is None:
        if index is not None:
            sources[index] = entry
        else:
            sources.append(entry)
        buffer = io.StringIO()
        yaml.dump(data, buffer)
        text = buffer.getvalue()
    if original is None:
        header = SOURCES_HEADER
        if loader != LOADER:
            header = header.replace("stackyard loads with dlt", f"{loader} loads")
        text = header + text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return [rel], []


def generated_entry(transform_dir: Path, name: str) -> tuple[Path, str] | None:
    """The ``_sources.yml`` holding the entry stackyard added for this source, and the dbt
    source's name there (``airbyte_support`` for an external source), or ``None``."""
    from ruamel.yaml import YAML

    for path in _sources_files(transform_dir):
        data = _round_trip(YAML).load(path.read_text(encoding="utf-8")) or {}
        for entry in data.get("sources") or []:
            if (entry.get("meta") or {}).get("stackyard_source") == name:
                return path, str(entry.get("name") or name)
    return None


def sources_file(loader: str = LOADER) -> Path:
    """The generated ``_sources.yml`` of a loader's sources, relative to the dbt project.

    >>> sources_file("airbyte").as_posix()
    'models/staging/airbyte/_sources.yml'
    """
    return Path("models") / "staging" / loader / "_sources.yml"


def _sources_files(transform_dir: Path) -> list[Path]:
    """Every loader's generated ``_sources.yml`` (dlt's first)."""
    found = sorted((transform_dir / "models" / "staging").glob("*/_sources.yml"))
    return sorted(found, key=lambda p: p.parent.name != LOADER)


def remove_sources_entry(transform_dir: Path, name: str) -> list[Path]:
    """Drop the source's dbt entry; delete the file when stackyard created it and it is
    now empty. Returns the files deleted."""
    return [path for path in _sources_files(transform_dir) if _remove_from(path, name)]


def _remove_from(path: Path, name: str) -> bool:
    from ruamel.yaml import YAML

    yaml = _round_trip(YAML)
    text = path.read_text(encoding="utf-8")
    data = yaml.load(text) or {}
    sources = data.get("sources") or []
    keep = [s for s in sources if (s.get("meta") or {}).get("stackyard_source") != name]
    if len(keep) == len(sources):
        return False
    if not keep and text.startswith(SOURCES_HEADER[:27]):  # "# dbt sources for the data "
        path.unlink()
        return True
    ours = [
        i for i, s in enumerate(sources) if (s.get("meta") or {}).get("stackyard_source") == name
    ]
    lines = text.splitlines(keepends=True)
    for i in reversed(ours):
        start, end = _item_span(lines, data, i)
        del lines[start:end]
    spliced = "".join(lines)
    if not keep or _plain((yaml.load(spliced) or {}).get("sources")) != _plain(keep):
        # nothing left to splice around (or a layout the lines cannot be cut from): write
        # the file anew
        for i in reversed(ours):
            del sources[i]
        buffer = io.StringIO()
        yaml.dump(data, buffer)
        spliced = buffer.getvalue()
    path.write_text(spliced, encoding="utf-8")
    return False


def _spliced(
    yaml: Any, original: str, data: Any, index: int | None, entry: dict[str, Any]
) -> str | None:
    """The file with only the entry's own lines written (replaced at ``index``, or added
    after the last source), every other line byte for byte as it was: a YAML writer would
    re-wrap and re-space lines it did not need to touch. ``None`` when the file has no
    source to place it by, or the result would not read back as intended."""
    sources = data.get("sources")
    if not sources:
        return None
    lines = original.splitlines(keepends=True)
    if index is not None:
        start, end = _item_span(lines, data, index)
    else:
        start = end = _item_span(lines, data, len(sources) - 1)[1]
    if end and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    anchor = lines[sources.lc.item(index or 0)[0]]
    block = _entry_lines(yaml, entry, len(anchor) - len(anchor.lstrip(" ")))
    text = "".join(lines[:start] + block + lines[end:])
    expected = [_plain(s) for s in sources]
    if index is None:
        expected.append(entry)
    else:
        expected[index] = entry
    if _plain((yaml.load(text) or {}).get("sources")) != expected:
        return None
    return text


def _item_span(lines: list[str], data: Any, index: int) -> tuple[int, int]:
    """Lines ``[start, end)`` of the ``index``-th item of ``sources:``, without the blank and
    comment lines that follow it (they stand before what comes next)."""
    sources = data["sources"]
    start = sources.lc.item(index)[0]
    if index + 1 < len(sources):
        end = sources.lc.item(index + 1)[0]
    else:
        key_line = data.lc.key("sources")[0]
        later = [data.lc.key(k)[0] for k in data if data.lc.key(k)[0] > key_line]
        end = min(later, default=len(lines))
    while end > start + 1 and (
        not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")
    ):
        end -= 1
    return start, end


def _entry_lines(yaml: Any, entry: dict[str, Any], dash_column: int) -> list[str]:
    """The entry as the lines of one item of ``sources:``, its dash at ``dash_column``."""
    buffer = io.StringIO()
    yaml.dump({"sources": [entry]}, buffer)
    block = buffer.getvalue().splitlines(keepends=True)[1:]
    shift = dash_column - (len(block[0]) - len(block[0].lstrip(" ")))
    if shift >= 0:
        return [" " * shift + line if line.strip() else line for line in block]
    return [line[-shift:] if line.strip() else line for line in block]


def _round_trip(yaml_cls: Any) -> Any:
    yaml = yaml_cls(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    return yaml


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
