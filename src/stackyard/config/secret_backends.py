"""Secret managers a secret reference may name: AWS Secrets Manager and HashiCorp Vault.

``{secret: PROD_PG_PASSWORD, from: aws, name: prod/pg, key: password}`` reads the secret
``prod/pg`` from AWS Secrets Manager (its JSON key ``password``); ``from: vault`` reads a KV
version 2 secret at ``mount/path``. Both are configured the way their own tools are, from the
environment stackyard was given:

* AWS: ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` or
  ``AWS_ENDPOINT_URL``, and ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (else boto3's own
  credential chain: profile, instance role). Needs ``pip install 'stackyard[aws]'``.
* Vault: ``VAULT_ADDR`` and ``VAULT_TOKEN``. Needs ``pip install 'stackyard[vault]'``.

Errors say which backend, where and which name was looked up, and never carry a value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stackyard.errors import ConfigError, SecretBackendUnreachableError, SecretMissingError

BACKENDS = ("aws", "vault")
_LABELS = {"aws": "AWS Secrets Manager", "vault": "HashiCorp Vault"}


def _aws(environ: Mapping[str, str]) -> tuple[Any, str]:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ConfigError(
            "a secret is kept in AWS Secrets Manager, which needs boto3",
            hint="pip install 'stackyard[aws]'",
        ) from None
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    endpoint = environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or environ.get("AWS_ENDPOINT_URL")
    kwargs: dict[str, Any] = {
        "region_name": region,
        # a backend that is down fails in seconds, not after botocore's long default retries
        "config": Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2}),
    }
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    if environ.get("AWS_ACCESS_KEY_ID"):
        kwargs["aws_access_key_id"] = environ["AWS_ACCESS_KEY_ID"]
        kwargs["aws_secret_access_key"] = environ.get("AWS_SECRET_ACCESS_KEY")
        kwargs["aws_session_token"] = environ.get("AWS_SESSION_TOKEN")
    where = f"AWS Secrets Manager ({endpoint or 'region ' + region})"
    return boto3.client("secretsmanager", **kwargs), where


def _vault(environ: Mapping[str, str]) -> tuple[Any, str]:
    try:
        import hvac  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError(
            "a secret is kept in HashiCorp Vault, which needs hvac",
            hint="pip install 'stackyard[vault]'",
        ) from None
    address = environ.get("VAULT_ADDR")
    if not address:
        raise ConfigError(
            "a secret is kept in HashiCorp Vault, but VAULT_ADDR is not set",
            hint="export VAULT_ADDR=https://vault.example.com:8200 and VAULT_TOKEN=…",
        )
    return hvac.Client(url=address, token=environ.get("VAULT_TOKEN"), timeout=15), (
        f"HashiCorp Vault ({address})"
    )


def _split(name: str) -> tuple[str, str]:
    """A Vault name as mount point and path.

    >>> _split("secret/prod/pg")
    ('secret', 'prod/pg')
    """
    mount, _, path = name.strip("/").partition("/")
    if not path:
        raise ConfigError(
            f"Vault secret name '{name}' has no path", hint="write it as mount/path: secret/prod/pg"
        )
    return mount, path


def read_secret(
    backend: str, name: str, key: str | None, environ: Mapping[str, str], *, used_for: str
) -> str:
    """A secret's value from a secret manager.

    Args:
        backend: ``aws`` or ``vault``.
        name: the secret's name there (AWS secret id, Vault ``mount/path``).
        key: the JSON key (AWS) or field (Vault, default ``value``) to take.
        environ: the environment that configures the backend.
        used_for: what needs it, for messages.

    Raises:
        SecretMissingError: no such secret or key; the message says where it looked.
        SecretBackendUnreachableError: the backend did not answer.
        ConfigError: the backend's client library is not installed.
    """
    if backend == "aws":
        client, where = _aws(environ)
        text = _aws_get(client, where, name, used_for)
        if key is None:
            return text
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise SecretMissingError(
                f"secret '{name}' in {where} (for {used_for}) is not a JSON object, so it has "
                f"no key '{key}'",
                hint="drop `key:` to use the whole secret, or store it as JSON",
            )
        return _field(data, key, f"secret '{name}' in {where}", used_for)
    client, where = _vault(environ)
    mount, path = _split(name)
    data = _vault_get(client, where, mount, path, used_for)
    return _field(data, key or "value", f"secret '{name}' in {where}", used_for)


def write_secret(
    backend: str, name: str, value: str, environ: Mapping[str, str], key: str | None = None
) -> str:
    """Store a value in a secret manager, as a new secret or a new version of one.

    Returns:
        Where it was stored, in words (no value).

    Raises:
        SecretBackendUnreachableError: the backend did not answer; nothing was stored.
        ConfigError: the backend's client library is not installed or refused the write.
    """
    if backend == "aws":
        client, where = _aws(environ)
        from botocore.exceptions import BotoCoreError, ClientError

        text = json.dumps({key: value}) if key else value
        try:
            try:
                client.create_secret(Name=name, SecretString=text)
            except client.exceptions.ResourceExistsException:
                client.put_secret_value(SecretId=name, SecretString=text)
        except (BotoCoreError, ClientError) as exc:
            raise _aws_error(exc, where, name, "storing the private key") from None
        return f"secret '{name}' in {where}"
    client, where = _vault(environ)
    mount, path = _split(name)
    try:
        client.secrets.kv.v2.create_or_update_secret(
            path=path, mount_point=mount, secret={key or "value": value}
        )
    except _vault_errors() as exc:
        raise _vault_error(exc, where, name, "storing the private key") from None
    return f"secret '{name}' in {where}"


def _field(data: Mapping[str, Any], key: str, what: str, used_for: str) -> str:
    if key not in data:
        raise SecretMissingError(
            f"{what} (for {used_for}) has no key '{key}'; its keys: "
            f"{', '.join(sorted(map(str, data))) or '(none)'}",
            hint="fix `key:` in stackyard.yml, or add the key to the secret",
        )
    return str(data[key])


def _aws_get(client: Any, where: str, name: str, used_for: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = client.get_secret_value(SecretId=name)
    except (BotoCoreError, ClientError) as exc:
        raise _aws_error(exc, where, name, used_for) from None
    text = answer.get("SecretString")
    if text is None:
        raise SecretMissingError(
            f"secret '{name}' in {where} (for {used_for}) holds binary data, not a string",
            hint="store it as SecretString",
        )
    return str(text)


def _aws_error(exc: Exception, where: str, name: str, used_for: str) -> Exception:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            return SecretMissingError(
                f"secret '{name}' (for {used_for}) was not found; looked in: {where}, secret id "
                f"'{name}' (no such secret)",
                hint=f"create it: aws secretsmanager create-secret --name {name} --secret-string …",
            )
        return ConfigError(
            f"{where} refused secret '{name}' (for {used_for}): {code}",
            hint="check the credentials' permissions (secretsmanager:GetSecretValue, "
            "CreateSecret, PutSecretValue)",
        )
    return SecretBackendUnreachableError(
        f"secret '{name}' (for {used_for}): {where} could not be reached: {type(exc).__name__}",
        hint="check AWS_ENDPOINT_URL / AWS_REGION and the network, then retry",
    )


def _vault_get(client: Any, where: str, mount: str, path: str, used_for: str) -> Mapping[str, Any]:
    try:
        answer = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True
        )
    except _vault_errors() as exc:
        raise _vault_error(exc, where, f"{mount}/{path}", used_for) from None
    return dict(answer["data"]["data"])


def _vault_errors() -> tuple[type[Exception], ...]:
    import hvac  # type: ignore[import-not-found,unused-ignore]
    import requests

    return (hvac.exceptions.VaultError, requests.exceptions.RequestException)


def _vault_error(exc: Exception, where: str, name: str, used_for: str) -> Exception:
    kind = type(exc).__name__
    if kind == "InvalidPath":
        return SecretMissingError(
            f"secret '{name}' (for {used_for}) was not found; looked in: {where}, KV v2 path "
            f"'{name}' (no such secret)",
            hint=f"create it: vault kv put {name} value=…",
        )
    if kind in ("Forbidden", "Unauthorized"):
        return ConfigError(
            f"{where} refused secret '{name}' (for {used_for}): {kind}",
            hint="check VAULT_TOKEN and its policy",
        )
    return SecretBackendUnreachableError(
        f"secret '{name}' (for {used_for}): {where} could not be reached: {kind}",
        hint="check VAULT_ADDR and the network, then retry",
    )
