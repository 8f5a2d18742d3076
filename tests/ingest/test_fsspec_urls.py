"""filesystem sources on fsspec URLs (s3://, gs://, … configured the same way), shown with
fsspec's in-memory file system, which needs no server."""

from __future__ import annotations

import uuid
from pathlib import Path

from stackyard import Context
from stackyard.project import init_project


def test_memory_url_loads_and_rejects_like_a_local_folder(tmp_path: Path) -> None:
    import fsspec

    bucket = f"bucket-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    fs.pipe(f"/{bucket}/exports/orders_1.csv", b"id,amount\n1,10\n2,20\n")
    project = tmp_path / "p"
    init_project(project)
    text = (
        (project / "stackyard.yml")
        .read_text()
        .replace(
            "sources: {}\n",
            "sources:\n  remote:\n    kind: filesystem\n"
            f"    url: memory://{bucket}/exports\n"
            "    tables:\n      orders: {glob: 'orders_*.csv', primary_key: id}\n",
        )
    )
    (project / "stackyard.yml").write_text(text)
    ctx = Context(project)
    first = ctx.run()
    assert first.ok and first.loads[0].rows == 2
    # a second file with a row that no longer fits the integer column is kept, not dropped
    fs.pipe(f"/{bucket}/exports/orders_2.csv", b"id,amount\n3,30\n4,lots\n")
    second = ctx.run()
    load = second.loads[0]
    assert load.status == "loaded" and load.rows == 1 and load.rejected == 1
    assert ctx.sql("select id, amount from remote.orders order by id").rows == (
        (1, 10),
        (2, 20),
        (3, 30),
    )
    rejected = ctx.sql("select file, line, reason from remote._rejected_rows").rows
    assert rejected[0][:2] == ("orders_2.csv", 3) and "lots" in rejected[0][2]
