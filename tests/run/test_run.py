"""Whole runs: determinism, common random numbers, conservation, warm-up and drain."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import assert_counts_match_the_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import RunResult, Scenario, simulate
from sim.run.metrics import METRICS

BASE = Scenario(
    duration="3s",
    warmup="0.5s",
    seed=5,
    topology={"name": "leaf_spine", "params": {"spines": 2, "leaves": 3, "hosts_per_leaf": 2}},
    links={"latency": {"dist": "exponential", "mean": "1ms"}, "loss": 0.02, "bandwidth": "100Mbps"},
    workload={
        "producers": 3,
        "consumers": 3,
        "rate": "150/s",
        "size": {"dist": "uniform", "low": 100, "high": 2000},
    },
    delivery={"guarantee": "at_least_once", "ack_timeout": "20ms"},
)


def test_same_seed_same_ledger_and_different_seed_differs() -> None:
    a, b = simulate(BASE), simulate(BASE)
    for name, col in a.columns.items():
        assert np.array_equal(col, b.columns[name], equal_nan=col.dtype.kind == "f"), name
    assert a.summary == pytest.approx(b.summary, nan_ok=True)
    c = simulate(BASE.with_updates({"seed": 6}))
    assert not np.array_equal(a.columns["created_at"], c.columns["created_at"])


def test_same_seed_offers_the_same_workload_whatever_the_network_does() -> None:
    lossy = simulate(BASE.with_updates({"links.loss": 0.3, "delivery.guarantee": "at_most_once"}))
    clean = simulate(BASE.with_updates({"links.loss": 0.0}))
    for col in ("msg_id", "src", "dst", "created_at", "size"):
        assert np.array_equal(lossy.columns[col], clean.columns[col]), col


def test_summary_has_every_metric_and_consistent_counts() -> None:
    result = simulate(BASE)
    s = result.summary
    assert set(s) == set(METRICS)
    assert_counts_match_the_rows(s, result.columns, BASE.warmup)
    assert s["retries"] > 0 and s["lost"] == 0  # 2 % loss per link: retries (up to 5 attempts) recover it
    assert s["transmissions"] == s["data_transmissions"] + s["control_transmissions"]
    assert (
        0 < s["latency_p50"] <= s["latency_p95"] <= s["latency_p99"] <= s["latency_p999"] <= s["latency_max"]
    )
    assert math.isnan(s["broker_utilization"])


def test_warmup_excludes_early_obligations() -> None:
    result = simulate(BASE)
    created = result.columns["created_at"]
    assert result.summary["offered"] == int((created >= 0.5).sum()) < created.size


def test_drain_settles_messages_sent_just_before_the_end() -> None:
    sc = BASE.with_updates({"links.latency": "200ms", "delivery.guarantee": "at_most_once", "links.loss": 0})
    result = simulate(sc)
    assert result.summary["in_flight"] == 0 and result.summary["delivery_ratio"] == 1.0
    assert result.end_time > sc.duration
    cut = simulate(sc.with_updates({"drain": 0.0}))
    # without a drain, exactly what the full run delivered after the end is still in flight, nothing lost
    late = result.columns["delivered_at"] >= sc.duration
    assert cut.summary["in_flight"] == int(late.sum()) > 0
    assert cut.summary["lost"] == 0 and cut.summary["offered"] == result.summary["offered"]


def test_ledger_frame_has_the_documented_columns() -> None:
    frame = simulate(BASE).ledger
    assert list(frame.columns[:10]) == [
        "msg_id",
        "kind",
        "src",
        "dst",
        "topic",
        "created_at",
        "delivered_at",
        "outcome",
        "reason",
        "attempts",
    ]
    assert set(frame["outcome"].cat.categories) <= {"delivered", "lost", "in_flight"}
    assert (frame["delivered_at"].isna() == (frame["outcome"] != "delivered")).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=2, max_value=12),
    p=st.floats(min_value=0.05, max_value=0.6),
    loss=st.floats(min_value=0.0, max_value=0.5),
    guarantee=st.sampled_from(["at_most_once", "at_least_once", "effectively_once"]),
    seed=st.integers(min_value=0, max_value=2**32),
    producers=st.integers(min_value=1, max_value=3),
)
def test_conservation_on_random_small_topologies(
    n: int, p: float, loss: float, guarantee: str, seed: int, producers: int
) -> None:
    sc = Scenario(
        duration="0.5s",
        drain="2s",
        seed=seed,
        topology={"name": "random", "params": {"n": n, "p": min(1.0, p + 2 * math.log(n) / n)}},
        links={"latency": {"dist": "exponential", "mean": "2ms"}, "loss": loss},
        workload={"producers": min(producers, n), "consumers": min(2, n), "rate": "100/s"},
        delivery={"guarantee": guarantee, "ack_timeout": "10ms", "max_attempts": 3},
    )
    result = simulate(sc)  # the ledger invariant is checked inside every run
    s = result.summary
    assert_counts_match_the_rows(s, result.columns, sc.warmup)
    assert s["in_flight"] == 0  # at most 3 attempts, 10 ms apart and doubling: all settle in the drain
    assert s["lost"] == sum(s[f"lost_{r}"] for r in ("loss", "timeout", "unroutable", "node_down", "ttl"))
    if guarantee == "at_most_once":
        assert s["duplicates"] == 0 and s["retries"] == 0
    if guarantee == "effectively_once":
        assert s["duplicates"] == 0
    if loss == 0:
        assert s["lost"] == 0


def test_same_seed_offers_every_pattern_the_same_workload() -> None:
    base = dict(
        duration="3s",
        seed=13,
        topology={"name": "star", "params": {"n": 6}},
        links={"latency": {"dist": "exponential", "mean": "1ms"}, "loss": 0.05},
        workload={
            "producers": ["h0", "h1"],
            "consumers": ["h3", "h4", "h5"],
            "rate": "50/s",
            "size": {"dist": "exponential", "mean": 500},
        },
        broker={"node": "hub"},
    )
    offered = {}
    for pattern in ("point_to_point", "queue", "pubsub", "request_reply", "event_driven"):
        cols = simulate(Scenario(pattern=pattern, **base)).columns  # type: ignore[arg-type]
        # what the producers offered: one (producer, intended time, size) per message, whatever fans out later
        sent = np.isin(cols["src"], ["h0", "h1"]) & np.isin(cols["kind"], ["data", "request", "event"])
        rows = zip(cols["src"][sent], cols["created_at"][sent], cols["size"][sent], strict=True)
        offered[pattern] = sorted(set(rows))
    reference = offered["point_to_point"]
    assert len(reference) > 200
    for pattern, rows in offered.items():
        assert rows == reference, pattern


def test_repr_is_one_line_with_the_headline_figures() -> None:
    sc = Scenario(
        duration="2s", seed=7, links={"latency": "3ms"}, workload={"rate": "10/s", "arrivals": "constant"}
    )
    assert repr(simulate(sc)) == (
        "<RunResult point_to_point, 2 s, seed 7: offered 20, delivered 20, lost 0; "
        "operations 100.0% succeeded, p50 6 ms, p99 6 ms>"
    )
    lossy = sc.with_updates({"duration": "1s", "links.loss": 1.0})
    assert repr(simulate(lossy)) == (
        "<RunResult point_to_point, 1 s, seed 7: offered 10, delivered 0, lost 10; "
        "operations 0.0% succeeded, p50 n/a, p99 n/a>"
    )


def test_repr_flags_an_unstable_run_and_its_unfinished_work() -> None:
    # one consumer of 100 ms jobs offered 20 a second: the queue grows, and a 1 s drain leaves most open
    sc = Scenario(
        pattern="queue",
        duration="20s",
        drain="1s",
        seed=3,
        topology={"name": "star", "params": {"n": 3}},
        nodes={"service": "100ms"},
        workload={"producers": 1, "consumers": 1, "rate": "20/s", "arrivals": "constant"},
        broker={"node": "hub"},
    )
    result = simulate(sc)
    s = result.summary
    assert s["stable"] == 0.0 and s["in_flight"] == 191
    assert repr(result) == (
        "<RunResult queue, 20 s, seed 3: offered 400, delivered 209, lost 0; operations 52.2% succeeded, "
        "p50 5.30 s, p99 10.40 s; unstable; 191 unfinished>"
    )
    html = result._repr_html_()
    assert "<tr><th>unstable</th><td>yes</td></tr>" in html
    assert "<tr><th>unfinished</th><td>191 obligations open at the end of the drain</td></tr>" in html
    calm = replace(result, summary={**s, "stable": 1.0, "in_flight": 0})
    assert repr(calm).endswith("p99 10.40 s>") and "unstable" not in calm._repr_html_()


def test_html_repr_is_a_small_escaped_table() -> None:
    summary = {"offered": 1234, "delivered": 1200, "lost": 34, "op_success_ratio": 0.5}
    summary |= {"op_latency_p50": 0.0004, "op_latency_p99": math.nan}
    scenario = SimpleNamespace(pattern="<b>&co", duration=0.5, seed=2)
    result = RunResult(scenario=scenario, summary=summary, columns={}, end_time=0.5)  # type: ignore[arg-type]
    assert result._repr_html_() == (
        "<table><caption>RunResult</caption>"
        "<tr><th>pattern</th><td>&lt;b&gt;&amp;co</td></tr>"
        "<tr><th>duration</th><td>0.5 s</td></tr>"
        "<tr><th>seed</th><td>2</td></tr>"
        "<tr><th>offered</th><td>1,234</td></tr>"
        "<tr><th>delivered</th><td>1,200</td></tr>"
        "<tr><th>lost</th><td>34</td></tr>"
        "<tr><th>operations succeeded</th><td>50.0%</td></tr>"
        "<tr><th>operation latency p50</th><td>0.4 ms</td></tr>"
        "<tr><th>operation latency p99</th><td>n/a</td></tr>"
        "</table>"
    )
    assert repr(result) == (
        "<RunResult <b>&co, 0.5 s, seed 2: offered 1,234, delivered 1,200, lost 34; "
        "operations 50.0% succeeded, p50 0.4 ms, p99 n/a>"
    )
