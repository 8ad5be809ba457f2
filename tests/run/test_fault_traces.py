"""Exact small traces of faults: crash during service, crash with prefetched messages, one-way partition,
partition heal with reroute. The same seed offers the same workload with and without faults, so a dry run
tells when the message of interest is sent."""

from __future__ import annotations

import pytest

from sim import Scenario, simulate


def first_send(sc: Scenario) -> float:
    return float(simulate(sc.with_updates({"faults": []})).columns["created_at"][0])


def test_crash_during_service_loses_the_work_then_a_retry_delivers() -> None:
    base = Scenario(
        duration="4s",
        seed=1,
        drain="30s",
        topology={"name": "line", "params": {"n": 2}},
        links={"latency": "10ms"},
        nodes={"service": "1s"},
        workload={"rate": 0.25, "arrivals": "constant"},
        delivery={"guarantee": "at_least_once", "ack_timeout": "2s", "backoff": 1, "max_attempts": "inf"},
    )
    t0 = first_send(base)
    crashing = base.with_updates(
        {"faults": [{"at": t0 + 0.5, "action": "crash", "target": "n1", "for": "1s"}]}
    )
    result = simulate(crashing)
    cols = result.columns
    assert len(cols["created_at"]) == 1
    # attempt 1 reaches n1 at t0+0.01 and is in service when n1 crashes at t0+0.5 (crash_lost);
    # n1 is back at t0+1.5; attempt 2 leaves at t0+2, arrives t0+2.01, is served for 1 s
    assert cols["delivered_at"][0] == pytest.approx(t0 + 3.01)
    assert cols["attempts"][0] == 2 and cols["receiver"][0] == "n1"
    assert result.fault_log == [
        (pytest.approx(t0 + 0.5), "crash", "n1", ""),
        (pytest.approx(t0 + 1.5), "recover", "n1", ""),
    ]
    at_most_once = simulate(crashing.with_updates({"delivery.guarantee": "at_most_once"}))
    assert at_most_once.columns["reason"][0] == "crash_lost"
    assert at_most_once.check() == []  # losing it is within at-most-once's promise


def test_crash_with_prefetched_messages_redelivers_them_after_reconnect() -> None:
    base = Scenario(
        pattern="queue",
        duration="0.75s",
        seed=2,
        drain="60s",
        topology={"name": "star", "params": {"n": 2}},
        links={"latency": "1ms"},
        nodes={"service": "1s"},
        workload={"producers": ["h0"], "consumers": ["h1"], "rate": 4.0, "arrivals": "constant"},
        delivery={"guarantee": "at_least_once"},
        broker={"node": "hub", "prefetch": 3, "ack_timeout": "100s"},
    )
    dry = simulate(base)
    sent = dry.columns["created_at"]
    assert len(sent) == 3
    crash_at = sent[2] + 0.01  # all three are at the consumer: one in service, two prefetched in its inbox
    result = simulate(
        base.with_updates(
            {"faults": [{"at": float(crash_at), "action": "crash", "target": "h1", "for": "5s"}]}
        )
    )
    s = result.summary
    assert s["delivered"] == 3 and s["lost"] == 0 and s["duplicates"] == 0
    assert s["redeliveries"] == 3  # the broker took back all three the crashed consumer held
    back = crash_at + 5
    # after recovery the consumer registers again (2 hops) and gets them one at a time (1 s each)
    delivered = sorted(result.columns["delivered_at"])
    assert all(t > back for t in delivered)
    assert delivered[2] - delivered[0] == pytest.approx(2.0)  # one server, 1 s each
    assert result.check() == []


def test_one_way_partition_lets_requests_in_and_keeps_replies_out() -> None:
    sc = Scenario(
        pattern="request_reply",
        duration="2s",
        seed=3,
        topology={"name": "star", "params": {"n": 2}},
        links={"latency": "1ms"},
        workload={"producers": ["h0"], "consumers": ["h1"], "rate": "10/s"},
        request_reply={"timeout": "100ms"},
        faults=[{"at": 0, "action": "partition", "groups": [["h1"], ["h0", "hub"]], "one_way": True}],
    )
    result = simulate(sc)
    cols, s = result.columns, result.summary
    requests, replies = cols["kind"] == "request", cols["kind"] == "reply"
    assert (cols["outcome"][requests] == "delivered").all()
    assert (cols["outcome"][replies] == "lost").all() and (cols["reason"][replies] == "partition").all()
    assert s["answered"] == 0 and s["timeouts"] == s["requests"] > 0


def first_hops(trace: list[tuple[float, str, int, str, str]] | None) -> dict[int, tuple[float, str]]:
    return {
        m: (t, nxt) for t, event, m, here, nxt in trace or [] if event == "hop" and here == "n0" and m > 0
    }


def test_partition_heal_reroutes_and_loses_nothing() -> None:
    base = Scenario(
        duration="3s",
        seed=4,
        trace=True,
        topology={"name": "ring", "params": {"n": 4}},
        links={"latency": "1ms"},
        workload={"producers": ["n0"], "consumers": ["n2"], "rate": "20/s"},
    )
    (preferred,) = {nxt for _, nxt in first_hops(simulate(base).trace).values()}
    other = ({"n1", "n3"} - {preferred}).pop()
    sc = base.with_updates(
        {"faults": [{"at": "1s", "action": "partition", "groups": [[preferred]], "for": "1s"}]}
    )
    result = simulate(sc)
    assert result.summary["lost"] == 0 and result.summary["delivery_ratio"] == 1.0
    hops = first_hops(result.trace)
    during = {nxt for t, nxt in hops.values() if 1.0 < t < 2.0}
    outside = {nxt for t, nxt in hops.values() if t < 1.0 or t > 2.0}
    assert during == {other}  # around the isolated node
    assert outside == {preferred}  # the preferred route before the cut and again after the heal
