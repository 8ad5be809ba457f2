"""Headless Chromium for the browser tests (the report and the flow diagram): Debian's chromium and
chromium-driver, which `.ci/run` installs when missing; the tests are skipped, saying why, without them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).exists()), ""
)
DRIVER = shutil.which("chromedriver") or ""

needs_browser = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no Chromium/ChromeDriver could be installed here "
    "(.ci/run installs Debian's chromium and chromium-driver)",
)


def headless_chromium(*extra: str, console: bool = False) -> Any:
    """A selenium driver of headless Chromium (``extra`` flags added; ``console``: keep the page's log)."""
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
        *extra,
    ):
        options.add_argument(flag)
    if console:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=options)
