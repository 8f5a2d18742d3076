"""Property: any stackyard.yml or secrets.toml, however broken or hostile, is either accepted
or refused with a ConfigError (exit 2 and a message naming the file), in bounded time and
memory; never another exception, never a traceback."""

from __future__ import annotations

import os
import string
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.config import SecretRef, Secrets, load_project_config
from stackyard.errors import ConfigError
from tests.fuzz.conftest import examples

runner = CliRunner()
VALID = (
    "name: shop\ntargets:\n  dev: {type: duckdb}\nsources:\n  app:\n    kind: sql_database\n"
    "    connection: sqlite:///app.sqlite\n    tables: {orders: {primary_key: id}}\n"
)
KEYS = [
    "name",
    "targets",
    "sources",
    "access",
    "monitors",
    "defaults",
    "transform",
    "type",
    "kind",
    "tables",
    "dev",
    "prod",
    "duckdb",
    "postgres",
    "password",
    "secret",
    "<<",
    "people",
    "roles",
    "grants",
    "PUBLIC",
    "select",
    "x" * 300,
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(KEYS),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), children, max_size=5),
    ),
    max_leaves=40,
)
# Text that is mostly YAML syntax, to reach the parser's corners.
yaml_chars = st.text(
    alphabet=string.ascii_letters + string.digits + " \n\t:-[]{}&*!|>'\"#%@`,?<=\\\x00\x85\u2028é",
    max_size=400,
)


def _load(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "stackyard.yml"
    path.write_bytes(content)
    try:
        load_project_config(path)
    except ConfigError as exc:
        assert "stackyard.yml" in exc.message, exc.message
        assert exc.exit_code == 2


@settings(max_examples=examples(40))
@given(data=documents)
def test_any_yaml_document(tmp_path_factory, data) -> None:  # type: ignore[no-untyped-def]
    text = yaml.safe_dump({"name": "shop", "targets": {"dev": {"type": "duckdb"}}, "x": data})
    _load(tmp_path_factory.mktemp("c"), text.encode())
    _load(tmp_path_factory.mktemp("c"), yaml.safe_dump(data).encode())


@settings(max_examples=examples(80))
@given(text=yaml_chars)
def test_any_yaml_ish_text(tmp_path_factory, text: str) -> None:  # type: ignore[no-untyped-def]
    _load(tmp_path_factory.mktemp("c"), text.encode("utf-8", errors="surrogatepass"))
    _load(tmp_path_factory.mktemp("c"), (VALID + text).encode("utf-8", errors="surrogatepass"))


@settings(max_examples=examples(60))
@given(blob=st.binary(max_size=300), cut=st.integers(min_value=0, max_value=len(VALID)))
def test_any_bytes_and_truncations(tmp_path_factory, blob: bytes, cut: int) -> None:  # type: ignore[no-untyped-def]
    _load(tmp_path_factory.mktemp("c"), blob)
    _load(tmp_path_factory.mktemp("c"), VALID.encode()[:cut] + blob)


@settings(max_examples=examples(8))
@given(depth=st.integers(min_value=1, max_value=20_000), aliases=st.integers(1, 12))
def test_deep_nesting_and_alias_chains(tmp_path_factory, depth: int, aliases: int) -> None:  # type: ignore[no-untyped-def]
    nested = "x: " + "[" * depth + "]" * depth + "\n"
    _load(tmp_path_factory.mktemp("c"), (VALID + nested).encode())
    chain = "a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, aliases)
    )
    _load(tmp_path_factory.mktemp("c"), (VALID + chain).encode())


@settings(max_examples=examples(20))
@given(text=yaml_chars)
def test_cli_answers_exit_0_1_or_2_with_a_message(tmp_path_factory, text: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("p")
    (root / "stackyard.yml").write_text(VALID + text, encoding="utf-8", errors="surrogatepass")
    result = runner.invoke(app, ["policy", "check", "-p", str(root)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output and "unexpected error" not in result.output
    if result.exit_code == 2:
        assert "stackyard.yml" in result.output


@settings(max_examples=examples(80))
@given(
    content=st.one_of(
        st.binary(max_size=200), yaml_chars.map(lambda t: t.encode("utf-8", "surrogatepass"))
    )
)
def test_any_secrets_toml(tmp_path_factory, content: bytes) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("s")
    (root / ".stackyard").mkdir()
    path = root / ".stackyard" / "secrets.toml"
    path.write_bytes(b'PG = "ok"\n' + content)
    os.chmod(path, 0o600)
    try:
        value = Secrets(root, environ={}).resolve(SecretRef(secret="PG"), used_for="t")
    except ConfigError as exc:  # SecretMissingError is one too
        assert "secrets.toml" in exc.message
    else:
        assert isinstance(value, str)
