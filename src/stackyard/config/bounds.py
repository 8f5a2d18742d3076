"""Limits that keep a hostile or broken config file from costing unbounded memory or time.

A 394-byte YAML file of nested aliases ("billion laughs") expands to billions of values; 5,000
levels of ``[[[[…`` overflow a recursive reader. Every config file stackyard reads goes through
these checks first, and each refusal names the file and line and says what was expected.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from stackyard.errors import ConfigError

MAX_FILE_BYTES = 5 * 1024 * 1024
"""A config or secrets file larger than this is refused (stackyard.yml files are kilobytes)."""
MAX_DEPTH = 64
"""Levels of nested mappings and lists (the deepest real stackyard.yml has about 8)."""
MAX_ALIASES = 100
"""``*alias`` uses in one file."""
MAX_NODES = 200_000
"""Values in the file once every alias is expanded."""


def read_text_file(path: Path, *, what: str = "") -> str:
    """The text of a UTF-8 config file, refusing what is not one.

    Args:
        path: the file.
        what: how to name it in messages (default: its file name).

    Raises:
        ConfigError: the path is a folder or unreadable, the file is larger than
            ``MAX_FILE_BYTES``, or it is not UTF-8 (naming the line of the first bad byte).
    """
    name = what or path.name
    if path.is_dir():
        raise ConfigError(f"{name} is a folder, expected a file", hint=f"remove the folder {path}")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(
                f"{name} is {size:,} bytes; a config file may have at most {MAX_FILE_BYTES:,}",
                hint="is this the right file?",
            )
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{name} cannot be read: {exc.strerror}", hint="check the file's permissions"
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{name}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            hint="save the file as UTF-8",
        ) from None


def yaml_error(exc: yaml.YAMLError, name: str) -> ConfigError:
    """A PyYAML error as a ConfigError naming the file and line.

    >>> try:
    ...     yaml.safe_load("a: [1, 2")
    ... except yaml.YAMLError as exc:
    ...     print(yaml_error(exc, "stackyard.yml").message)
    stackyard.yml:1: not valid YAML: expected ',' or ']', but got '<stream end>'
    """
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.reader.ReaderError):
        # A control character or a NUL: ReaderError gives a position, not a mark.
        problem = f"a character YAML does not allow (#x{exc.character:04x})"
        return ConfigError(f"{name}: not valid YAML: {problem}", hint="remove that character")
    where = f"{name}:{mark.line + 1}" if mark else name
    problem = getattr(exc, "problem", None) or str(exc)
    return ConfigError(
        f"{where}: not valid YAML: {problem}",
        hint="check indentation and quoting on that line (tabs are not allowed in YAML)",
    )


def check_yaml_shape(text: str, name: str) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` and more than ``MAX_ALIASES`` aliases.

    Reads the event stream, which PyYAML produces without recursion, so this cannot itself
    overflow the stack.

    Raises:
        ConfigError: naming the line where the limit was passed, or a YAML syntax error.
    """
    depth = 0
    aliases = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ConfigError(
                        f"{name}:{_line(event)}: nested more than {MAX_DEPTH} levels deep",
                        hint="a stackyard.yml is a few levels of mappings and lists",
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise ConfigError(
                        f"{name}:{_line(event)}: more than {MAX_ALIASES} aliases (*name)",
                        hint="write the values out instead of repeating aliases",
                    )
    except yaml.YAMLError as exc:
        raise yaml_error(exc, name) from None


def check_expanded_size(root: yaml.Node, name: str) -> None:
    """Refuse a document that expands to more than ``MAX_NODES`` values through aliases.

    An alias makes the composer share one node, so the document is a graph; its expanded
    size is counted once per node (memoised), without expanding anything.

    Raises:
        ConfigError: naming the line of the node whose expansion is too large.
    """
    sizes: dict[int, int] = {}
    # Iterative post-order walk: the depth was bounded by check_yaml_shape, but a loop keeps
    # this safe on its own.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        size = 1 + sum(sizes[id(c)] for c in children)
        if size > MAX_NODES:
            raise ConfigError(
                f"{name}:{node.start_mark.line + 1}: the aliases here expand to more than "
                f"{MAX_NODES:,} values",
                hint="write the values out instead of nesting aliases",
            )
        sizes[id(node)] = size


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark else 0


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
