"""Schema names are spelled as dlt spells them, with or without importing dlt."""

from __future__ import annotations

from dlt.common.normalizers.naming.snake_case import NamingConvention
from hypothesis import given
from hypothesis import strategies as st

from stackyard.config.model import _SNAKE_CASE, normalised_schema

names = st.text(alphabet="abcXYZ019_-+@ ", min_size=1, max_size=12).filter(str.strip)


@given(names)
def test_every_name_is_spelled_as_dlt_spells_it(name: str) -> None:
    assert normalised_schema(name) == NamingConvention().normalize_table_identifier(name)


@given(st.from_regex(_SNAKE_CASE, fullmatch=True))
def test_names_already_in_dlts_form_are_kept(name: str) -> None:
    assert NamingConvention().normalize_table_identifier(name) == name
