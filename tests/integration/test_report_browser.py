"""report.html in a real browser: Debian's headless chromium, driven by chromedriver.

Skipped, with the reason, when chromium or chromedriver is not installed
(scripts/install-system-deps.sh installs both from Debian). Nothing here downloads a browser
or a driver: selenium is handed the Debian binaries, so Selenium Manager never runs.
Screenshots and a printed PDF are kept under test-artifacts/ (ignored by git).
"""

from __future__ import annotations

import base64
import json
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resildrill.report import load_report, render_all

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "fixtures" / "report-example.json"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "Debian's chromium and chromium-driver are not installed "
        "(run scripts/install-system-deps.sh)",
        allow_module_level=True,
    )

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extras")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless chromium for the module, with console and network logging on."""
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",  # the tests run as root, where chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _requests(driver: Any, document: str) -> list[str]:
    """URLs that ``document`` asked for since the last call, from chromium's Network events.

    Filtered on the requesting document because the browser's own first tab (chrome://
    new-tab-page) keeps loading its resources while the report opens.
    """
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            params = message["params"]
            if params.get("documentURL") == document:
                urls.append(params["request"]["url"])
    return urls


def _errors(driver: Any) -> list[str]:
    """Console errors (and uncaught exceptions) since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _png_colours(png: bytes, step: int = 7) -> set[bytes]:
    """Distinct colours of a sample of an 8-bit RGB(A) PNG's pixels (stdlib only)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * channels
    prev, colours = bytearray(stride), set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):  # undo the PNG row filter (none, sub, up, average, paeth)
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        if row % step == 0:
            for x in range(0, width, step):
                colours.add(bytes(line[x * channels : x * channels + 3]))
        prev = line
    return colours


@pytest.fixture(scope="module")
def page(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The example report rendered by render_all and opened from disk."""
    run_dir = tmp_path_factory.mktemp("run")
    shutil.copy(EXAMPLE, run_dir / "report.json")
    render_all(load_report(run_dir), run_dir)
    url = (run_dir / "report.html").as_uri()
    browser.get("about:blank")
    browser.get_log("performance"), _errors(browser)  # start from empty logs
    browser.get(url)
    browser.url_opened = url
    return browser


def test_loads_without_console_errors_or_network(page: Any) -> None:
    """The page logs no console error and requests nothing but itself."""
    assert _errors(page) == []
    assert _requests(page, page.url_opened) == [page.url_opened]
    assert page.title.startswith("FAILED · ward-gateway-loss")


def test_one_band_per_fault_and_one_marker_per_recovered_fault(page: Any) -> None:
    """Chromium lays out one visible shaded band per fault and one marker per recovery."""
    from selenium.webdriver.common.by import By

    report = load_report(EXAMPLE)
    bands = page.find_elements(By.CSS_SELECTOR, ".fault-band")
    markers = page.find_elements(By.CSS_SELECTOR, ".recovery-marker")
    assert [b.get_attribute("data-fault-id") for b in bands] == [f.id for f in report.faults]
    recovered = [f.id for f in report.faults if f.recovery.recovered]
    assert [m.get_attribute("data-fault-id") for m in markers] == recovered
    for element in bands + markers:
        box = element.rect
        assert box["width"] > 0 and box["height"] > 100, box


def test_screenshot_is_not_blank(page: Any) -> None:
    """A full-page screenshot is kept as an artefact and shows more than a blank page."""
    height = page.execute_script("return document.documentElement.scrollHeight")
    assert height > 2000

    def capture(scale: float) -> bytes:
        clip = {"x": 0, "y": 0, "width": 1280, "height": height, "scale": scale}
        shot = page.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        return base64.b64decode(shot["data"])

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report-example.png").write_bytes(capture(1.0))
    # Decoding a full-size PNG in pure Python is slow: judge a fifth-scale copy instead.
    colours = _png_colours(capture(0.2), step=2)
    assert len(colours) > 20, f"screenshot looks blank: {len(colours)} colours"


def test_prints_to_pdf(page: Any) -> None:
    """The page prints (A4, backgrounds kept) to a PDF of a few pages, kept as an artefact."""
    result = page.execute_cdp_cmd(
        "Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True}
    )
    pdf = base64.b64decode(result["data"])
    assert pdf.startswith(b"%PDF")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report-example.pdf").write_bytes(pdf)
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert 2 <= pages <= 12, pages


def test_the_checks_can_fail(browser: Any, tmp_path: Path) -> None:
    """The console and network checks above do catch an error and a fetch when there is one."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<img src="http://127.0.0.1:9/blocked.png"><script>console.error("boom")</script>'
        "</body></html>"
    )
    browser.get_log("performance"), _errors(browser)
    browser.get(bad.as_uri())
    assert any("boom" in e for e in _errors(browser))
    assert "http://127.0.0.1:9/blocked.png" in _requests(browser, bad.as_uri())
