"""The ``backfills:`` section of stackyard.yml: how long a backfill's pre-images are kept.

A backfill copies the rows it overwrites (its *pre-images*) so that
``stackyard backfill rollback ID`` can put them back. They cost space, so they are dropped once
the backfill has succeeded, passed validation and is older than ``preimage_days``: after every
successful backfill, and on ``stackyard backfill prune``. A failed or unfinished backfill keeps
its pre-images (a resume needs them to stay the state from before it began).

.. code-block:: yaml

    backfills:
      preimage_days: 7     # default; 0 drops them as soon as the backfill succeeds
"""

from __future__ import annotations

from pydantic import Field

from stackyard.config.base import StrictModel


class BackfillsConfig(StrictModel):
    """How long the copies a backfill keeps for its rollback are kept."""

    preimage_days: float = Field(
        7,
        ge=0,
        le=3650,
        description="Days a successful backfill's pre-images are kept for `backfill rollback`; "
        "0 drops them as soon as it succeeds and validates.",
    )
