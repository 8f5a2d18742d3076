"""Orchestrator integrations: the project's schedules, retries and deadlines as Prefect flows
and deployments (:mod:`.prefect`) and Dagster definitions (:mod:`.dagster`).

This layer sits on top of the Context and nothing in stackyard imports it except the CLI's
``serve`` command; Prefect and Dagster are imported only inside these modules, lazily, so the
core install and ``stackyard run`` never need them (``pip install 'stackyard[prefect]'``).
"""
