"""Stability and completeness of a run: overloaded runs are flagged, stable ones are not, figures cover the
measured window [warmup, duration) and not the drain, and ``sim simulate`` says so in one warning line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.cli.main import main
from sim.config.scenario import Scenario
from sim.core.context import SimContext
from sim.run.build import topology_search_path
from sim.run.metrics import METRICS
from sim.run.simulate import simulate
from sim.run.stability import SATURATED, STABILITY_DOCS, Window, judge, warning
from sim.sweep.runner import load_experiment

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ("stable", "backlog_slope", "utilization_max", "work_left", "work_left_share")


def mm1(rho: float, *, seed: int = 1, duration: float = 100.0, **updates: Any) -> Scenario:
    """An M/M/1 queue: Poisson arrivals at 100·rho/s into a broker queue, one consumer with exponential
    service of mean 10 ms and prefetch 1 (so the backlog waits in the broker queue)."""
    return Scenario(
        pattern="queue",
        duration=duration,
        warmup=duration / 10,
        seed=seed,
        topology={"name": "star", "params": {"n": 2}},
        links={"latency": 0},
        nodes={"service": {"dist": "exponential", "mean": "10ms"}},
        workload={"producers": 1, "consumers": 1, "rate": 100.0 * rho},
        delivery={"guarantee": "at_most_once"},
        broker={"node": "hub", "consumer_ack": "manual", "prefetch": 1},
    ).with_updates(updates)


# the flagship comparison's event_driven point at 5 % link loss, in its quick mode, taken from the script
# itself: duplicates re-emit downstream events and the broker saturates
_FLAGSHIP = load_experiment(ROOT / "experiments" / "compare_patterns.py")
FLAGSHIP_EVENT_DRIVEN_5PCT = _FLAGSHIP.base.with_updates(
    {**_FLAGSHIP.quick, "pattern": "event_driven", "links.loss": 0.05}
)


def test_every_summary_has_the_figures() -> None:
    s = simulate(mm1(0.5, duration=10.0)).summary
    assert set(FIGURES) <= set(METRICS) and set(FIGURES) == set(STABILITY_DOCS)
    assert all(isinstance(s[name], float) for name in FIGURES)


@pytest.mark.parametrize("rho", [0.5, 0.7])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_stable_queue_is_not_flagged(rho: float, seed: int) -> None:
    s = simulate(mm1(rho, seed=seed)).summary
    assert s["stable"] == 1.0
    assert s["utilization_max"] == pytest.approx(rho, abs=0.06)  # the consumer's busy fraction
    assert abs(s["backlog_slope"]) * 90 < 10  # no trend worth a message per 9 s
    assert s["work_left_share"] < 0.01


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_overloaded_queue_is_flagged(seed: int) -> None:
    s = simulate(mm1(1.2, seed=seed)).summary
    assert s["stable"] == 0.0
    assert s["utilization_max"] >= SATURATED
    assert s["backlog_slope"] == pytest.approx(120 - 100, rel=0.3)  # arrivals minus services, msg/s
    assert s["work_left"] > 1000 and s["work_left_share"] > 0.1


def test_the_flagship_overload_is_flagged() -> None:
    s = simulate(FLAGSHIP_EVENT_DRIVEN_5PCT.with_updates({"drain": "1s"})).summary  # judged at duration
    assert s["stable"] == 0.0
    assert s["backlog_slope"] > 100
    assert s["work_left"] > 1000


def test_the_flagship_overload_is_flagged_through_a_broker_crash() -> None:
    crash = [{"at": "3.5s", "action": "crash", "target": "h1_1", "for": "1s"}]
    s = simulate(FLAGSHIP_EVENT_DRIVEN_5PCT.with_updates({"faults": crash, "drain": "1s"})).summary
    assert s["utilization_max"] < SATURATED  # the crash idles the broker: growth alone flags it
    assert s["stable"] == 0.0


def test_a_fault_transient_is_not_instability() -> None:
    # the consumer is down for 2 s in a stable queue: the backlog piles up, then drains after the recovery
    faults = [{"at": "40s", "action": "crash", "target": "h1", "for": "2s"}]
    result = simulate(mm1(0.5, faults=faults, drain="60s"))
    assert result.summary["backlog_max"] > 50
    assert result.summary["stable"] == 1.0


@pytest.mark.parametrize("name", ["point_to_point", "queue", "pubsub", "request_reply", "event_driven"])
def test_the_shipped_example_scenarios_are_stable(name: str) -> None:
    scenario = Scenario.from_toml(ROOT / "experiments" / "scenarios" / f"{name}.toml")
    s = simulate(scenario, search=topology_search_path()).summary
    assert s["stable"] == 1.0, {k: s[k] for k in FIGURES}
    assert s["work_left_share"] < 0.02


def test_work_left_counts_what_was_open_at_the_end_of_the_window() -> None:
    scenario = mm1(1.2, duration=20.0)
    result = simulate(scenario)
    c = result.columns
    # at most once without loss: a row is either delivered or still open, so the ledger tells the count
    assert set(c["outcome"]) == {"delivered"}
    mine = c["created_at"] >= scenario.warmup
    open_at_end = mine & ~(c["delivered_at"] < scenario.duration)
    assert result.summary["work_left"] == open_at_end.sum() > 0
    assert result.summary["work_left_share"] == pytest.approx(open_at_end.sum() / mine.sum())


# -- time averages over the measured window --------------------------------------------------------


def long_drain(drain: str) -> Scenario:
    """A broker at utilization 0.5 whose consumer crashes near the end; its unacknowledged messages wait
    for a 50 s ack timeout, so the run goes on, idle, well into a long drain."""
    return Scenario(
        pattern="queue",
        duration="2s",
        warmup="0.5s",
        drain=drain,
        seed=3,
        topology={"name": "star", "params": {"n": 2}},
        links={"latency": 0},
        workload={"producers": ["h0"], "consumers": ["h1"], "rate": "100/s"},
        delivery={"guarantee": "at_most_once"},
        broker={
            "node": "hub",
            "service": {"dist": "exponential", "mean": "5ms"},
            "consumer_ack": "manual",
            "ack_timeout": "50s",
            "session_timeout": "200s",
        },
        faults=[{"at": "1.9s", "action": "crash", "target": "h1"}],
    )


def test_broker_utilization_does_not_drop_with_a_longer_drain() -> None:
    short, long = simulate(long_drain("0.1s")), simulate(long_drain("100s"))
    assert long.end_time > 50 > 3 > short.end_time  # the long drain really ran, idle
    assert long.summary["broker_utilization"] == short.summary["broker_utilization"]
    assert long.summary["broker_utilization"] == pytest.approx(0.5, abs=0.12)  # 100/s × 5 ms
    assert long.summary["utilization_max"] == long.summary["broker_utilization"]
    assert long.summary["backlog_mean"] == short.summary["backlog_mean"]


def test_window_busy_time_is_service_done_inside_the_window() -> None:
    # constant 10 ms broker services, 50 arrivals/s, no link latency: each service runs [c, c + 10 ms) from
    # its message's creation c; the window starts in the middle of one service
    scenario = Scenario(
        pattern="queue",
        duration="2s",
        warmup="1.005s",
        drain="1s",
        topology={"name": "star", "params": {"n": 2}},
        links={"latency": 0},
        workload={"producers": ["h0"], "consumers": ["h1"], "rate": "50/s", "arrivals": "constant"},
        delivery={"guarantee": "at_most_once"},
        broker={"node": "hub", "service": "10ms"},
    )
    result = simulate(scenario)
    start, end = scenario.warmup, scenario.duration
    created = result.columns["created_at"]
    assert np.any((created < start) & (created + 0.01 > start))  # a service straddles the start
    inside = np.clip(created + 0.01, start, end) - np.clip(created, start, end)
    assert result.summary["broker_utilization"] == pytest.approx(inside.sum() / (end - start), abs=1e-9)


# -- the rule and the window ---------------------------------------------------------------------------


def test_the_rule() -> None:
    assert judge(0.5, 0.0, 0.0, 1.0, span=10.0)
    assert not judge(SATURATED, 0.0, 0.0, 1.0, span=10.0)
    assert not judge(0.5, 5.0, 0.5, 10.0, span=10.0)  # +50 messages, 10 standard errors
    assert judge(0.5, 5.0, 2.0, 10.0, span=10.0)  # 2.5 standard errors: noise
    assert judge(0.5, 0.9, 0.01, 1.0, span=10.0)  # +9 messages: too few
    assert judge(0.5, 5.0, 0.5, 200.0, span=10.0)  # +50 on a mean of 200: a swing, not growth
    assert judge(float("nan"), 0.0, 0.0, 0.0, span=10.0)  # no server pool: judged on the backlog alone


def test_segments_skip_fault_windows() -> None:
    faults = [{"at": "50s", "action": "crash", "target": "h1", "for": "4.5s"}]
    scenario = mm1(0.5, faults=faults)
    from sim.run.build import build

    ctx = SimContext.from_seed(scenario.seed)
    world = build(ctx, scenario)
    window = Window(ctx, world.nodes, world.brokers, scenario.warmup, scenario.duration, world.faults)
    window.run(ctx.env)
    # slices of 4.5 s from 10 s: the crash [50, 54.5) touches slices 8 and 9 (46-50.5, 50.5-55)
    assert [(p.start, p.stop) for p in window.segments()] == [(0, 8), (10, 20)]
    calm = Window(ctx, world.nodes, world.brokers, scenario.warmup, scenario.duration)
    assert [(p.start, p.stop) for p in calm.segments()] == [(0, 20)]


def test_window_backlog_is_the_broker_queue_time_average() -> None:
    scenario = mm1(0.9, duration=50.0)
    from sim.run.build import build

    ctx = SimContext.from_seed(scenario.seed)
    world = build(ctx, scenario)
    window = Window(ctx, world.nodes, world.brokers, scenario.warmup, scenario.duration)
    window.run(ctx.env)
    level = window.backlog()
    (broker,) = world.brokers.values()
    assert len(level) == 20
    assert float(np.mean(level)) == pytest.approx(broker.backlog_mean(scenario.warmup, scenario.duration))


# -- the warning ---------------------------------------------------------------------------------------


def test_warning_text() -> None:
    unstable = {"stable": 0.0, "backlog_slope": 20.4, "utilization_max": 1.0, "work_left": 2257.0}
    line = warning({**unstable, "work_left_share": 0.208, "in_flight": 0.0}, warmup=10, duration=100, end=160)
    assert line == (
        "warning: unstable over [10, 100) s: backlog grows 20 msg/s, utilization max 1.00 (saturated); "
        "2,257 obligations (20.8%) open at 100 s"
    )
    unfinished = warning({"stable": 1.0, "in_flight": 3412.0}, warmup=1, duration=6, end=16)
    assert unfinished == "warning: 3,412 obligations unfinished at the end of the drain (16 s)"
    assert warning({"stable": 1.0, "in_flight": 0.0}, warmup=1, duration=6, end=7) is None


def scenario_file(tmp_path: Path, rho: float, drain: str = "60s") -> Path:
    path = tmp_path / f"mm1_{rho}.toml"
    path.write_text(
        f"""pattern = "queue"
