"""Transformation: the dbt project in ``transform/``, run in process."""
