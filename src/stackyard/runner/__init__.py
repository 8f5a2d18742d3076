"""Jobs that run a project: `stackyard run` and its history."""
