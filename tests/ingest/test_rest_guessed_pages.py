"""A rest_api endpoint without a paginator: dlt's guess is kept only where it cannot load a
page twice or miss one (stackyard.ingest.rest_pages), against a real local HTTP server."""

from __future__ import annotations

from pathlib import Path

from stackyard import Context
from stackyard.project import init_project
from tests.ingest.api_server import TOKEN, ApiState, make_customers, serve


def project_without_paginator(root: Path, url: str, paginator: str = "") -> Context:
    init_project(root)
    config = (root / "stackyard.yml").read_text()
    source = f"""sources:
  crm:
    kind: rest_api
    base_url: {url}
    auth: {{type: bearer, token: {{secret: CRM_TOKEN}}}}
    retries: {{max_attempts: 2, backoff_seconds: 0.01, jitter_seconds: 0.01, count: 0}}
    endpoints:
      customers:
        path: /customers
        data_selector: data
        primary_key: id
{paginator}"""
    (root / "stackyard.yml").write_text(config.replace("sources: {}\n", source))
    return Context(root, environ={"CRM_TOKEN": TOKEN})


def test_pages_numbered_from_one_are_each_read_once(tmp_path: Path) -> None:
    # dlt alone guessed pages counted from 0: page 1 was read twice and page 4 never.
    state = ApiState(customers=make_customers(35))
    with serve(state) as url:
        ctx = project_without_paginator(tmp_path / "p", url)
        result = ctx.run()
    assert result.ok, result.to_dict()
    assert [r.split("?")[-1] for r in state.requests] == [
        "/v1/customers",
        "page=2",
        "page=3",
        "page=4",
    ]
    assert {t.table: t.rows for load in result.loads for t in load.tables} == {"customers": 35}
    assert ctx.sql("select count(*), count(distinct id), max(id) from crm.customers").rows == (
        (35, 35, 35),
    )


def test_auto_is_the_same_guess(tmp_path: Path) -> None:
    state = ApiState(customers=make_customers(12))
    with serve(state) as url:
        ctx = project_without_paginator(tmp_path / "p", url, "        paginator: {type: auto}\n")
        result = ctx.run()
    assert result.ok, result.to_dict()
    assert ctx.sql("select count(*), count(distinct id) from crm.customers").rows == ((12, 12),)


def test_a_page_count_without_the_page_number_is_not_guessed(tmp_path: Path) -> None:
    state = ApiState(customers=make_customers(35), paging="total_only")
    with serve(state) as url:
        ctx = project_without_paginator(tmp_path / "p", url)
        result = ctx.run()
    load = result.loads[0]
    assert result.exit_code == 1 and load.status == "failed"
    error = load.error or ""
    assert "sources.crm.endpoints.customers" in error
    assert "whether its pages start at 0 or 1 is unknown" in error
    assert "base_page: 1, total_path: total_pages" in error
    assert len(state.requests) == 1  # nothing more was asked, nothing loaded


def test_a_guess_that_brings_back_the_same_page_fails_instead_of_looping(tmp_path: Path) -> None:
    state = ApiState(customers=make_customers(35), paging="cursor_ignored")
    with serve(state) as url:
        ctx = project_without_paginator(tmp_path / "p", url)
        result = ctx.run()
    load = result.loads[0]
    assert result.exit_code == 1 and load.status == "failed"
    assert "with the same page as the request before it" in (load.error or "")
    assert "set paginator:" in (load.error or "")
    assert len(state.requests) == 2
