"""A failing file source reports the real cause (DuckDB's message, with the file and line),
never the StopIteration it was raised inside, nor a megabyte-long offending row."""

from __future__ import annotations

from pathlib import Path

from stackyard import Context
from stackyard.project import init_project


def _run(tmp_path: Path, name: str, content: bytes) -> str:
    root = tmp_path / "p"
    init_project(root)
    (root / "sources" / "files").mkdir(parents=True)
    (root / "sources" / "files" / name).write_bytes(content)
    text = (
        (root / "stackyard.yml")
        .read_text()
        .replace(
            "sources: {}\n",
            f"sources:\n  f:\n    kind: filesystem\n    url: sources/files\n"
            f"    tables: {{t: {{glob: '{name}'}}}}\n",
        )
    )
    (root / "stackyard.yml").write_text(text)
    result = Context(root).run()
    (load,) = result.loads
    assert load.status == "failed"
    return load.error or ""


def test_malformed_jsonl_names_the_file_and_the_problem(tmp_path: Path) -> None:
    error = _run(tmp_path, "bad.jsonl", b'{"id": 1, "a": "x"}\n{"id": 2, "a": \n')
    assert "StopIteration" not in error
    assert "Malformed JSON" in error and "bad.jsonl" in error, error


def test_oversized_csv_field_says_the_line_is_too_long(tmp_path: Path) -> None:
    error = _run(tmp_path, "big.csv", b"id,a\n1," + b"x" * 3_000_000 + b"\n")
    assert "StopIteration" not in error
    assert "Maximum line size" in error and "big.csv" in error, error
    assert "xxxxxxxxxx" not in error  # the offending row is not echoed
    assert len(error) < 1000
