"""stackyard: a whole data platform as one project and one CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from stackyard.context import Context


def __getattr__(name: str) -> Any:
    # Context pulls in the config models; keep `import stackyard` itself instant.
    if name == "Context":
        from stackyard.context import Context

        return Context
    raise AttributeError(name)


__all__ = ["Context", "__version__"]
