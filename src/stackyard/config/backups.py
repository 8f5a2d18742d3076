"""The ``backups:`` section of stackyard.yml: where backups go, how many are kept, and the
recovery point objective (RPO) that ``stackyard doctor`` checks.

Everything is optional; without the section backups go to ``.stackyard/backups`` and the doctor
only warns about a backup older than a day once one exists.

.. code-block:: yaml

    backups:
      dir: /mnt/backups/shop      # default: .stackyard/backups inside the project
      keep: 7                     # newest backups kept per target; older ones are deleted
      rpo_hours: 24               # the doctor reports a last backup older than this
"""

from __future__ import annotations

from pydantic import Field

from stackyard.config.base import StrictModel


class BackupsConfig(StrictModel):
    """Where backups are written, how many are kept, and how old the last one may be."""

    dir: str = Field(
        ".stackyard/backups",
        description="Folder for backups: relative to the project, or absolute.",
    )
    keep: int = Field(7, ge=1, le=1000, description="Newest backups kept per target.")
    rpo_hours: float = Field(
        24,
        gt=0,
        description="Recovery point objective: the most data, in hours, you accept to lose; "
        "`stackyard doctor` reports a last backup older than this.",
    )
