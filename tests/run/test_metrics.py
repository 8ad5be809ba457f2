"""Summary metrics on hand-made ledgers, where every figure is known exactly: the warm-up and the end of the
measured window, the cost figures, and the recovery time after a fault."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from sim.core.ledger import Ledger
from sim.patterns import PATTERNS
from sim.patterns.base import Measure
from sim.run.metrics import (
    METRIC_DOCS,
    METRICS,
    PATTERN_METRICS,
    measure_docs,
    queue_wait_mean,
    recovery_time,
    summarize,
)


def _ledger(rows: list[tuple[float, float | None]]) -> Ledger:
    """One data obligation per (created_at, delivered_at or None for still in flight)."""
    led = Ledger()
    for i, (created, delivered) in enumerate(rows):
        row = led.open(i, "data", "a", "b", "", created, 100.0)
        led.charge(row, 100.0)
        if delivered is not None:
            led.deliver(row, delivered)
    return led


def test_throughput_counts_deliveries_between_warmup_and_the_end_only() -> None:
    led = _ledger(
        [
            (1.0, 1.5),  # created and delivered in the warm-up: not counted
            (4.1, 4.6),  # delivered in the warm-up: not counted
            (4.8, 5.1),  # created in the warm-up, delivered after it: counted (deliveries per second)
            (5.0, 5.5),
            (6.0, 6.5),
            (7.0, 7.5),
            (9.0, 9.9),
            (9.5, 10.2),  # delivered in the drain, after the end: not counted
            (9.8, None),
        ]
    )
    s = summarize(led.columns(), warmup=5.0, duration=10.0)
    assert s["throughput"] == 5 / 5.0  # 5.1, 5.5, 6.5, 7.5, 9.9 over the 5 s after warm-up
    # obligations are counted by creation time: the three created before 5 s are not offered
    assert (s["offered"], s["delivered"], s["in_flight"], s["lost"]) == (6, 5, 1, 0)
    assert s["latency_max"] == pytest.approx(0.9) and s["latency_p50"] == pytest.approx(0.5)


def test_summary_cost_figures_on_a_hand_made_ledger() -> None:
    led = _ledger([(0.0, 0.1), (0.0, None)])
    led.charge(0, 100.0)  # a retransmission of row 0
    led.charge(0, 10.0, control=True)
    led.charge(-1, 30.0, control=True)  # a heartbeat: unattributed
    s = summarize(
        led.columns(), warmup=0.0, duration=1.0, control_unattributed=1, control_bytes_unattributed=30
    )
    assert set(s) >= set(METRICS)
    assert (s["data_transmissions"], s["control_transmissions"], s["transmissions"]) == (3, 2, 5)
    assert s["msgs_per_delivery"] == 5.0
    assert s["bytes_per_delivery"] == 300 + 10 + 30
    assert s["control_share"] == 2 / 5
    assert s["delivery_ratio"] == 0.5


# -- the patterns' measures: declared raw, named and summarized here ----------------------------------------


def test_a_samples_measure_is_summarized_here_and_a_count_passes_as_is() -> None:
    rtts = [0.4, 0.1, 0.3, 0.2, 1.0]
    s = summarize(_ledger([]).columns(), warmup=0.0, duration=1.0, extra={"rtt": rtts, "requests": 5})
    assert s["rtt_mean"] == pytest.approx(0.4) and s["rtt_p50"] == 0.3
    assert s["rtt_p99"] == pytest.approx(0.4 + 0.6 * 0.96)  # numpy's linear interpolation: 1.0 - 0.6 * 0.04
    assert s["requests"] == 5.0 and "rtt" not in s
    empty = summarize(_ledger([]).columns(), warmup=0.0, duration=1.0, extra={"chain_latency": []})
    assert all(math.isnan(empty[f"chain_latency_{k}"]) for k in ("mean", "p50", "p99"))


def test_each_patterns_summary_names_come_from_its_declared_measures() -> None:
    assert PATTERN_METRICS["request_reply"] == (
        "rtt_mean",
        "rtt_p50",
        "rtt_p99",
        "requests",
        "answered",
        "timeouts",
        "late_replies",
        "outstanding_max",
    )
    assert PATTERN_METRICS["event_driven"] == (
        "chains_started",
        "chains_completed",
        "chain_latency_mean",
        "chain_latency_p50",
        "chain_latency_p99",
    )
    assert PATTERN_METRICS["queue"] == ()
    for name, pattern in PATTERNS.items():
        for measure in pattern.measures:
            assert set(measure_docs(measure)) <= set(PATTERN_METRICS[name]) <= set(METRICS)
    assert measure_docs(Measure("wait", "samples", "s", "time in the queue")) == {
        "wait_mean": "mean time in the queue, s",
        "wait_p50": "median time in the queue, s",
        "wait_p99": "99th percentile time in the queue, s",
    }
    assert METRIC_DOCS["requests"] == "requests issued (whole run)"
    with pytest.raises(ValueError, match="kind"):
        Measure("x", "histogram", "s", "not a kind")


def test_patterns_record_raw_figures_and_compute_no_statistic() -> None:
    import sim.patterns

    for path in Path(sim.patterns.__file__).parent.glob("*.py"):
        code = path.read_text()
        for statistic in ("np.percentile", "np.quantile", "np.median", ".mean(", "import statistics"):
            assert statistic not in code, f"{path.name} computes a statistic ({statistic}): record samples"


def test_queue_wait_mean_is_the_brokers_in_a_brokered_run_else_the_nodes() -> None:
    nodes = [SimpleNamespace(processed=3, wait_total=0.6), SimpleNamespace(processed=1, wait_total=0.2)]
    brokers = [SimpleNamespace(queue_wait_mean=0.5), SimpleNamespace(queue_wait_mean=math.nan)]
    assert queue_wait_mean(nodes, []) == pytest.approx(0.2)  # type: ignore[arg-type]  # 0.8 s over 4 messages
    assert queue_wait_mean(nodes, brokers) == 0.5  # type: ignore[arg-type]  # a broker that waited nothing: left out
    assert math.isnan(queue_wait_mean(nodes, brokers[1:]))  # type: ignore[arg-type]
    assert math.isnan(queue_wait_mean([SimpleNamespace(processed=0, wait_total=0.0)], []))  # type: ignore[list-item]


# -- recovery time -----------------------------------------------------------------------------------

STEADY = np.concatenate([np.arange(0, 10, 0.01), np.arange(15, 40, 0.01)])  # 100/s with a gap [10, 15)


def test_recovery_time_of_an_outage_that_outlasts_its_fault() -> None:
    # the fault ends at 11 s, deliveries return at 15 s. The level before is 100/s; the window is 9 s (900
    # expected deliveries) and recovery is the first step t = 11 + 0.9 k with at least
    # 0.9 * 900 - 2 * sqrt(900) = 750 deliveries in [t, t + 9): t + 9 - 15 >= 7.5 first at k = 3
    took = recovery_time(STEADY, [(10.0, 11.0)], warmup=0.0, duration=40.0)
    assert took == pytest.approx(2.7)
    # the worst of several faults; one that touches no traffic recovers at once
    assert recovery_time(STEADY, [(10.0, 11.0), (30.0, 30.5)], warmup=0.0, duration=40.0) == took
    assert recovery_time(STEADY, [(30.0, 30.5)], warmup=0.0, duration=40.0) == 0.0


def test_recovery_time_is_inf_when_throughput_never_returns_and_nan_when_unmeasurable() -> None:
    assert recovery_time(STEADY[STEADY < 10], [(5.0, 6.0)], warmup=0.0, duration=40.0) == math.inf
    assert math.isnan(recovery_time(STEADY, [(0.0, 1.0)], warmup=0.0, duration=40.0))  # no level before
    assert math.isnan(recovery_time(STEADY, [(10.0, 40.0)], warmup=0.0, duration=40.0))  # never ends
    assert math.isnan(recovery_time(STEADY, [], warmup=0.0, duration=40.0))


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"at": "12s", "action": "crash", "target": "n1", "for": "2s"}, 0.0),  # deliveries resume at once
        ({"at": "12s", "action": "crash", "target": "n1"}, math.nan),  # never recovers within the run
    ],
    ids=["crash-for-2s", "crash-to-the-end"],
)
def test_a_run_reports_the_recovery_time_of_its_faults(fault: dict[str, str], expected: float) -> None:
    from sim import Scenario, simulate

    scenario = Scenario(
        duration="30s",
        drain="1s",
        topology={"name": "line", "params": {"n": 2}},
        links={"latency": "1ms"},
        workload={"rate": "200/s", "arrivals": "constant", "producers": ["n0"], "consumers": ["n1"]},
        faults=[fault],
    )
    s = simulate(scenario).summary
    assert s["faults"] == 1
    assert s["recovery_time"] == expected or (math.isnan(expected) and math.isnan(s["recovery_time"]))
    assert s["lost_node_down"] == (400 if "for" in fault else 3600)  # 200/s while n1 is down
