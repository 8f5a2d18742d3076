"""A loaded project: stackyard.yml as read once, with where it lives and its secrets.

:class:`Project` is frozen. A command that changes stackyard.yml asks for
:meth:`Project.reloaded` afterwards and works on the new value; nothing is reassigned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stackyard.config.loader import find_project_file, load_project_config
from stackyard.config.model import ProjectConfig
from stackyard.config.secrets import Secrets
from stackyard.errors import UsageError, did_you_mean


@dataclass(frozen=True)
class Project:
    """One stackyard project as it was read.

    Attributes:
        config_file: the project's stackyard.yml.
        config: its validated contents.
        secrets: resolves ``{secret: NAME}`` references for this project.
    """

    config_file: Path
    config: ProjectConfig
    secrets: Secrets = field(compare=False)

    @classmethod
    def load(cls, path: Path, environ: Mapping[str, str] | None = None) -> Project:
        """Find and read a project.

        Args:
            path: the project folder, a folder inside it, or its stackyard.yml.
            environ: environment for secret lookup; default: ``os.environ``.

        Raises:
            ProjectNotFoundError: no stackyard.yml was found.
            ConfigError: stackyard.yml is invalid (the message lists every problem by line).
        """
        config_file = find_project_file(path)
        return cls(
            config_file, load_project_config(config_file), Secrets(config_file.parent, environ)
        )

    def reloaded(self) -> Project:
        """The project as stackyard.yml says now (same secrets)."""
        return Project(self.config_file, load_project_config(self.config_file), self.secrets)

    @property
    def project_dir(self) -> Path:
        """The project folder."""
        return self.config_file.parent

    @property
    def transform_dir(self) -> Path:
        """The dbt project folder."""
        return self.project_dir / self.config.transform.path

    def target_name(self, target: str | None) -> str:
        """The target to use: the one given, else ``defaults.target``.

        Raises:
            UsageError: the name is not a target in stackyard.yml.
        """
        name = target or self.config.defaults.target
        if name not in self.config.targets:
            known = sorted(self.config.targets)
            raise UsageError(
                f"unknown target '{name}'{did_you_mean(name, known)}",
                hint=f"targets in {self.config_file.name}: {', '.join(known)}",
            )
        return name
