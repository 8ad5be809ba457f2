"""Dedup scope of effectively-once: per consumer (volatile memory) or shared by a queue's consumers."""

from __future__ import annotations

import pytest

from sim import Scenario, simulate
from sim.core.errors import SimError


def competing(scope: str, **changes: object) -> Scenario:
    """Two consumers compete for one queue over lossy links; a lost consumer ack makes the broker
    redeliver, often to the other consumer."""
    base = Scenario(
        pattern="queue",
        duration="3s",
        warmup="0.5s",
        drain="10s",
        seed=4,
        topology={"name": "star", "params": {"n": 4}},
        links={"latency": "1ms", "loss": 0.03},
        workload={"producers": ["h0"], "consumers": ["h1", "h2"], "rate": "200/s", "size": "500B"},
        delivery={
            "guarantee": "effectively_once",
            "ack_timeout": "20ms",
            "max_attempts": "inf",
            "dedup": scope,
        },
        broker={"node": "hub", "ack_timeout": "100ms"},
    )
    return base.with_updates(dict(changes)) if changes else base


def test_per_consumer_memory_lets_a_redelivery_to_the_other_consumer_through() -> None:
    result = simulate(competing("consumer"))
    s = result.summary
    assert s["redeliveries"] > 0
    assert s["duplicates"] > 0 and s["op_duplicates"] == s["duplicates"]
    frame = result.ledger
    # every duplicate went to a consumer other than the first receiver's memory: the broker redelivered it
    assert (frame["duplicates"] > 0).sum() > 0
    rules = {v.rule for v in result.check()}
    assert rules == {"no_duplicates"}  # the check says so: per-consumer memory is not effectively-once


def test_a_shared_store_suppresses_them() -> None:
    consumer, shared = simulate(competing("consumer")), simulate(competing("shared"))
    s = shared.summary
    assert s["duplicates"] == 0 and s["op_duplicates"] == 0
    assert shared.check() == []
    # the same work, the same redeliveries: only where the duplicates end differs
    assert s["offered"] == consumer.summary["offered"]
    assert s["delivered"] == s["offered"]
    assert s["deduplicated"] > consumer.summary["deduplicated"]


def test_one_consumer_dedups_alike_with_either_scope() -> None:
    alone = {
        scope: simulate(competing(scope, **{"workload.consumers": ["h1"]})).summary
        for scope in ("consumer", "shared")
    }
    assert alone["consumer"]["duplicates"] == alone["shared"]["duplicates"] == 0
    assert alone["consumer"]["deduplicated"] == alone["shared"]["deduplicated"] > 0


def test_the_shared_store_outlives_a_consumer_crash() -> None:
    crash = [{"at": "1s", "action": "crash", "target": "h1", "for": "300ms"}]
    # one consumer: after its crash, per-consumer memory is gone, so a redelivery of what it had is
    # processed again; the shared store still knows it
    runs = {
        scope: simulate(
            competing(scope, **{"workload.consumers": ["h1"], "faults": crash, "links.loss": 0.1})
        )
        for scope in ("consumer", "shared")
    }
    assert runs["shared"].summary["duplicates"] == 0
    assert runs["consumer"].summary["duplicates"] > 0  # the crash took the consumer's memory with it


def test_an_unknown_scope_is_refused_naming_the_field() -> None:
    with pytest.raises(SimError, match="dedup"):
        competing("global")


def test_request_reply_servers_share_their_reply_cache() -> None:
    base = Scenario.from_toml("experiments/scenarios/request_reply.toml").with_updates({"duration": "4s"})
    per_server = simulate(base.with_updates({"delivery.dedup": "consumer"}))
    shared = simulate(base.with_updates({"delivery.dedup": "shared"}))
    # a retried request that another server takes is processed again with per-server caches
    assert per_server.summary["op_duplicates"] > 0
    assert {v.rule for v in per_server.check()} == {"no_duplicates"}
    assert shared.summary["op_duplicates"] == 0
    assert shared.check() == []
    assert shared.summary["op_success_ratio"] == 1.0
