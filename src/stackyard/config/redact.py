"""Keeping secret values out of messages.

A config error shows the value it found, which helps with a typo but must never show a
password or token: values under a key that names a secret are hidden, and URLs lose the
password part and the values of secret-looking query parameters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

_SECRET_KEY = re.compile(
    r"pass|secret|token|key|credential|connection|dsn|auth|private|cookie|signature",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^/@:\s]*:)(?P<password>[^@\s]*)@")
_SECRET_PARAM = re.compile(
    r"(?P<head>[?&;](?:[^=&;#\s]*(?:pass|secret|token|key|sig|auth|code)[^=&;#\s]*)=)"
    r"(?P<value>[^&;#\s]*)",
    re.IGNORECASE,
)
# Keys that contain a secret word but never hold a secret.
_NOT_SECRET = frozenset({"primary_key", "merge_key", "key_origin", "sort_key", "keys"})
HIDDEN = "***"


def redact_text(text: str) -> str:
    """``text`` with URL passwords and secret-looking query parameter values hidden.

    >>> redact_text("postgresql://bob:Sup3rS3cret@db:5432/shop")
    'postgresql://bob:***@db:5432/shop'
    >>> redact_text("https://api.example.com/v1?page=2&api_key=abc123")
    'https://api.example.com/v1?page=2&api_key=***'
    """
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{HIDDEN}@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m.group('head')}{HIDDEN}", text)


def names_a_secret(loc: Sequence[str | int]) -> bool:
    """Whether a config location is one whose value may be a secret.

    >>> names_a_secret(("targets", "prod", "password"))
    True
    >>> names_a_secret(("sources", "api", "headers", "Authorization"))
    True
    >>> names_a_secret(("sources", "shop", "schedule"))
    False
    """
    return any(
        isinstance(part, str) and part.lower() not in _NOT_SECRET and _SECRET_KEY.search(part)
        for part in loc
    )


def shown_value(loc: Sequence[str | int], value: object) -> str:
    """How a found value appears in a config error: hidden when it may be a secret.

    >>> shown_value(("sources", "db", "connection"), "postgresql://bob:pw@h/db")
    'a value (hidden: it may hold a secret)'
    >>> shown_value(("targets", "dev", "threads"), "four")
    "'four'"

    A value YAML read as a date, a yes/no or nothing is shown as it was written, not as
    Python spells it:

    >>> shown_value(("monitors", "holidays"), date(2026, 12, 4))
    '2026-12-04'
    >>> shown_value(("monitors", "enabled"), datetime(2026, 12, 4, 10, 0))
    '2026-12-04 10:00:00'
    >>> shown_value(("monitors", "recheck_days"), None), shown_value(("x",), False)
    ('null', 'false')
    """
    if names_a_secret(loc):
        return "a value (hidden: it may hold a secret)"
    if isinstance(value, date):  # a datetime too
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return redact_text(repr(value))
