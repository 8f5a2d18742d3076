"""Editing stackyard.yml the way a person would: comments, order and quoting kept.

The one owner of writes to stackyard.yml: every command that changes it (``source add`` /
``remove``, ``user add`` / ``rotate-key`` / ``remove``) goes through :class:`ProjectFile`.
ruamel.yaml's round-trip mode rewrites only the part that changed. Every edit is validated as
a whole project before the file is replaced (atomically), so a failed edit leaves the file as
it was.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackyard.config.loader import load_project_config
from stackyard.config.model import ProjectConfig
from stackyard.errors import ConfigError


class ProjectFile:
    """stackyard.yml, open for editing."""

    def __init__(self, path: Path) -> None:
        from ruamel.yaml import YAML

        self.path = path
        self.original = path.read_text(encoding="utf-8")
        self._yaml = YAML(typ="rt")
        self._yaml.preserve_quotes = True
        self._yaml.indent(mapping=2, sequence=4, offset=2)
        self._yaml.width = 100
        self.data: Any = self._yaml.load(self.original)

    def sources(self) -> Any:
        """The ``sources:`` mapping, created if absent."""
        from ruamel.yaml.comments import CommentedMap

        sources = self.data.get("sources")
        if not isinstance(sources, dict):
            sources = CommentedMap()
            self.data["sources"] = sources
        if hasattr(sources, "fa"):
            sources.fa.set_block_style()  # `sources: {}` becomes a block once it has entries
        return sources

    def add_source(self, name: str, entry: dict[str, Any]) -> None:
        """Add a source entry at the end of ``sources:``."""
        self.sources()[name] = _commented(entry)

    def remove_source(self, name: str) -> None:
        """Remove a source entry (an empty ``sources:`` becomes ``{}``)."""
        from ruamel.yaml.comments import CommentedMap

        sources = self.sources()
        left = _drop(sources, name) if name in sources else None
        if not sources:
            empty = CommentedMap()
            empty.fa.set_flow_style()
            self.data["sources"] = empty
        if left is not None:
            # The comment that followed the last source belongs to what comes after it.
            _attach(self.data, left, after="sources")

    def section(self, *keys: str) -> Any:
        """The mapping at ``access.<keys…>``, created (empty) when missing."""
        from ruamel.yaml.comments import CommentedMap

        node = self.data
        for key in ("access", *keys):
            if node.get(key) is None:
                node[key] = CommentedMap()
            node = node[key]
        return node

    def find(self, *keys: str) -> Any:
        """The value at ``access.<keys…>`` (names matched case-insensitively), or ``None``."""
        node = self.data.get("access")
        for key in keys:
            if not isinstance(node, dict):
                return None
            node = next((v for k, v in node.items() if str(k).upper() == key.upper()), None)
        return node

    def key_of(self, section: str, name: str) -> str | None:
        """How ``name`` is spelled in ``access.<section>``, or ``None``."""
        node = self.find(section)
        if not isinstance(node, dict):
            return None
        return next((str(k) for k in node if str(k).upper() == name.upper()), None)

    def set_access(self, entries: dict[str, Any], sections: tuple[str, ...]) -> None:
        """Replace the ``access.<section>`` entries named in ``sections`` with ``entries``
        (settings such as ``role_prefix`` and comments elsewhere are kept)."""
        access = self.section()
        for key in sections:
            access.pop(key, None)
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        for key, value in entries.items():
            if isinstance(value, dict):
                access[key] = CommentedMap((k, _commented(v)) for k, v in value.items())
            elif isinstance(value, list):
                access[key] = CommentedSeq(_commented(v) for v in value)
            else:
                access[key] = value

    def approve_change(self, entry: dict[str, Any]) -> None:
        """Append an approved schema change to ``schema_changes.approved``."""
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        section = self.data.get("schema_changes")
        if not isinstance(section, dict):
            section = CommentedMap()
            self.data["schema_changes"] = section
        approved = section.get("approved")
        if not isinstance(approved, list):
            approved = CommentedSeq()
            section["approved"] = approved
        approved.append(_commented(entry))

    def remove_approval(self, matches: Callable[[Any], bool]) -> bool:
        """Take the last approved schema change ``matches`` accepts out of
        ``schema_changes.approved``; whether there was one."""
        approved = (self.data.get("schema_changes") or {}).get("approved")
        if not isinstance(approved, list):
            return False
        for i in range(len(approved) - 1, -1, -1):
            if isinstance(approved[i], dict) and matches(approved[i]):
                left = _drop(approved, i)
                if not approved:  # as the file was before the first approval
                    section = self.data["schema_changes"]
                    left = _drop(section, "approved", left)
                    if not section:
                        left = _drop(self.data, "schema_changes", left)
                if left is not None:
                    _attach(self.data, left)
                return True
        return False

    def text(self) -> str:
        """The edited file's text."""
        buffer = io.StringIO()
        self._yaml.dump(self.data, buffer)
        return buffer.getvalue()

    def save(self) -> None:
        """Validate the edited project and replace the file atomically.

        Raises:
            ConfigError: the edit would make stackyard.yml invalid (the file is untouched).
        """
        self.write_text(self.text())

    def validated(self) -> ProjectConfig:
        """The project as the edited file would be; nothing is written.

        Raises:
            ConfigError: the edit would make stackyard.yml invalid.
        """
        return self._write(self.text(), replace=False)

    def write_text(self, text: str) -> None:
        """Validate ``text`` as stackyard.yml and write it in place of the file."""
        self._write(text, replace=True)

    def _write(self, text: str, *, replace: bool) -> ProjectConfig:
        # The draft keeps the file's own name (in a folder of its own beside it, so the
        # replace is atomic): an error points at stackyard.yml:LINE, not at a temporary name.
        folder = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=".stackyard-"))
        draft = folder / self.path.name
        try:
            draft.write_text(text, encoding="utf-8")
            if self.path.exists():  # the file keeps its permissions
                draft.chmod(stat.S_IMODE(self.path.stat().st_mode))
            try:
                config = load_project_config(draft)
            except ConfigError as exc:
                raise ConfigError(
                    f"the change would make {self.path.name} invalid, so it was not made:\n"
                    f"{exc.message}",
                    hint=f"check the options given; {self.path.name} is unchanged",
                ) from None
            if replace:
                os.replace(draft, self.path)
            return config
        finally:
            draft.unlink(missing_ok=True)
            folder.rmdir()

    def restore(self) -> None:
        """Put the file back exactly as it was when opened."""
        self.path.write_text(self.original, encoding="utf-8")


