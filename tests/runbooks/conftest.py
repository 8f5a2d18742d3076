"""The built example project shared with the lineage tests (evolve and incidents use it)."""

from tests.lineage.conftest import built_example, example  # noqa: F401
