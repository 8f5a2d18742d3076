"""Reading dbt_project.yml: a file dbt cannot read either is a config error naming where."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.errors import ConfigError
from stackyard.transform.dbt_project import read_dbt_project


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "name: [broken\n  profile: x\n",
            ":2:10: not valid YAML: expected ',' or ']', but got ':' (while parsing a flow "
            "sequence begun at line 1, column 7)",
        ),
        ("name: shop\n\tprofile: x\n", ":2:1: not valid YAML: found character '\\t'"),
        ("name: shop\nprofile: \x00\n", ": not valid YAML: a character YAML does not allow"),
        ("- a list\n", " holds a list, not a mapping of dbt project settings"),
    ],
)
def test_a_file_dbt_cannot_read_is_a_config_error_naming_it(
    tmp_path: Path, text: str, said: str
) -> None:
    path = tmp_path / "dbt_project.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_dbt_project(tmp_path)
    assert caught.value.message.startswith(f"{path}{said}"), caught.value.message
    assert caught.value.hint and f"fix {path}" in caught.value.hint


def test_a_missing_or_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the transform folder is not a dbt project"):
        read_dbt_project(tmp_path)
    (tmp_path / "dbt_project.yml").write_text("")
    assert read_dbt_project(tmp_path) == {}
    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: p\n")
    assert read_dbt_project(tmp_path) == {"name": "shop", "profile": "p"}