duration = "20s"
warmup = "2s"
drain = "{drain}"
[topology]
name = "star"
params = {{ n = 2 }}
[links]
latency = 0
[nodes]
service = {{ dist = "exponential", mean = "10ms" }}
[workload]
producers = 1
consumers = 1
rate = "{100 * rho:g}/s"
[delivery]
guarantee = "at_most_once"
[broker]
node = "hub"
consumer_ack = "manual"
prefetch = 1
""",
        encoding="utf-8",
    )
    return path


def test_simulate_warns_about_an_unstable_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(scenario_file(tmp_path, 1.2))]) == 0
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    assert line.startswith("warning: unstable over [2, 20) s: backlog grows ")
    assert "utilization max 1.00 (saturated)" in line and " open at 20 s" in line
    assert "warning" not in out


def test_simulate_warns_about_work_unfinished_at_the_end_of_the_drain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", str(scenario_file(tmp_path, 1.2, drain="1s"))]) == 0
    _, err = capsys.readouterr()
    assert err.rstrip().endswith("obligations unfinished at the end of the drain (21 s)")


def test_simulate_is_quiet_about_a_stable_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(scenario_file(tmp_path, 0.5))]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert rows["stable"] == ["1", "1", "=", "stable"]
    assert rows["latency_mean"][1:] == ["s"]
    assert rows["throughput"][1:] == ["msg/s"]
    assert rows["delivery_ratio"][1:] == ["ratio"]
    assert rows["bytes_per_delivery"][1:] == ["bytes/delivery"]
    assert rows["offered"][1:] == ["obligations"]
    assert all(len(unit) >= 2 for unit in rows.values())  # every figure has its unit
