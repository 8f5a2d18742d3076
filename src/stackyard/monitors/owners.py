"""Who is told when a table alerts: one rule for alerts, ``health`` and ``health show``.

In order, without repeats: the table's own ``owner`` (``monitors.tables.<table>.owner``),
the ``monitors.alerts.owners`` entries for the table, its model or its source, then the
source's ``owner``.
"""

from __future__ import annotations

from collections.abc import Sequence

from stackyard.config.model import ProjectConfig


def table_owners(
    project: ProjectConfig, relation: str, node: str, owner_keys: Sequence[str]
) -> tuple[str, ...]:
    """The owners of one table.

    Args:
        project: the project's configuration.
        relation: ``schema.table``.
        node: the name people know it by (a model's name, ``source.table``).
        owner_keys: names owners are declared under (the source name or the model name).

    Returns:
        Owners, most specific first, each once.
    """
    config = project.monitors
    own = config.for_table(relation, node).owner
    owners: list[str] = [own] if isinstance(own, str) else list(own or ())
    for name in (relation, node, *owner_keys):
        owners.extend(config.alerts.owners.get(name, ()))
    for name in owner_keys:
        source = project.sources.get(name)
        if source is not None and source.owner:
            owners.append(source.owner)
    return tuple(dict.fromkeys(owners))


def owner_keys(kind: str, node: str) -> tuple[str, ...]:
    """The names a stored table's owners are declared under, from its kind and node.

    >>> owner_keys("source", "app.orders"), owner_keys("model", "customer_orders")
    (('app',), ('customer_orders',))
    """
    if kind == "source":
        return (node.split(".", 1)[0],) if node else ()
    return (node,) if node else ()
