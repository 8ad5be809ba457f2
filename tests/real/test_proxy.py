"""The latency proxy: a measured delivery pays its delay on each of the two legs, as sim's links do."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.real.fit import Profile
from sim.real.load import LoadSpec
from sim.real.measure import measure
from sim.real.predict import observe, scenario_for
from sim.real.proxy import LatencyProxy
from sim.real.servers import Server
from sim.run.simulate import simulate

pytestmark = pytest.mark.real

DELAY = 0.005


def test_proxy_adds_its_delay_once_per_leg_and_sim_predicts_the_same(nats: Server, tmp_path: Path) -> None:
    """Through a 5 ms proxy, the publish leg and the delivery leg each pay 5 ms: the measured p50 rises by
    10 ms within 3 ms (a loaded machine's scheduling), and sim with 5 ms more on each link says the same
    within 1 ms."""
    spec = LoadSpec("nats", nats.url, rate=100.0, duration=1.0)
    direct = observe(measure(spec)).p50
    with LatencyProxy(nats.port, DELAY) as proxy:
        slow = observe(measure(LoadSpec("nats", proxy.url("nats"), rate=100.0, duration=1.0))).p50
    assert slow - direct == pytest.approx(2 * DELAY, abs=0.003)

    Profile(
        {"service": {"dist": "lognormal", "mean": 0.0001, "cv": 1.0}, "persist": 0.0, "servers": 1},
        {"dist": "lognormal", "mean": 0.0005, "cv": 0.5},
        {"broker": "nats"},
    ).write(tmp_path / "p.toml")
    base = scenario_for(tmp_path / "p.toml", spec)
    window = {"at": 0.0, "action": "latency", "target": "all", "add": DELAY, "for": spec.duration - 0.01}
    plain = simulate(base).summary["latency_p50"]
    added = simulate(base.with_updates({"faults": [window]})).summary["latency_p50"]
    assert added - plain == pytest.approx(2 * DELAY, abs=0.001)


def test_proxy_stops_its_thread(nats: Server) -> None:
    proxy = LatencyProxy(nats.port).start()
    proxy.stop()
    assert proxy._thread is not None and not proxy._thread.is_alive()
