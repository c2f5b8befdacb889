"""report.html in a real browser: Debian's Chromium, headless, with the network turned off.

The page must load from its file:// URL alone (no request for anything), show the run's
counts, and render one figure per code with rates. A full-page screenshot is saved to
`$MRFBATCH_ARTIFACTS/report.png` (default build/artifacts/) for a person to look at.

Skipped, with the reason, where /usr/bin/chromium or /usr/bin/chromedriver is missing, unless
MRFBATCH_REQUIRE_BROWSER=1 (CI sets it after installing them): then it fails.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from mrfbatch.report import write_report
from mrfbatch.run_extraction import run_extraction

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CODES = ["27447", "99213", "J1885", "00000"]  # 00000 is in neither example file
FILES = """
    SELECT * FROM (VALUES
        ('alpha', 'examples/in-network-sample.json.gz', 'success', NULL, NULL, []::VARCHAR[],
         []::VARCHAR[], 2, 1.5, 4000, 90000, 0, 0, 0, 40, 12, 42, 46, 0, 0, 'alpha.log'),
        ('beta', 'examples/behavioral-sample.zip', 'success', NULL, NULL, []::VARCHAR[],
         []::VARCHAR[], 1, 1.25, 3000, 70000, 0, 0, 0, 30, 9, 37, 52, 0, 0, 'beta.log'),
        ('gone', 'http://127.0.0.1:9/gone.json.gz', 'failed', 'HTTP 404 Not Found', false,
         []::VARCHAR[], []::VARCHAR[], 1, 0.25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'gone.log'),
        ('half', 'http://127.0.0.1:9/half.json.gz', 'incomplete', NULL, NULL,
         ['1 of 1 remote provider-reference files could not be fetched'], []::VARCHAR[],
         1, 1.0, 2000, 50000, 0, 0, 0, 20, 4, 11, 0, 0, 1, 'half.log')
    ) AS t(network_id, url, status, error, retryable, incomplete, warnings, plans,
           duration_seconds, bytes_read, bytes_decoded, retries, resumes, restarts,
           items_seen, items_matched, rate_rows, provider_rows, unresolved_references,
           remote_references_failed, log_file)
"""


def browser_or_skip() -> Any:
    """Selenium's webdriver module, or a skip (a failure under MRFBATCH_REQUIRE_BROWSER=1)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    reason = ""
    if missing:
        reason = f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
    else:
        try:
            from selenium import webdriver
        except ImportError:
            reason = "selenium is not installed (pip install -e '.[test]')"
        else:
            return webdriver
    if os.environ.get("MRFBATCH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"MRFBATCH_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Chromium that can reach nothing: every host name fails, every proxied
    request goes to a closed port. The driver is given by path: Selenium Manager never runs."""
    webdriver = browser_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=127.0.0.1:9",
        "--window-size=1200,900",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def report_page(tmp_path: Path) -> tuple[Path, int]:
    """report.html of the two bundled examples with CODES and four files (one failed, one
    incomplete); and how many of CODES have rates, counted from the tables."""
    logging.disable(logging.CRITICAL)
    try:
        for network_id, name in (("alpha", "in-network-sample.json.gz"),
                                 ("beta", "behavioral-sample.zip")):  # fmt: skip
            run_extraction(str(ROOT / "examples" / name), tmp_path, network_id=network_id)
    finally:
        logging.disable(logging.NOTSET)
    tables = [tmp_path / n / "rates.parquet" for n in ("alpha", "beta")]
    codes_with_rates = {
        code for t in tables for code in pq.read_table(t).column("billing_code").to_pylist()
    } & set(CODES)
    con = duckdb.connect()
    con.execute(f"CREATE VIEW rates AS SELECT * FROM read_parquet({[str(t) for t in tables]})")
    con.execute(f"CREATE VIEW files AS {FILES}")
    manifest = {
        "extraction_run": "2025-03-01T12:00:00+00:00",
        "source_type": "csv",
        "source_input": "examples/plans.csv",
        "output_dir": str(tmp_path),
        "total_tasks": 4,
    }
    html = tmp_path / "report" / "report.html"
    write_report(con, manifest, CODES, html, tmp_path / "report" / "figures")
    return html, len(codes_with_rates)


def test_report_loads_offline_with_its_counts_and_figures(
    chromium: Any, report_page: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    html, expected_figures = report_page
    chromium.get(html.as_uri())

    assert chromium.execute_script("return document.readyState") == "complete"
    assert chromium.title == "mrfbatch report: csv examples/plans.csv"
    assert chromium.execute_script("return performance.getEntriesByType('resource').length") == 0
    cells = chromium.execute_script(
        "return Array.from(document.querySelectorAll('#run-summary tr'),"
        " tr => [tr.id, tr.querySelector('td').textContent])"
    )
    counts = dict(cells)
    assert {k: counts[k] for k in ("files-total", "files-success", "files-failed")} == {
        "files-total": "4",
        "files-success": "2",
        "files-failed": "1",
    }
    assert (counts["files-incomplete"], counts["files-not_run"]) == ("1", "0")
    assert counts["rate-rows"] == "90"  # 42 + 37 + 0 + 11
    listed = chromium.execute_script(
        "return Array.from(document.querySelectorAll('#not-done tbody tr'), tr => tr.innerText)"
    )
    assert len(listed) == 2 and "HTTP 404 Not Found" in listed[0] and "could not be" in listed[1]
    rendered = chromium.execute_script(
        "return Array.from(document.querySelectorAll('#figures figure > svg'))"
        ".filter(s => { const r = s.getBoundingClientRect(); return r.width > 0 && r.height > 0;"
        " }).length"
    )
    assert rendered == expected_figures == 3

    shot = artifacts() / "report.png"
    shot.write_bytes(full_page_png(chromium))
    with capsys.disabled():
        print(f"\nreport screenshot: {shot.resolve()}")


def artifacts() -> Path:
    given = os.environ.get("MRFBATCH_ARTIFACTS")
    folder = Path(given) if given else ROOT / "build" / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def full_page_png(driver: Any) -> bytes:
    """The whole page, not just the window: Chrome's DevTools capture beyond the viewport."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    return base64.b64decode(shot["data"])
