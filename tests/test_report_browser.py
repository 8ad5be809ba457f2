"""The report as a reader sees it: report.html in headless Chromium, every figure decoded, tables drawn."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sim.experiment import Experiment
from sim.report import write_report
from sim.scenario import Scenario
from sim.sweep import run_experiment

CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).exists()), ""
)
DRIVER = shutil.which("chromedriver") or ""


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
    run_experiment(exp, out=folder, engine="serial", quiet=True, report=False)
    return write_report(folder, quiet=True).html


@pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no Chromium/ChromeDriver could be installed here "
    "(.ci/run installs Debian's chromium and chromium-driver)",
)
def test_report_renders_in_headless_chromium(report_html: Path) -> None:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
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