def _commented(value: Any) -> Any:
    """Plain dicts and lists as ruamel nodes; short ones inline (``{primary_key: id}``)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, dict):
        node = CommentedMap((k, _commented(v)) for k, v in value.items())
        if all(not isinstance(v, dict | list) for v in value.values()) and len(value) <= 4:
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        seq = CommentedSeq(_commented(v) for v in value)
        seq.fa.set_flow_style()
        return seq
    return value


# Comments. ruamel.yaml keeps a comment on the line after an entry with that entry (on its
# last scalar, however deep): deleting the entry took with it a comment that was about the
# next one, such as a section heading. These move it to what now comes before it.


def _take_trailing(node: Any, key: Any) -> Any:
    """Detach and return the comment that follows ``node[key]`` (``None`` when there is
    none)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if not isinstance(node, CommentedMap | CommentedSeq):
        return None
    slot = 0 if isinstance(node, CommentedSeq) else 2
    item = node.ca.items.get(key)
    if item and len(item) > slot and item[slot] is not None:
        token = item[slot]
        item[slot] = None
        return token
    value = node[key]
    if isinstance(value, CommentedMap | CommentedSeq) and len(value):
        return _take_trailing(value, _keys(value)[-1])
    return None


def _attach(node: Any, token: Any, after: Any = None) -> bool:
    """Put ``token`` after the last entry of ``node`` (after the entry ``after``, when
    given); whether there was an entry to put it after."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if not isinstance(node, CommentedMap | CommentedSeq) or not len(node):
        return False
    if node.fa.flow_style():  # `{a: 1}`: a comment inside would break the line
        return False
    keys = _keys(node)
    if after is not None:
        if after not in keys:
            return False
        keys = keys[: keys.index(after) + 1]
    key = keys[-1]
    if _attach(node[key], token):
        return True
    slot = 0 if isinstance(node, CommentedSeq) else 2
    item = node.ca.items.setdefault(key, [None, None, None, None])
    item[slot] = _joined(item[slot], token)
    return True


def _drop(node: Any, key: Any, carried: Any = None) -> Any:
    """Delete ``node[key]``, keeping the comment that followed it (and ``carried``, one left
    over from a deeper deletion) after the entry before it. Returns the comment when there
    was no entry before it, for the caller to place a level up."""
    token = _joined(carried, _take_trailing(node, key))
    keys = _keys(node)
    before = keys[keys.index(key) - 1] if keys.index(key) > 0 else None
    del node[key]
    if token is not None and before is not None and _attach(node, token, after=before):
        return None
    return token


def _keys(node: Any) -> list[Any]:
    return list(node.keys()) if isinstance(node, dict) else list(range(len(node)))


def _joined(first: Any, second: Any) -> Any:
    """Two comments as one, in order (either may be ``None``)."""
    if first is None or second is None:
        return first if second is None else second
    first.value = first.value.rstrip("\n") + "\n" + second.value.lstrip("\n")
    return first
