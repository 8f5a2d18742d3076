"""A source's stackyard.yml entry from the options of ``stackyard source add``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from stackyard.config.sources import parse_source, source_kinds
from stackyard.errors import UsageError, did_you_mean


def source_entry(kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """A stackyard.yml entry for a source from command-line options, validated.

    Args:
        kind: the source kind.
        options: the kind's keys (``connection``, ``tables``, ``url``, ``base_url``,
            ``endpoints`` …) with None for options not given.

    Raises:
        UsageError: unknown kind or options the kind does not accept / needs.
    """
    kinds = list(source_kinds())
    if kind not in kinds:
        raise UsageError(
            f"unknown source kind '{kind}'{did_you_mean(kind, kinds)}",
            hint=f"kinds: {', '.join(kinds)}",
        )
    entry: dict[str, Any] = {"kind": kind}
    entry.update({k: v for k, v in options.items() if v not in (None, {}, [], ())})
    try:
        parse_source(entry)
    except ValidationError as exc:
        raise invalid_options(kind, exc) from None
    return entry


def invalid_options(kind: str, exc: ValidationError) -> UsageError:
    """The options' problems, each with where it is and never the value given (pydantic's
    own text quotes it: a connection URL with its password)."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:]) or kind}: {e['msg']}" for e in exc.errors()
    )
    secret = any("password" in str(e["msg"]) for e in exc.errors())
    return UsageError(
        f"the options do not make a valid {kind} source: {problems}",
        hint="pass --connection-secret NAME instead, with the URL in the environment "
        "variable NAME or in .stackyard/secrets.toml"
        if secret
        else "see `stackyard source add --help` and docs/runbooks/adding-data-sources.md",
    )
