"""Secret references that name a secret manager: a password and a private key round-trip
through AWS Secrets Manager (moto's server, started here on a free port); a missing secret
or a backend that is down says where it looked and never shows a value. Vault is not
installed here: asking for it says what to install."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.config.base import SecretRef
from stackyard.config.secrets import Secrets
from stackyard.context import Context
from stackyard.errors import ConfigError, SecretBackendUnreachableError, SecretMissingError
from tests.infra.helpers import project

runner = CliRunner()
PASSWORD = "pg-Secret-4711"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def aws() -> Iterator[dict[str, str]]:
    """AWS Secrets Manager as moto's server answers it, and the environment that points at it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # moto keeps its backends per process: start every test from an empty account
    urllib.request.urlopen(
        urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST")
    ).close()
    try:
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "eu-west-1",
        }
    finally:
        server.stop()


def _client(env: dict[str, str]):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "secretsmanager",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_password_round_trips_through_aws(
    tmp_path: Path, aws: dict[str, str], pg_database: dict[str, object]
) -> None:
    _client(aws).create_secret(Name="prod/pg", SecretString=json.dumps({"password": PASSWORD}))
    (tmp_path / "stackyard.yml").write_text(
        "name: shop\ntargets:\n  dev: {type: duckdb}\n  prod:\n    type: postgres\n"
        f"    host: {pg_database['host']}\n    port: {pg_database['port']}\n"
        f"    user: {pg_database['user']}\n    database: {pg_database['database']}\n"
        "    sslmode: disable\n"
        "    password: {secret: PROD_PG_PASSWORD, from: aws, name: prod/pg, key: password}\n"
        "sources: {}\n"
    )
    context = Context(tmp_path, environ=aws)
    warehouse = context.warehouse("prod")
    assert warehouse.secret_env()["PROD_PG_PASSWORD"] == PASSWORD  # what dbt is given
    assert warehouse.dlt_destination_settings()["credentials"]["password"] == PASSWORD
    assert context.secrets.redact(f"password={PASSWORD}") == "password=***"
    # the whole connection path resolves it (the local server trusts, so it also connects)
    assert [tuple(r) for r in warehouse.query("select 1 as one").rows] == [(1,)]


def test_private_key_round_trips_through_aws(tmp_path: Path, aws: dict[str, str]) -> None:
    from cryptography.hazmat.primitives import serialization

    from stackyard.infra.snowflake import key_body

    path = project(tmp_path)
    result = runner.invoke(
        app,
        [
            "user",
            "add",
            "SVC_FIVETRAN",
            "--service",
            "--loader",
            "fivetran",
            "--key-backend",
            "aws",
            "--key-name",
            "prod/svc_fivetran",
            "-p",
            str(path),
        ],
        env=aws,
    )
    assert result.exit_code == 0, result.output
    assert "stored as secret 'prod/svc_fivetran' in AWS Secrets Manager" in result.output
    assert "PRIVATE KEY" not in result.output
    assert not (path / ".stackyard" / "keys").exists()

    def public_of_stored() -> str:
        pem = _client(aws).get_secret_value(SecretId="prod/svc_fivetran")["SecretString"]
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return key_body(public.decode())

    user = Context(path).access().declaration().user("SVC_FIVETRAN")
    assert user is not None and public_of_stored() == user.rsa_public_key

    rotated = runner.invoke(
        app,
        [
            "user",
            "rotate-key",
            "SVC_FIVETRAN",
            "-t",
            "prod",
            "--key-backend",
            "aws",
            "--key-name",
            "prod/svc_fivetran",
            "-p",
            str(path),
        ],
        env=aws,
    )
    assert rotated.exit_code == 0, rotated.output
    user = Context(path).access().declaration().user("SVC_FIVETRAN")
    assert user is not None and public_of_stored() == user.rsa_public_key_2


def test_missing_secret_says_where_it_looked(tmp_path: Path, aws: dict[str, str]) -> None:
    _client(aws).create_secret(Name="prod/pg", SecretString=json.dumps({"password": PASSWORD}))
    secrets = Secrets(tmp_path, environ=aws)
    ref = SecretRef.model_validate({"secret": "PG", "from": "aws", "name": "prod/nope"})
    with pytest.raises(SecretMissingError) as caught:
        secrets.resolve(ref, used_for="targets.prod.password")
    text = str(caught.value)
    assert "prod/nope" in text and aws["AWS_ENDPOINT_URL"] in text and "no such secret" in text
    wrong_key = SecretRef.model_validate(
        {"secret": "PG", "from": "aws", "name": "prod/pg", "key": "pwd"}
    )
    with pytest.raises(SecretMissingError) as caught:
        secrets.resolve(wrong_key, used_for="targets.prod.password")
    assert "has no key 'pwd'; its keys: password" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_a_backend_that_is_down_says_so_and_stores_nothing(tmp_path: Path) -> None:
    down = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_REGION": "eu-west-1",
    }
    ref = SecretRef.model_validate({"secret": "PG", "from": "aws", "name": "prod/pg"})
    with pytest.raises(SecretBackendUnreachableError) as caught:
        Secrets(tmp_path, environ=down).resolve(ref, used_for="targets.prod.password")
    assert down["AWS_ENDPOINT_URL"] in str(caught.value) and "prod/pg" in str(caught.value)
    (tmp_path / "p").mkdir()
    path = project(tmp_path / "p")
    before = (path / "stackyard.yml").read_text()
    result = runner.invoke(
        app,
        ["user", "add", "SVC_BI", "--service", "--key-backend", "aws", "-p", str(path)],
        env=down,
    )
    assert result.exit_code == 2
    assert "could not be reached" in result.output and "stackyard/shop/svc_bi" in result.output
    assert (path / "stackyard.yml").read_text() == before
    assert "PRIVATE KEY" not in result.output


def test_from_env_or_file_looks_only_there_and_vault_needs_its_client(tmp_path: Path) -> None:
    secrets = Secrets(tmp_path, environ={"PG": "from-env"})
    only_file = SecretRef.model_validate({"secret": "PG", "from": "file"})
    with pytest.raises(SecretMissingError) as caught:
        secrets.resolve(only_file, used_for="x")
    assert "environment variable" not in str(caught.value)
    assert secrets.resolve(SecretRef.model_validate({"secret": "PG", "from": "env"}), used_for="x")
    vault = SecretRef.model_validate({"secret": "PG", "from": "vault", "name": "secret/prod/pg"})
    with pytest.raises(ConfigError, match=r"stackyard\[vault\]"):
        Secrets(tmp_path, environ={"VAULT_ADDR": "http://127.0.0.1:1"}).resolve(vault, used_for="x")
