"""flow.html as a reader sees it, in headless Chromium: no console error, one lane label per node and one
arrow drawn per transmission of the frame, hover details and a click that selects a message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser import headless_chromium, needs_browser

from sim.analysis.flow import flow_view, write_views
from sim.config.scenario import Scenario
from sim.run.simulate import RunResult, simulate

pytestmark = needs_browser


@pytest.fixture(scope="module")
def run() -> RunResult:
    """A queue on a star with a lossy stretch and a consumer crash: data, control, drops, retries."""
    return simulate(
        Scenario(
            pattern="queue",
            duration="0.4s",
            warmup=0,
            seed=2,
            trace=True,
            topology={"name": "star", "params": {"n": 4}},
            links={"latency": "1ms"},
            broker={"node": "hub", "ack_timeout": "0.5s"},
            workload={"producers": ["h0"], "consumers": ["h1", "h2"], "rate": "200/s"},
            delivery={"guarantee": "at_least_once", "ack_timeout": "20ms"},
            faults=[
                {"at": "0.1s", "action": "loss", "target": "all", "p_gb": 0.2, "p_bg": 0.3, "for": "0.1s"},
                {"at": "0.15s", "action": "crash", "target": "h1", "for": "0.1s"},
            ],
        )
    )


@pytest.fixture(scope="module")
def driver():  # type: ignore[no-untyped-def]
    browser = headless_chromium("--window-size=1400,900", console=True)
    yield browser
    browser.quit()


def test_the_diagram_renders_every_lane_and_arrow(run: RunResult, driver, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    html, _ = write_views(run, tmp_path)
    frame = run.trace_frame()
    hops = frame[frame["event"] == "hop"]
    lanes = sorted(set(hops["node"]) | set(hops["peer"]))
    assert len(hops) > 400 and (hops["kind"] == "control").any() and (hops["end"] == "lost").any()
    assert (hops["retry_of"] >= 0).any()

    driver.get(html.as_uri())
    state = driver.execute_script(
        "const m = document.getElementById('flow');"
        "return [m.dataset.ready, +m.dataset.lanes, +m.dataset.arrows, +m.dataset.drawn,"
        " Array.from(document.querySelectorAll('.lane-label')).map(e => e.textContent),"
        " document.getElementById('canvas').width];"
    )
    ready, n_lanes, n_arrows, drawn, labels, width = state
    assert ready == "1" and width > 500
    assert n_lanes == len(lanes) and sorted(labels) == lanes
    assert n_arrows == drawn == len(hops)  # the whole span: every arrow drawn
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []

    # hover an arrow: its details appear; click: its message is selected and listed
    a = driver.execute_script(
        "const D = JSON.parse(document.getElementById('flow-data').textContent); return D.arrows[0];"
    )
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = driver.find_element("id", "canvas")
    point = driver.execute_script(
        "const c = document.getElementById('canvas'), r = c.getBoundingClientRect();"
        "const D = JSON.parse(document.getElementById('flow-data').textContent), a = arguments[0];"
        "const lane = (k) => 20 + (k + 0.5) * ((r.height - 28 - 20) / D.lanes.length);"
        "const x = (t) => (t - D.span[0]) / (D.span[1] - D.span[0]) * (r.width - 40) + 20;"
        "return [x((a[0] + a[1]) / 2) - r.width / 2, (lane(a[2]) + lane(a[3])) / 2 - r.height / 2];",
        a,
    )
    ActionChains(driver).move_to_element_with_offset(canvas, int(point[0]), int(point[1])).click().perform()
    tip = driver.execute_script("const t = document.getElementById('tip'); return [t.hidden, t.textContent];")
    assert tip[0] is False, "no details on hover"
    msg = int(re.match(r"\w+ message (-?\d+), transmission \d+\n", tip[1]).group(1))  # type: ignore[union-attr]
    assert msg in set(frame["msg_id"])
    assert driver.execute_script("return document.getElementById('flow').dataset.selected;") == str(msg)
    assert f"message {msg}:" in driver.find_element("id", "details").text
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []


def test_a_window_draws_only_what_is_under_way_in_it(run: RunResult, driver, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    html, _ = write_views(run, tmp_path, window=(0.1, 0.12), nodes=["h0"])
    view = flow_view(run, window=(0.1, 0.12), nodes=["h0"])
    frame = run.trace_frame()
    hops = frame[(frame["event"] == "hop") & ((frame["node"] == "h0") | (frame["peer"] == "h0"))]
    arrived = hops[hops["end_time"].notna()]
    under_way = int(((arrived["time"] <= 0.12) & (arrived["end_time"] >= 0.1)).sum())
    assert 0 < under_way <= len(view.arrows) <= under_way + int(hops["end_time"].isna().sum())
    driver.get(html.as_uri())
    lanes, arrows, drawn = driver.execute_script(
        "const m = document.getElementById('flow');"
        "return [+m.dataset.lanes, +m.dataset.arrows, +m.dataset.drawn];"
    )
    assert lanes == 2 and arrows == drawn == len(view.arrows)
    assert [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []
