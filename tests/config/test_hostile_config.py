"""Config that can't blow up: every malformed stackyard.yml or secrets.toml gives exit 2 with
the file, the line and what was expected, in bounded time and memory, and no config error
ever shows a secret value."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.config import SecretRef, Secrets, load_project_config
from stackyard.errors import ConfigError

runner = CliRunner()
HEAD = "name: shop\ntargets:\n  dev: {type: duckdb}\n"

# 394 bytes that a naive loader expands to 10^9 values (the "billion laughs" file).
ALIAS_BOMB = HEAD + (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)


def _cli(path: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["status", "--project", str(path)])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (ALIAS_BOMB.encode(), r"stackyard\.yml:\d+: the aliases here expand to more than"),
        (
            HEAD.encode() + b"sources:\n  x: {kind: filesystem, url: caf\xe9}\n",
            r"stackyard\.yml:5: not UTF-8 text \(byte 0xe9",
        ),
        (
            HEAD.encode() + b"[a, b]: 1\n",
            r"stackyard\.yml:4: expected a name as the key, found a list",
        ),
        (
            HEAD.encode() + b"{a: 1}: 1\n",
            r"stackyard\.yml:4: expected a name as the key, found a mapping",
        ),
        (
            HEAD.encode() + b"x: " + b"[" * 5000 + b"]" * 5000 + b"\n",
            r"stackyard\.yml:4: nested more than 64",
        ),
        (
            HEAD.encode() + b"x: " + b"{a: " * 5000 + b"1" + b"}" * 5000 + b"\n",
            r"nested more than 64",
        ),
        (
            HEAD.encode() + b"x: !!python/name:os.system ''\n",
            r"stackyard\.yml:4: cannot read the value",
        ),
        (HEAD.encode() + b"x: !!int abc\n", r"stackyard\.yml:4: cannot read the value"),
        (
            HEAD.encode() + b"base: &b {kind: filesystem}\nsources:\n  x:\n    <<: *b\n",
            r"merge keys",
        ),
        (HEAD.encode() + b"x: \x00\n", r"not valid YAML: a character YAML does not allow"),
        (HEAD.encode() + b"x: [1, 2\n", r"not valid YAML"),
        (b"\xff\xfe\x00\x01binary", r"stackyard\.yml:1: not UTF-8"),
    ],
)
def test_malformed_stackyard_yml_is_exit_2_with_file_and_line(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    (tmp_path / "stackyard.yml").write_bytes(content)
    with pytest.raises(ConfigError, match=expected):
        load_project_config(tmp_path / "stackyard.yml")
    code, output = _cli(tmp_path)
    assert code == 2, output
    assert "unexpected error" not in output
    assert "stackyard.yml" in output


def test_a_few_aliases_are_still_fine(tmp_path: Path) -> None:
    (tmp_path / "stackyard.yml").write_text(
        HEAD + "  ci: &pg {type: postgres, user: u, database: d}\n  prod: *pg\n"
    )
    config = load_project_config(tmp_path / "stackyard.yml")
    assert config.targets["prod"] == config.targets["ci"]


@pytest.mark.parametrize(
    ("body", "secret"),
    [
        (
            "sources:\n  db:\n    kind: sql_database\n    connection: 5\n    tables: {t: {}}\n",
            None,
        ),
        (
            "  prod: {type: postgres, user: u, database: d, password: Sup3rS3cretPassw0rd}\n",
            "Sup3rS3cretPassw0rd",
        ),
        (
            "sources:\n  api:\n    kind: rest_api\n    base_url: https://x.test\n"
            "    auth: {type: bearer, token: tok_LIVE_abcdef123456}\n"
            "    endpoints: {e: {path: e}}\n",
            "tok_LIVE_abcdef123456",
        ),
        (
            "sources:\n  api:\n    kind: rest_api\n    base_url: https://x.test\n"
            "    headers: {Authorization: [Bearer, tok_LIVE_abcdef123456]}\n"
            "    endpoints: {e: {path: e}}\n",
            "tok_LIVE_abcdef123456",
        ),
        ("x: postgresql://bob:Sup3rS3cret@db.example.com/shop\n", "Sup3rS3cret"),
    ],
)
def test_config_errors_never_echo_a_secret(tmp_path: Path, body: str, secret: str | None) -> None:
    (tmp_path / "stackyard.yml").write_text(HEAD + body)
    with pytest.raises(ConfigError) as info:
        load_project_config(tmp_path / "stackyard.yml")
    if secret:
        assert secret not in str(info.value)
    code, output = _cli(tmp_path)
    assert code == 2
    if secret:
        assert secret not in output


def test_connection_url_with_password_is_refused_without_showing_it(tmp_path: Path) -> None:
    (tmp_path / "stackyard.yml").write_text(
        HEAD + "sources:\n  db:\n    kind: sql_database\n"
        "    connection: {secret: [postgresql://bob:Sup3rS3cret@db/shop]}\n    tables: {t: {}}\n"
    )
    code, output = _cli(tmp_path)
    assert code == 2
    assert "Sup3rS3cret" not in output


def _secrets(tmp_path: Path, content: bytes | None = None) -> Secrets:
    folder = tmp_path / ".stackyard"
    folder.mkdir(exist_ok=True)
    if content is not None:
        (folder / "secrets.toml").write_bytes(content)
        os.chmod(folder / "secrets.toml", 0o600)
    return Secrets(tmp_path, environ={})


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b'OTHER = "x"\nPG = ["a", "b"]\n',
            r"secrets\.toml:2: secret 'PG' \(for t\) is a list; expected a string",
        ),
        (b'[PG]\nuser = "a"\n', r"secrets\.toml:1: secret 'PG' \(for t\) is a table"),
        (b"PG = true\n", r"is a boolean; expected a string"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", r"secrets\.toml:\d+: not UTF-8 text"),
        (b"PG = \x00\n", r"not valid TOML"),
        (b'PG = "unterminated\n', r"not valid TOML: .*line 1"),
    ],
)
def test_odd_secrets_toml_says_what_is_wrong(tmp_path: Path, content: bytes, expected: str) -> None:
    secrets = _secrets(tmp_path, content)
    with pytest.raises(ConfigError, match=expected) as info:
        secrets.resolve(SecretRef(secret="PG"), used_for="t")
    assert info.value.exit_code == 2


def test_a_folder_in_place_of_secrets_toml(tmp_path: Path) -> None:
    secrets = _secrets(tmp_path)
    (tmp_path / ".stackyard" / "secrets.toml").mkdir()
    with pytest.raises(ConfigError, match="is a folder, expected a TOML file"):
        secrets.resolve(SecretRef(secret="PG"), used_for="t")


@pytest.mark.parametrize("project", ["x" * 5000, "a/" * 3000])
def test_an_impossible_project_path_is_exit_2(project: str) -> None:
    result = runner.invoke(app, ["status", "--project", project])
    assert result.exit_code == 2, result.output
    assert "unexpected error" not in result.output


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (
            "  shop_: {kind: filesystem, url: f, tables: {t: {glob: t.csv}}}\n",
            "not a valid source name",
        ),
        ("  shop__db: {kind: filesystem, url: f, tables: {t: {glob: t.csv}}}\n", "no double _"),
    ],
)
def test_source_names_dlt_would_rename_are_refused(
    tmp_path: Path, sources: str, expected: str
) -> None:
    """A source's name is its default schema and its pipeline's name: dlt would load shop_
    into shopx, so the name is refused rather than silently renamed."""
    (tmp_path / "stackyard.yml").write_text(HEAD + "sources:\n" + sources)
    with pytest.raises(ConfigError, match=expected):
        load_project_config(tmp_path / "stackyard.yml")


@pytest.mark.parametrize(
    ("schema", "loaded_into"), [("'Raw Data; x'", "raw_data_x"), ("RawSales", "raw_sales")]
)
def test_source_schemas_are_spelled_as_dlt_names_them(
    tmp_path: Path, schema: str, loaded_into: str
) -> None:
    """dlt loads 'Raw Data; x' into raw_data_x: stackyard creates, grants and monitors that
    same schema, never an empty one of the other spelling."""
    (tmp_path / "stackyard.yml").write_text(
        HEAD + f"sources:\n  f: {{kind: filesystem, url: f, schema: {schema}, "
        "tables: {t: {glob: t.csv}}}\n"
    )
    assert load_project_config(tmp_path / "stackyard.yml").dataset_for("f") == loaded_into


def test_a_dangling_link_in_place_of_secrets_toml(tmp_path: Path) -> None:
    secrets = _secrets(tmp_path)
    (tmp_path / ".stackyard" / "secrets.toml").symlink_to(tmp_path / "gone.toml")
    with pytest.raises(ConfigError, match="cannot be read"):
        secrets.resolve(SecretRef(secret="PG"), used_for="t")
