"""The HTML report: self-contained, and drawn by headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stackyard import Context
from stackyard.console import CaptureConsole
from stackyard.monitors.suite import monitor_run
from tests.monitors.conftest import break_orders, make_shop, seed_volume_history, today_utc

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of the shop after its orders source was broken."""
    from datetime import timedelta

    tmp = tmp_path_factory.mktemp("report")
    root = make_shop(tmp / "shop", hook_url="http://127.0.0.1:9/unused")
    ctx = Context(root)

    def monitor(run: object) -> None:
        monitor_run(
            project=ctx.config,
            project_dir=ctx.project_dir,
            transform_dir=ctx.transform_dir,
            warehouse=ctx.warehouse(),
            run=run,  # type: ignore[arg-type]
            console=CaptureConsole(),
        )

    monitor(ctx.run())
    seed_volume_history(ctx.warehouse(), skip=("app.orders",))
    today = today_utc()
    break_orders(root, drop=today - timedelta(days=3), duplicate=today - timedelta(days=5))
    monitor(ctx.run())
    out = ctx.monitoring().report(out=tmp / "report.html")
    ctx.close()
    return out


def test_the_report_is_one_self_contained_file(report_file: Path) -> None:
    text = report_file.read_text()
    # nothing fetched from anywhere: no external scripts, styles, images or fonts
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "@import" not in text and "url(" not in text
    for section in (
        "Table health",
        "Lineage",
        "Volume",
        "Freshness",
        "Null-rate changes",
        "dbt test history",
        "Run history",
    ):
        assert f"<h2>{section}</h2>" in text


def test_the_health_table_gives_the_rows_and_band_health_judged(report_file: Path) -> None:
    """It gave the chart's last point, today's rows still arriving and never judged, with
    that day's band to three decimals (73.668–167), beside health's 101–231."""
    import json

    from stackyard.monitors.anomaly.stats import whole_rows_band

    text = report_file.read_text()
    found = re.search(
        r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S
    )
    assert found, text[:500]
    data = json.loads(found.group(1).replace("<\\/", "</"))
    with Context(report_file.parent / "shop") as ctx:
        health = {t.table: t.volume for t in ctx.monitoring().health().tables}
    judged = [t for t in data["tables"] if t["judged"] is not None]
    assert len(judged) >= 3
    for table in judged:
        volume = health[table["table"]]
        assert volume is not None and volume.value is not None
        assert table["judged"]["rows"] == f"{volume.value:,.0f}"
        assert table["judged"]["band"] == whole_rows_band(volume.lower, volume.upper)
    assert "judged.band" in text and "last.lower" not in text


@pytest.mark.browser
def test_chromium_draws_the_charts_and_the_red_node(report_file: Path, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"headless Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    dom = subprocess.run(
        [*flags, "--dump-dom", report_file.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    drawn = re.search(r'data-charts-drawn="(\d+)"', dom)
    assert drawn and int(drawn.group(1)) >= 5, dom[:2000]
    # the volume charts drew their band, line and anomaly markers
    assert dom.count('class="band"') >= 3
    assert dom.count('class="line"') >= 3
    assert 'class="anomaly"' in dom
    # the lineage graph: app.orders is a red node, products a green one
    node = re.search(
        r'<g class="node" data-status="(\w+)" data-relation="app.orders"><rect[^>]*fill="([^"]+)"',
        dom,
    )
    assert node and node.groups() == ("anomaly", "#d64545")
    assert 'data-relation="files.products"><rect' in dom
    assert dom.count('class="edge"') >= 4
    assert 'class="cell-fail"' in dom  # the failing unique test in the test history

    shot = tmp_path / "report.png"
    subprocess.run(
        [*flags, "--window-size=1400,2400", f"--screenshot={shot}", report_file.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report.png")
