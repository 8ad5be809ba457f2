"""Every brokered pattern through a leader's crash: three durable replicas lose nothing, one broker does."""

from __future__ import annotations

from typing import Any

import pytest

from sim import Scenario, simulate

PATTERNS: dict[str, dict[str, Any]] = {
    "queue": {},
    "pubsub": {},
    "request_reply": {"request_reply": {"via_broker": True}},
    "event_driven": {
        "event_driven": {
            "handlers": [
                {"name": "order", "node": "n5", "emits": ["payment"]},
                {"name": "payment", "node": "n6", "emits": []},
            ]
        }
    },
}


def scenario(
    pattern: str, *, replicas: Any, durable: bool, recover: bool, call_timeout: str = "1s"
) -> Scenario:
    """Brokers n0 (leader), n1, n2; producers n3, n4 (300/s in all); consumers n5, n6, n7 (12 ms each, one
    at a time, one unacknowledged message each): the queues back up, and at 1 s the leader crashes with
    messages ready and delivered but not yet acknowledged. A call (request_reply) is sent once and retried
    after ``call_timeout``."""
    options = PATTERNS[pattern]
    if pattern == "request_reply":
        options = {"request_reply": {**options["request_reply"], "timeout": call_timeout}}
    faults = [{"at": "1s", "action": "crash", "target": "n0"}]
    if recover:
        faults.append({"at": "1.3s", "action": "recover", "target": "n0"})
    return Scenario(
        pattern=pattern,
        duration=2.0,
        warmup=0.0,
        drain=20.0,
        seed=4,
        topology={"name": "full_mesh", "params": {"n": 8}},
        links={"latency": {"dist": "exponential", "mean": "1ms"}},
        nodes={"service": {"dist": "exponential", "mean": "12ms"}},
        workload={"producers": ["n3", "n4"], "consumers": ["n5", "n6", "n7"], "rate": 150},
        delivery={"guarantee": "at_least_once", "ack_timeout": "30ms", "max_attempts": "inf"},
        broker={
            "node": "n0",
            "replicas": replicas,
            "durable": durable,
            "prefetch": 1,
            "election_delay": "200ms",
            "reconnect_delay": "100ms",
        },
        faults=faults,
        **options,
    )


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_three_durable_replicas_lose_nothing_when_the_leader_crashes(pattern: str) -> None:
    result = simulate(scenario(pattern, replicas=["n0", "n1", "n2"], durable=True, recover=False))
    s = result.summary
    assert s["elections"] == 1 and s["unavailable"] == pytest.approx(0.2)
    assert s["lost"] == 0 and s["in_flight"] == 0 and s["delivered"] > 0, pattern
    assert result.check() == []  # at_least_once's no_loss holds
    assert s["redeliveries"] > 0  # what the old leader had delivered and not seen acknowledged comes again
    assert s["replication_messages"] > 0 and s["commit_latency_mean"] > 0


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_one_broker_with_a_non_durable_queue_loses_its_content_in_the_crash(pattern: str) -> None:
    # a call is retried only after 30 s: the run (and its drain) ends first
    result = simulate(scenario(pattern, replicas=1, durable=False, recover=True, call_timeout="30s"))
    s = result.summary
    assert s["lost_crash_lost"] > 0, pattern
    assert "commit_latency_mean" not in s  # the replication figures belong to replicated runs


@pytest.mark.parametrize("pattern", list(PATTERNS))
@pytest.mark.parametrize("seed", [0])
def test_random_crashes_of_every_replica_on_lossy_links_lose_nothing(pattern: str, seed: int) -> None:
    # leaders and followers crash and recover at random (several elections, spells without a quorum);
    # replicates lost on the links are sent again
    sc = scenario(pattern, replicas=["n0", "n1", "n2"], durable=True, recover=False).with_updates(
        {
            "seed": seed,
            "duration": 4.0,
            "drain": 60.0,
            "faults": [],
            "nemesis": [{"kind": "crash", "targets": ["n0", "n1", "n2"], "mttf": "700ms", "mttr": "300ms"}],
            "links": {"latency": {"dist": "exponential", "mean": "1ms"}, "loss": 0.02},
            "broker.ack_timeout": "200ms",
        }
    )
    result = simulate(sc)
    s = result.summary
    assert s["elections"] >= 3 and s["unavailable"] > 0.5
    assert s["lost"] == 0 and s["in_flight"] == 0, pattern
    assert result.check() == []
