"""The rest_api source kind against a real local HTTP server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stackyard import Context
from stackyard.project import init_project
from tests.ingest.api_server import TOKEN, ApiState, make_customers, serve
from tests.secret_scan import SecretScan


@pytest.fixture()
def api() -> Iterator[tuple[ApiState, str]]:
    state = ApiState(customers=make_customers(35))
    with serve(state) as url:
        yield state, url


def project_for(tmp_path: Path, url: str, extra: str = "") -> Context:
    root = tmp_path / "p"
    init_project(root)
    config = (
        (root / "stackyard.yml")
        .read_text()
        .replace(
            "sources: {}\n",
            f"""sources:
  crm:
    kind: rest_api
    base_url: {url}
    auth: {{type: bearer, token: {{secret: CRM_TOKEN}}}}
    paginator: {{type: page_number, page_param: page, base_page: 1, total_path: total_pages}}
    retries: {{max_attempts: 3, backoff_seconds: 0.01, jitter_seconds: 0.01, count: 0}}
    endpoints:
      customers:
        path: /customers
        data_selector: data
        primary_key: id
        cursor: updated_at
        cursor_param: since
        initial_value: "2000-01-01T00:00:00Z"
{extra}""",
        )
    )
    (root / "stackyard.yml").write_text(config)
    return Context(root, environ={"CRM_TOKEN": TOKEN})


def test_pages_auth_and_incremental(
    api: tuple[ApiState, str], tmp_path: Path, secret_scan: SecretScan
) -> None:
    state, url = api
    ctx = project_for(tmp_path, url)
    secret_scan.secret(TOKEN)
    secret_scan.project(ctx.project_dir)
    first = ctx.run()
    secret_scan.output(str(first.to_dict()))
    assert first.ok, first.to_dict()
    assert {t.table: t.rows for load in first.loads for t in load.tables} == {"customers": 35}
    assert len([r for r in state.requests if "page=" in r]) == 4
    # dlt's naming turns lifetimeValue into lifetime_value
    assert ctx.sql("select count(*), sum(lifetime_value) from crm.customers").rows == (
        (35, sum(i * 10.5 for i in range(1, 36))),
    )
    # only rows updated since the last cursor come back, and they merge on the key
    state.customers[0]["updated_at"] = "2026-02-01T00:00:00Z"
    state.customers[0]["name"] = "renamed"
    state.requests.clear()
    second = ctx.run()
    assert {t.table: t.rows for load in second.loads for t in load.tables} == {"customers": 1}
    assert any("since=2026-01-01" in r for r in state.requests)
    assert ctx.sql("select count(*), count(distinct id) from crm.customers").rows == ((35, 35),)
    assert ctx.sql("select name from crm.customers where id = 1").rows == (("renamed",),)


def test_429_is_retried_then_succeeds(api: tuple[ApiState, str], tmp_path: Path) -> None:
    state, url = api
    state.fail_with_429 = 2
    result = project_for(tmp_path, url).run()
    assert result.ok
    assert sum(load.rows for load in result.loads) == 35


def test_persistent_500_fails_the_source_clearly(api: tuple[ApiState, str], tmp_path: Path) -> None:
    state, url = api
    state.always_500 = True
    result = project_for(tmp_path, url).run()
    load = result.loads[0]
    assert result.exit_code == 1 and load.status == "failed"
    assert "500" in (load.error or "")
    assert len(state.requests) == 3  # max_attempts


def test_wrong_token_and_malformed_page(api: tuple[ApiState, str], tmp_path: Path) -> None:
    state, url = api
    ctx = Context(project_for(tmp_path, url).project_dir, environ={"CRM_TOKEN": "wrong"})
    result = ctx.run()
    assert result.loads[0].status == "failed" and "401" in (result.loads[0].error or "")
    state.malformed_page = 2
    result = project_for(tmp_path / "again", url).run()
    assert result.loads[0].status == "failed"
    assert result.loads[0].source == "crm"
    assert "JSON" in (result.loads[0].error or "") or "Expecting" in (result.loads[0].error or "")


def test_unreachable_api(tmp_path: Path) -> None:
    result = project_for(tmp_path, "http://127.0.0.1:9/v1").run()
    assert result.loads[0].status == "failed"
    assert "connection refused at 127.0.0.1:9 (nothing listens there)" in (
        result.loads[0].error or ""
    )


def test_two_versions_of_a_key_keep_the_later_one(
    api: tuple[ApiState, str], tmp_path: Path
) -> None:
    state, url = api
    ctx = project_for(tmp_path, url)
    assert ctx.run().ok
    # An API listing a change log: customer 1 twice, the earlier version first.
    later = dict(state.customers[0], updated_at="2026-03-02T00:00:00Z", name="later")
    earlier = dict(state.customers[0], updated_at="2026-03-01T00:00:00Z", name="earlier")
    state.customers[:1] = [earlier, later]
    result = ctx.run()
    assert result.ok, result.to_dict()
    assert ctx.sql("select name from crm.customers where id = 1").rows == (("later",),)


def test_a_customer_without_an_id_is_rejected_and_the_others_load(
    api: tuple[ApiState, str], tmp_path: Path
) -> None:
    state, url = api
    ctx = project_for(tmp_path, url)
    nameless = dict(state.customers[1], id=None, name="no id", updated_at="2026-03-01T00:00:00Z")
    del state.customers[1]["id"]  # absent, not only null
    state.customers.append(nameless)
    result = ctx.run()
    assert result.ok, result.to_dict()
    (load,) = result.loads
    assert load.rejected == 2
    assert {t.table: t.rows for t in load.tables} == {"customers": 34}
    assert ctx.sql("select count(*), count(id) from crm.customers").rows == ((34, 34),)
    rejected = ctx.sql("select table_name, reason from crm._rejected_rows order by 1").rows
    assert rejected == (("customers", "no value for the key column id"),) * 2


def test_a_record_giving_a_field_twice_is_rejected_as_sent_and_the_others_load(
    api: tuple[ApiState, str], tmp_path: Path
) -> None:
    """Python's JSON reader keeps a name's last value: `"name": "x", "name": "y"` loaded
    "y", and the "x" the API sent was lost without a word; so did dlt with two fields it
    names alike (userName, user_name)."""
    state, url = api
    state.raw_rows = {
        2: '{"id": 2, "name": "x", "name": "y", "updated_at": "2026-01-01T00:00:00Z"}',
        3: '{"id": 3, "Name": "x", "NAME": "y", "updated_at": "2026-01-01T00:00:00Z"}',
        4: '{"id": 4, "address": {"city": "a", "city": "b"}, "updated_at": "2026-01-01T00:00:00Z"}',
        5: '{"id": 5, "userName": "x", "user_name": "y", "updated_at": "2026-01-01T00:00:00Z"}',
        6: '{"id": 6, "a": {"b": 1}, "a__b": 2, "updated_at": "2026-01-01T00:00:00Z"}',
    }
    ctx = project_for(tmp_path, url)
    result = ctx.run()
    assert result.ok, result.to_dict()
    (load,) = result.loads
    assert load.rejected == 5 and {t.table: t.rows for t in load.tables} == {"customers": 30}
    ids = ctx.sql("select id from crm.customers order by id").rows
    assert [int(r[0]) for r in ids] == [1, *range(7, 36)]
    rejected = ctx.sql("select column_name, reason, raw from crm._rejected_rows").rows
    assert sorted(r[0] for r in rejected) == ["NAME", "a__b", "city", "name", "user_name"]
    by_column = {r[0]: r for r in rejected}
    assert "appears twice in one object" in by_column["name"][1]
    assert "differ only in case" in by_column["NAME"][1]
    assert '"name": "x", "name": "y"' in by_column["name"][2]
    assert '{"city": "a", "city": "b"}' in by_column["city"][2]
    assert "'userName' and 'user_name' both load into the column" in by_column["user_name"][1]

    state.raw_rows = {}
    state.raw_answer = b'{"data": [{"id": 1}], "data": [{"id": 2}], "total_pages": 1}'
    state.customers[0]["updated_at"] = "2026-02-01T00:00:00Z"
    refused = ctx.run()
    assert not refused.ok
    assert "the field data appears twice" in str(refused.loads[0].error)


def test_a_number_no_column_holds_as_sent_rejects_its_record_naming_the_column(
    api: tuple[ApiState, str], tmp_path: Path
) -> None:
    """2**64 + 1 failed the whole source with dlt's "Integer exceeds 64-bit range" and 2**63
    with the warehouse's conversion error, neither naming a table, column or value; a decimal
    with more digits than a double keeps loaded rounded, and NaN as NULL, without a word."""
    state, url = api
    state.raw_rows = {
        2: '{"id": 2, "score": 18446744073709551617, "updated_at": "2026-01-01T00:00:00Z"}',
        3: '{"id": 3, "extra": {"n": 9223372036854775808}, "updated_at": "2026-01-01T00:00:00Z"}',
        4: '{"id": 4, "score": -9223372036854775808, "updated_at": "2026-01-01T00:00:00Z"}',
        5: '{"id": 5, "rate": 0.12345678901234567890, "updated_at": "2026-01-01T00:00:00Z"}',
        6: '{"id": 6, "rate": NaN, "updated_at": "2026-01-01T00:00:00Z"}',
        7: '{"id": 7, "rate": 0.30000000000000004, "updated_at": "2026-01-01T00:00:00Z"}',
    }
    ctx = project_for(tmp_path, url)
    result = ctx.run()
    assert result.ok, result.to_dict()
    (load,) = result.loads
    assert load.rejected == 4 and {t.table: t.rows for t in load.tables} == {"customers": 31}
    assert ctx.sql("select score from crm.customers where id = 4").rows == ((-(2**63),),)
    assert ctx.sql("select rate from crm.customers where id = 7").rows == ((0.30000000000000004,),)
    rejected = ctx.sql("select column_name, reason, raw from crm._rejected_rows order by 2").rows
    assert [r[:2] for r in rejected] == [
        ("extra__n", "extra__n is 9223372036854775808, wider than a 64-bit integer column holds"),
        ("rate", "rate is 0.12345678901234567890, more digits than a double-precision column "
         "keeps (it would load as 0.12345678901234568); the API would need to send it as a "
         "JSON string to keep it exact"),
        ("rate", "rate is nan, not a finite number"),
        ("score", "score is 18446744073709551617, wider than a 64-bit integer column holds"),
    ]  # fmt: skip
    assert '"rate": 0.12345678901234567890,' in rejected[1][2]


def test_an_empty_page_before_the_last_does_not_end_the_load(
    api: tuple[ApiState, str], tmp_path: Path
) -> None:
    """dlt stops at the first empty page: with page 2 of 5 empty, pages 3 to 5 were never
    asked for and 25 rows were lost, the run saying 'loaded 10 rows'."""
    state, url = api
    state.empty_pages = {2}
    ctx = project_for(tmp_path, url)
    result = ctx.run()
    assert result.ok, result.to_dict()
    assert {t.table: t.rows for t in result.loads[0].tables} == {"customers": 35}
    assert ctx.sql("select count(*) from crm.customers").rows == ((35,),)
    assert sum("page=" in r for r in state.requests) == 5, state.requests


def test_an_answer_is_read_in_the_charset_its_header_names(
    api: tuple[ApiState, str], tmp_path: Path
) -> None:
    """An API answering in ISO-8859-1, and saying so, loads its names as written; one that
    sends UTF-8 under a header with no charset (``text/plain``) is not read as Latin-1."""
    state, url = api
    page = (
        '{"data": [{"id": 1, "name": "Müller €", "updated_at": "2026-01-01T00:00:00Z"}], '
        '"total_pages": 1}'
    )
    state.content_type = "application/json; charset=ISO-8859-15"
    state.raw_answer = page.encode("iso-8859-15")
    ctx = project_for(tmp_path, url)
    result = ctx.run()
    assert result.ok, result.to_dict()
    assert ctx.sql("select name from crm.customers").rows == (("Müller €",),)

    state.content_type = "text/plain"
    state.raw_answer = page.replace("Müller", "Jürgen").replace("2026-01-01", "2026-02-01").encode()
    assert ctx.run().ok
    assert ctx.sql("select name from crm.customers").rows == (("Jürgen €",),)


def test_timestamps_in_other_offsets_are_placed_by_their_instant(
    api: tuple[ApiState, str], tmp_path: Path
) -> None:
    state, url = api
    state.customers[:] = [
        dict(state.customers[0], id=1, updated_at="2026-11-01T10:00:00+01:00"),
        dict(state.customers[1], id=2, updated_at="2026-11-01T08:00:00Z"),
    ]
    ctx = project_for(tmp_path, url)
    assert ctx.run().ok
    state.customers += [
        dict(state.customers[1], id=4, updated_at="2026-11-01T09:15:00Z"),
        dict(state.customers[1], id=5, updated_at="2026-11-01T09:45:00+00:00"),
    ]
    second = ctx.run()
    # Before: the cursor was the larger text, "…10:00:00+01:00" (09:00Z); the API returned
    # rows 4 and 5 and the load dropped both: "0 rows", on every run.
    assert {t.table: t.rows for load in second.loads for t in load.tables} == {"customers": 2}
    assert ctx.sql("select count(*) from crm.customers").rows == ((4,),)


def test_a_refused_connection_is_not_retried_request_by_request() -> None:
    # Each of the load's attempts retried a refused connection 4 times, 1 s to 8 s apart:
    # about 15 s an attempt, 49 s before a run failed on an API that was not running.
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

    from stackyard.config.model import RestRetries
    from stackyard.ingest.rest import retrying_session

    retry = retrying_session(RestRetries()).get_adapter("http://127.0.0.1").max_retries
    refused = NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    with pytest.raises(MaxRetryError):
        retry.increment("GET", "/v1/customers", error=refused)
    # a connection that timed out may be a blip: still tried again within the attempt
    again = retry.increment("GET", "/v1/customers", error=ConnectTimeoutError("timed out"))
    assert again.total == retry.total - 1
