"""Operations: what the application asked for; the op_* figures, computed alike for every pattern."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim import Scenario, simulate
from sim.core.ledger import Ledger
from sim.patterns import PATTERNS
from sim.run.metrics import METRIC_DOCS, METRICS, OP_FAILED_BY_REASON, operations, summarize

OP_NAMES = (
    "op_offered",
    "op_completed",
    "op_success_ratio",
    "op_failed",
    "op_unfinished",
    "op_unfinished_share",
    "op_latency_mean",
    "op_latency_p50",
    "op_latency_p95",
    "op_latency_p99",
    "op_latency_p999",
    "op_latency_max",
    "op_msgs_per_op",
    "op_data_msgs_per_op",
    "op_control_msgs_per_op",
    "op_bytes_per_op",
    "op_duplicates",
    "op_duplicates_per_op",
)

# the flagship's fabric and fair settings (experiments/compare_patterns.py), shortened
FABRIC = Scenario(
    duration="6s",
    warmup="1s",
    drain="30s",
    seed=1,
    topology={"name": "leaf_spine", "params": {"spines": 2, "leaves": 4, "hosts_per_leaf": 4}},
    links={"latency": {"dist": "exponential", "mean": "500us"}, "bandwidth": "1Gbps", "loss": 0.01},
    nodes={"service": {"dist": "exponential", "mean": "1ms"}},
    workload={"producers": 4, "consumers": 4, "rate": "100/s", "size": "1KB"},
    delivery={"guarantee": "at_least_once", "ack_timeout": "200ms", "max_timeout": "2s", "max_attempts": 8},
    broker={"node": "h1_1", "durable": True, "prefetch": 100, "ack_timeout": "250ms"},
    request_reply={"timeout": "200ms"},
)


def line(pattern: str, **changes: object) -> Scenario:
    """One producer and one consumer four hops apart on a line, constant 1 ms links, no loss."""
    base = Scenario(
        pattern=pattern,
        duration="1s",
        warmup="0.2s",
        drain="5s",
        topology={"name": "line", "params": {"n": 5}},
        links={"latency": "1ms"},
        workload={"producers": ["n0"], "consumers": ["n4"], "rate": "50/s", "arrivals": "constant"},
    )
    return base.with_updates(dict(changes)) if changes else base


def test_every_op_figure_is_a_documented_metric() -> None:
    for name in (*OP_NAMES, *OP_FAILED_BY_REASON, "superseded"):
        assert name in METRICS and METRIC_DOCS[name]
    for cls in PATTERNS.values():
        assert cls.operation.meaning


# -- request/reply: a call answered is not lost, however many copies it took ----------------------------


@pytest.fixture(scope="module")
def rr_lossy() -> object:
    return simulate(FABRIC.with_updates({"pattern": "request_reply"}))


def test_request_reply_at_one_percent_loss_loses_no_call(rr_lossy: object) -> None:
    result = rr_lossy
    s = result.summary  # type: ignore[attr-defined]
    assert s["timeouts"] == 0 and s["answered"] == s["requests"]  # every call answered
    assert s["op_failed"] == 0 and s["op_unfinished"] == 0
    assert s["op_success_ratio"] == 1.0
    assert s["op_completed"] == s["op_offered"] > 0
    # dropped replies made good by a retry are superseded, not lost
    assert s["superseded"] > 0 and s["lost"] == 0
    assert s["delivery_ratio"] == 1.0
    assert result.check() == []  # type: ignore[attr-defined]


def test_superseded_rows_are_replies_of_answered_calls(rr_lossy: object) -> None:
    frame = rr_lossy.ledger  # type: ignore[attr-defined]
    gone = frame[frame["outcome"] == "superseded"]
    assert set(gone["kind"]) == {"reply"}
    assert set(gone["reason"]) <= {"loss"}
    ops = rr_lossy.operations  # type: ignore[attr-defined]
    completed = set(ops["id"][ops["outcome"] == "completed"].tolist())
    assert set(gone["op"].tolist()) <= completed
    # a superseded reply's call has a delivered reply too
    delivered = set(frame[(frame["kind"] == "reply") & (frame["outcome"] == "delivered")]["op"].tolist())
    assert set(gone["op"].tolist()) <= delivered


def test_request_reply_costs_per_call_what_point_to_point_costs_per_message(rr_lossy: object) -> None:
    rr = rr_lossy.summary  # type: ignore[attr-defined]
    p2p = simulate(FABRIC.with_updates({"pattern": "point_to_point"})).summary
    # a call is a request and a reply, each sent once; a message is sent and acknowledged: both ≈ 2 paths
    assert rr["op_msgs_per_op"] == pytest.approx(p2p["op_msgs_per_op"], rel=0.1)
    # per obligation, request/reply's figure is about half of that (a request and a reply each count)
    assert rr["msgs_per_delivery"] < 0.6 * rr["op_msgs_per_op"]
    assert rr["op_msgs_per_op"] == pytest.approx(rr["op_data_msgs_per_op"] + rr["op_control_msgs_per_op"])
    # the requests the servers processed twice (a retry after a dropped reply) are application duplicates
    assert rr["op_duplicates"] > 0


def test_request_reply_exact_cost_without_loss() -> None:
    # request 4 hops + reply 4 hops per call; a point-to-point message 4 hops + its ack 4 hops
    rr = simulate(line("request_reply")).summary
    p2p = simulate(line("point_to_point", **{"delivery.guarantee": "at_least_once"})).summary
    assert rr["op_msgs_per_op"] == p2p["op_msgs_per_op"] == 8.0
    assert rr["op_data_msgs_per_op"] == 8.0 and rr["op_control_msgs_per_op"] == 0.0
    assert p2p["op_data_msgs_per_op"] == p2p["op_control_msgs_per_op"] == 4.0
    assert rr["op_latency_max"] == pytest.approx(0.008) and rr["op_latency_p50"] == pytest.approx(0.008)
    assert rr["op_offered"] == rr["op_completed"] == 40  # 50/s from 0.2 s to 1 s


def test_a_call_that_used_every_attempt_is_not_a_broken_promise() -> None:
    # half the transmissions lost, two requests per call: some calls time out for good; their reply rows
    # were sent once, but the call used all its attempts, so no_loss holds
    result = simulate(
        line(
            "request_reply",
            **{
                "links.loss": 0.3,
                "delivery.guarantee": "at_least_once",
                "delivery.max_attempts": 2,
                "request_reply.timeout": "50ms",
            },
        )
    )
    s = result.summary
    assert s["op_failed"] > 0 and s["op_failed"] == s["op_failed_loss"] + s["op_failed_timeout"]
    assert s["op_completed"] + s["op_failed"] + s["op_unfinished"] == s["op_offered"]
    frame = result.ledger
    lost_replies = frame[(frame["kind"] == "reply") & (frame["outcome"] == "lost")]
    assert len(lost_replies) > 0 and (lost_replies["attempts"] < 2).all()
    assert result.check() == []


# -- point-to-point: the operation is the obligation -----------------------------------------------------


def test_point_to_point_op_figures_equal_the_obligation_figures() -> None:
    result = simulate(FABRIC.with_updates({"pattern": "point_to_point", "links.loss": 0.05}))
    s = result.summary
    pairs = {
        "op_offered": "offered",
        "op_completed": "delivered",
        "op_failed": "lost",
        "op_unfinished": "in_flight",
        "op_success_ratio": "delivery_ratio",
        "op_latency_mean": "latency_mean",
        "op_latency_p50": "latency_p50",
        "op_latency_p95": "latency_p95",
        "op_latency_p99": "latency_p99",
        "op_latency_p999": "latency_p999",
        "op_latency_max": "latency_max",
        "op_msgs_per_op": "msgs_per_delivery",
        "op_bytes_per_op": "bytes_per_delivery",
        "op_duplicates": "duplicates",
    }
    for op_name, name in pairs.items():
        assert s[op_name] == pytest.approx(s[name], rel=1e-12), op_name
    assert s["duplicates"] > 0 and s["retries"] > 0  # the comparison covers retransmissions and duplicates


# -- pubsub: a publish completes when every subscriber got it -------------------------------------------


def test_pubsub_op_completes_only_when_every_subscriber_got_it() -> None:
    scenario = Scenario(
        pattern="pubsub",
        duration="2s",
        warmup="0.2s",
        drain="2s",
        topology={"name": "star", "params": {"n": 4}},
        links={"latency": "1ms"},
        workload={"producers": ["h0"], "consumers": ["h1", "h2"], "rate": "100/s", "arrivals": "constant"},
        broker={"node": "hub"},
        pubsub={"durable_subscriptions": False},
        faults=[{"at": "1s", "action": "crash", "target": "h2", "for": "300ms"}],
    )
    result = simulate(scenario)
    s, frame = result.summary, result.ledger
    measured = frame[frame["created_at"] >= 0.2]
    per_publish = measured.groupby("msg_id")["outcome"].agg(lambda o: bool((o == "delivered").all()))
    assert s["op_offered"] == len(per_publish) == s["offered"] / 2
    assert s["op_completed"] == int(per_publish.sum())
    # while h2 was away its obligations were lost, though h1 got every one of those publishes
    h1 = measured[measured["dst"] == "h1"]
    assert (h1["outcome"] == "delivered").all()
    assert 0 < s["op_failed"] == s["op_failed_node_down"] == s["lost"]
    assert s["op_completed"] < s["delivered"] / 2 + s["lost"]
    # a publish's latency is its slower subscriber's
    done = measured[measured["msg_id"].isin(per_publish[per_publish].index)]
    slowest = (done["delivered_at"] - done["created_at"]).groupby(done["msg_id"]).max()
    assert s["op_latency_max"] == pytest.approx(float(slowest.max()))
    assert s["op_latency_mean"] == pytest.approx(float(slowest.mean()))


# -- event-driven: a root event's whole handler graph ---------------------------------------------------


def test_event_driven_op_latency_is_end_to_end() -> None:
    scenario = Scenario.from_toml("experiments/scenarios/event_driven.toml").with_updates(
        {"duration": "3s", "delivery.guarantee": "at_most_once"}
    )
    result = simulate(scenario)
    s, frame, ops = result.summary, result.ledger, result.operations
    assert s["op_offered"] == s["op_completed"] > 0
    # the graph order → (payment → (shipping, notification), inventory): the op ends with its slowest path,
    # at least the sum of the hops on each root-to-leaf path; compare with the per-hop figures
    assert s["op_latency_p50"] > 3 * s["latency_p50"]
    hop = (frame["delivered_at"] - frame["created_at"]).groupby([frame["op"], frame["topic"]]).max()
    path = hop.unstack()
    longest = path[["order", "payment", "shipping"]].sum(axis=1)
    longest = np.maximum(longest, path[["order", "payment", "notification"]].sum(axis=1))
    longest = np.maximum(longest, path[["order", "inventory"]].sum(axis=1))
    done = ops["outcome"] == "completed"
    took = (ops["completed_at"] - ops["created_at"])[done]
    latency = dict(zip(ops["id"][done].tolist(), took.tolist(), strict=True))
    for op_id, path_sum in longest.items():
        # each handler emits when it finishes, so the op's latency is exactly its slowest path
        assert latency[op_id] == pytest.approx(path_sum, abs=1e-12)
    measured = [v for k, v in latency.items() if ops["created_at"][ops["id"] == k][0] >= scenario.warmup]
    assert s["op_latency_mean"] == pytest.approx(float(np.mean(measured)))
    # the pattern's own chain figures agree (they cover the whole run, warm-up included)
    assert s["chains_completed"] == int(done.sum())


# -- unfinished operations ------------------------------------------------------------------------------


def test_unfinished_operations_show_when_the_drain_is_too_short() -> None:
    # 50 ms links and no drain: the last messages are still on their way when the run stops
    result = simulate(line("point_to_point", **{"links.latency": "50ms", "drain": 0}))
    s = result.summary
    assert s["op_unfinished"] == s["in_flight"] > 0
    assert s["op_unfinished_share"] == s["op_unfinished"] / s["op_offered"]
    assert s["op_completed"] + s["op_unfinished"] == s["op_offered"]
    rr = simulate(line("request_reply", **{"links.latency": "50ms", "drain": 0})).summary
    # a call needs 2 × 4 × 50 ms = 0.4 s: the calls of the last 0.4 s are outstanding
    assert rr["op_unfinished"] == 20 and rr["op_completed"] == 20


# -- every shipped example keeps the promises it makes -------------------------------------------------


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "experiments" / "scenarios").glob("*.toml"))
FAILING_BY_DESIGN = {"saga"}  # a compensated saga is a failed operation: test_plugin_examples.py


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_scenario_passes_its_check(path: Path) -> None:
    result = simulate(Scenario.from_toml(path))
    assert result.check() == []
    s = result.summary
    assert s["op_offered"] > 0 and (s["op_failed"] == 0 or path.stem in FAILING_BY_DESIGN)
    assert s["op_completed"] + s["op_failed"] + s["op_unfinished"] == s["op_offered"]


# -- the operation table, exactly ------------------------------------------------------------------------


def test_operations_from_rows_and_records() -> None:
    led = Ledger()
    # op 1: two rows, both delivered -> completed at the later delivery
    a = led.open(1, "data", "p", "s1", "t", 0.0, 10)
    b = led.open(1, "data", "p", "s2", "t", 0.0, 10)
    led.deliver(a, 0.3)
    led.deliver(b, 0.5)
    # op 2: one row delivered, one lost -> failed for that reason
    c = led.open(2, "data", "p", "s1", "t", 1.0, 10)
    d = led.open(2, "data", "p", "s2", "t", 1.0, 10)
    led.deliver(c, 1.1)
    led.lose(d, "overflow")
    # op 3: still in flight -> unfinished
    led.open(3, "data", "p", "s1", "t", 2.0, 10)
    # op 10: a call, its first reply dropped, the second delivered; the pattern records the answer
    req = led.open(10, "request", "c", "s", "", 3.0, 10)
    r1 = led.open(11, "reply", "s", "c", "", 3.1, 10, 10)
    r2 = led.open(12, "reply", "s", "c", "", 3.4, 10, 10)
    led.deliver(req, 3.05)
    led.lose(r1, "loss")
    led.deliver(r2, 3.5)
    led.deliver(req, 3.3)  # the server processed the retry again
    led.deliver(r2, 3.6)  # and a second copy of the reply came back
    led.ops.complete(10, 3.5)
    led.charge(req, 100.0)
    led.charge(r2, 5.0, control=True)
    assert led.supersede(("reply",)) == 1
    assert led.outcome_of(r1) == "superseded" and led.last_reason(r1) == "loss"
    assert led.counts() == {"delivered": 5, "lost": 1, "in_flight": 1, "superseded": 1}
    led.check()
    ops = operations(led.columns(), led.ops.columns(), app_kinds=("data", "request"))
    assert ops["id"].tolist() == [1, 2, 3, 10]
    assert ops["outcome"].tolist() == ["completed", "failed", "unfinished", "completed"]
    assert ops["reason"].tolist() == ["", "overflow", "", ""]
    assert ops["created_at"].tolist() == [0.0, 1.0, 2.0, 3.0]
    np.testing.assert_array_equal(ops["completed_at"], [0.5, math.nan, math.nan, 3.5])
    assert ops["rows"].tolist() == [2, 2, 1, 3]
    assert ops["data"].tolist() == [0, 0, 0, 1] and ops["control"].tolist() == [0, 0, 0, 1]
    assert ops["bytes"].tolist() == [0.0, 0.0, 0.0, 105.0]
    assert ops["duplicates"].tolist() == [0, 0, 0, 1]  # the request's, not the reply's
    s = summarize(led.columns(), warmup=0.0, duration=5.0, ops=ops)
    assert (s["op_offered"], s["op_completed"], s["op_failed"], s["op_unfinished"]) == (4, 2, 1, 1)
    assert s["op_failed_overflow"] == 1 and s["op_success_ratio"] == 0.5
    assert s["op_latency_max"] == pytest.approx(0.5) and s["op_latency_mean"] == pytest.approx(0.5)
    assert s["op_msgs_per_op"] == 1.0 and s["op_duplicates"] == 1 and s["op_duplicates_per_op"] == 0.5
    assert s["superseded"] == 1 and s["delivery_ratio"] == 5 / 7
    # warm-up leaves out the operations started before it, with all their rows
    late = summarize(led.columns(), warmup=2.5, duration=5.0, ops=ops)
    assert (late["op_offered"], late["op_completed"], late["op_msgs_per_op"]) == (1, 1, 2.0)


def test_the_first_record_of_an_operation_wins_and_failures_keep_their_attempts() -> None:
    led = Ledger()
    led.open(5, "request", "c", "s", "", 0.0, 10)
    led.ops.fail(5, "timeout", 3)
    led.ops.complete(5, 9.0)  # a late reply does not revive a call whose callback had its error
    ops = operations(led.columns(), led.ops.columns())
    assert ops["outcome"].tolist() == ["failed"] and ops["reason"].tolist() == ["timeout"]
    assert ops["attempts"].tolist() == [3]
    with pytest.raises(ValueError, match="reason"):
        led.ops.fail(6, "")
