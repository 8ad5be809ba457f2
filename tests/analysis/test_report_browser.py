"""The report as a reader sees it: report.html in headless Chromium, every figure decoded, tables drawn;
and the same page parsed without a browser (embedded figures, tables, links, balanced tags), which runs
everywhere."""

from __future__ import annotations

import base64
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import headless_chromium, needs_browser

from sim.analysis.report import write_report
from sim.config.scenario import Scenario
from sim.sweep.experiment import Experiment
from sim.sweep.runner import run_experiment


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    base = Scenario(
        duration="1s",
        topology={"name": "star", "params": {"n": 3}},
        broker={"node": "hub"},
        workload={"rate": "50/s"},
    )
    exp = Experiment(
        "browser",
        base=base,
        grid={"pattern": ["point_to_point", "queue"], "links.loss": [0.0, 0.02]},
        replications=2,
    )
    run_experiment(exp, out=folder, engine="serial", quiet=True)
    return write_report(folder, quiet=True).html


@needs_browser
def test_report_renders_in_headless_chromium(report_html: Path) -> None:
    driver = headless_chromium()
    try:
        driver.get(report_html.as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt]);"
        )
        assert len(images) >= 3
        assert all(done and width > 100 for done, width, _ in images), images
        rows = driver.execute_script("return document.querySelectorAll('table.headline tbody tr').length;")
        assert rows == 4  # 2 patterns x 2 loss values
        title = driver.execute_script("return document.querySelector('h1').innerText;")
        assert title == "browser"
    finally:
        driver.quit()


# -- the same page without a browser: its structure, parsed ----------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Page(HTMLParser):
    """Collects what a reader's browser would need: images, tables, links, ids, and unclosed tags."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.open: list[str] = []
        self.mismatched: list[str] = []
        self.headline_rows = 0
        self.tables = 0
        self.h1 = ""
        self._in: list[str] = []  # class of each open table, "h1" while in the title

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.images.append(a)
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag == "table":
            self.tables += 1
            self._in.append(a.get("class", ""))
        elif tag == "tr" and self._in and "headline" in self._in[-1].split() and self.open[-1:] == ["tbody"]:
            self.headline_rows += 1
        if tag not in VOID:
            self.open.append(tag)
        if tag == "h1":
            self._in.append("h1")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.open or self.open[-1] != tag:
            self.mismatched.append(f"</{tag}> closes <{self.open[-1] if self.open else ''}>")
        else:
            self.open.pop()
        if tag in ("table", "h1") and self._in:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in[-1:] == ["h1"]:
            self.h1 += data


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", data[:16]
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_report_structure_without_a_browser(report_html: Path) -> None:
    page = _Page()
    page.feed(report_html.read_text(encoding="utf-8"))
    page.close()
    assert page.h1.strip() == "browser"
    assert page.open == [] and page.mismatched == [], (page.open, page.mismatched[:5])
    # every figure is embedded as a PNG that decodes to a real picture, with a text alternative
    assert len(page.images) >= 3
    for img in page.images:
        src = img.get("src", "")
        assert src.startswith("data:image/png;base64,"), src[:80]
        width, height = _png_size(base64.b64decode(src.split(",", 1)[1], validate=True))
        assert width > 100 and height > 100 and img.get("alt", "").strip()
    # tables: the headline has one body row per parameter point (2 patterns x 2 loss values)
    assert page.tables >= 2 and page.headline_rows == 4
    # links go to an anchor of the page, a file next to it, or the web
    for href in page.links:
        if href.startswith("#"):
            assert href[1:] in page.ids, href
        elif not href.startswith(("http://", "https://", "mailto:")):
            assert (report_html.parent / href.split("#")[0]).exists(), href
