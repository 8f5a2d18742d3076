"""The ``schema_changes:`` section of stackyard.yml: breaking schema changes someone approved.

``stackyard schema diff --check`` fails CI on a breaking change (a drop, a rename, a type
narrowing, a partitioning change, a model reading a column that no longer exists) unless it
is listed here. ``stackyard schema approve`` writes the entry.

.. code-block:: yaml

    schema_changes:
      approved:
        - {node: stg_orders, column: amount, change: rename, reason: "renamed to amount_usd"}
        - {node: orders, column: "*", change: partitioning}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ChangeKind = Literal[
    "additive",
    "rename",
    "type_widening",
    "type_narrowing",
    "drop",
    "partitioning",
    "broken_reference",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApprovedChange(_Strict):
    """One approved breaking change.

    Attributes:
        node: the model or ``SOURCE.TABLE``.
        column: the column as it was before the change (``*`` for the whole node).
        change: the kind of change approved.
        reason: why it is fine (who agreed, what downstream was told).
    """

    node: str
    column: str = "*"
    change: ChangeKind
    reason: str = ""


class SchemaChangesConfig(_Strict):
    """Approved breaking schema changes."""

    approved: list[ApprovedChange] = Field(default_factory=list)

    def approves(self, node: str, column: str, change: str) -> bool:
        """Whether a change is approved (``column: "*"`` approves it for every column).

        >>> cfg = SchemaChangesConfig(approved=[ApprovedChange(node="a", change="drop")])
        >>> cfg.approves("a", "x", "drop"), cfg.approves("a", "x", "rename")
        (True, False)
        """
        return any(
            a.node.lower() == node.lower()
            and a.change == change
            and (a.column == "*" or a.column.lower() == column.lower())
            for a in self.approved
        )
