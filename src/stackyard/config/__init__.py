"""stackyard.yml: its models, its loader and secret resolution."""

from stackyard.config.base import SecretRef
from stackyard.config.loader import PROJECT_FILE, find_project_file, load_project_config
from stackyard.config.model import ProjectConfig
from stackyard.config.secrets import Secrets

__all__ = [
    "PROJECT_FILE",
    "ProjectConfig",
    "SecretRef",
    "Secrets",
    "find_project_file",
    "load_project_config",
]
