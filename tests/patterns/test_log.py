"""The partitioned log: options, batching, acks and elections, consumer groups and their commits, retention,
idempotence and ordering — each on a small run with a fixed seed and exact outcomes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from sim import Scenario, SimError, simulate
from sim.patterns.log import Log
from sim.run.simulate import RunResult

SLOW = {"service": {"dist": "constant", "value": "3ms"}}
CLUSTER = {"name": "leaf_spine_dc", "params": {"spines": 1, "leaves": 2, "hosts_per_leaf": 2, "brokers": 3}}


def scenario(**over: Any) -> Scenario:
    """Two producers on leaf 0, two consumers on leaf 1, three brokers, four partitions, eight keys; about 200
    records/s from each producer for 1 s."""
    data: dict[str, Any] = {
        "pattern": "log",
        "duration": 1.0,
        "warmup": 0,
        "drain": 5.0,
        "seed": 3,
        "topology": CLUSTER,
        "workload": {
            "producers": ["h0_0", "h0_1"],
            "consumers": ["h1_0", "h1_1"],
            "rate": "200/s",
            "size": "1KB",
        },
        "delivery": {"guarantee": "at_least_once", "ordering": "per_key"},
        "log": {"brokers": 3, "partitions": 4, "keys": "uniform", "key_count": 8},
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Scenario.from_dict(data)


def rules(result: RunResult) -> list[str]:
    return sorted({v.rule for v in result.check()})


def crash(target: str, at: str, span: str) -> list[dict[str, str]]:
    return [{"at": at, "action": "crash", "target": target, "for": span}]


# -- options ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("brokers", 0),
        ("brokers", ["b", "b"]),
        ("partitions", 0),
        ("replication_factor", 4),
        ("acks", 2),
        ("acks", True),
        ("min_insync_replicas", 0),
        ("keys", "random"),
        ("key_skew", -1),
        ("commit", "sometimes"),
        ("start", "middle"),
        ("retention", 0),
        ("fetch_interval", 0),
        ("max_in_flight", 0),
        ("idempotent", "yes"),
        ("topic", "a/b"),
        ("color", "red"),
    ],
)
def test_a_bad_option_names_its_key(key: str, value: Any) -> None:
    options: dict[str, Any] = {"brokers": 3, key: value} if key != "brokers" else {key: value}
    with pytest.raises(SimError) as info:
        Log.from_options(options)
    assert info.value.field == key


@pytest.mark.parametrize(
    ("guarantee", "options"),
    [("effectively_once", {}), ("at_least_once", {"idempotent": True})],
)
def test_an_idempotent_producer_without_acks_is_refused(guarantee: str, options: dict[str, Any]) -> None:
    log = Log.from_options({"brokers": 3, "acks": 0, **options})
    with pytest.raises(SimError) as info:
        log.settings(guarantee, 3)
    assert (info.value.field, info.value.value) == ("log.acks", 0)
    no_acks = scenario(delivery={"guarantee": guarantee}, log={"acks": 0, **options})
    with pytest.raises(SimError) as info:
        simulate(no_acks)
    assert info.value.field == "log.acks"
    assert Log.from_options({"brokers": 3, "acks": 0, "idempotent": False}).settings(guarantee, 3)[1] == 0


def test_the_guarantee_sets_what_is_left_unset() -> None:
    log = Log.from_options({"brokers": 3})
    assert log.settings("at_most_once", 3) == (3, 1, 1, False, "periodic")
    assert log.settings("at_least_once", 3) == (3, -1, 2, False, "after_processing")
    assert log.settings("effectively_once", 3) == (3, -1, 2, True, "after_processing")
    assert log.settings("at_least_once", 1) == (1, -1, 1, False, "after_processing")
    mine = Log.from_options({"brokers": 3, "acks": 1, "commit": "periodic", "replication_factor": 2})
    assert mine.settings("at_least_once", 3) == (2, 1, 2, False, "periodic")


def test_settings_that_do_not_fit_together_or_the_topology_are_refused() -> None:
    with pytest.raises(SimError) as info:
        scenario(log={"brokers": 1, "min_insync_replicas": 2})
    assert info.value.field == "log.min_insync_replicas"
    two = {"name": "leaf_spine_dc", "params": {**CLUSTER["params"], "brokers": 2}}  # type: ignore[dict-item]
    with pytest.raises(SimError) as info:
        simulate(scenario(topology=two))
    assert info.value.field == "log.brokers"


# -- producing and consuming ----------------------------------------------------------------------------
def test_without_faults_every_record_is_processed_once_in_key_order() -> None:
    result = simulate(scenario())
    s = result.summary
    assert (s["offered"], s["delivered"], s["duplicates"], s["lost"]) == (399, 399, 0, 0)
    cols = result.columns
    assert set(cols["dst"].tolist()) == {"group"}
    assert set(cols["topic"].tolist()) == {f"events/k{i}" for i in range(8)}
    assert set(cols["receiver"].tolist()) == {"h1_0", "h1_1"}
    # every record reached both followers once: replication = 2 copies of each record's bytes
    assert s["replication_bytes"] == 2 * 399 * 1000
    assert s["elections"] == s["rebalances"] == s["ordering_violations"] == s["under_replicated_s"] == 0
    assert s["produce_latency_p50"] > 0 and np.isfinite(s["consumer_lag_mean"])
    assert rules(result) == []


def test_acks_all_waits_for_the_followers_and_acks_one_does_not() -> None:
    all_ = simulate(scenario()).summary["produce_latency_p50"]
    one = simulate(scenario(log={"acks": 1})).summary["produce_latency_p50"]
    zero = simulate(scenario(log={"acks": 0})).summary
    # a follower fetches every 5 ms, and the leader learns of its progress at its next fetch
    assert one < 0.001 < 0.005 < all_ < 0.015
    assert math.isnan(zero["produce_latency_p50"]) and zero["delivered"] == 399


def test_linger_gathers_records_into_batches() -> None:
    def run(**log: Any) -> dict[str, float]:
        return simulate(
            scenario(
                topology={"name": "star", "params": {"n": 3}},
                broker={"node": "hub"},
                workload={"producers": ["h0"], "consumers": ["h1"], "arrivals": "constant", "rate": "100/s"},
                log={"brokers": 1, "partitions": 1, **log},
            )
        ).summary

    alone, lingered, full = run(), run(linger="50ms"), run(linger="50ms", batch_size="3KB")
    # one hop to the broker: a produce request is one data transmission
    assert alone["data_transmissions"] == 100
    assert lingered["data_transmissions"] == 20  # 5 records every 50 ms
    assert full["data_transmissions"] == 34  # full at 3 records: 33 batches of 3, and the last one
    assert lingered["produce_latency_mean"] > 0.02 > alone["produce_latency_mean"]


# -- brokers crash ------------------------------------------------------------------------------------
@pytest.mark.parametrize("broker", ["broker0", "broker1", "broker2"])
@pytest.mark.parametrize("at", ["0.2s", "0.45s", "0.7s"])
def test_acks_all_with_two_in_sync_loses_nothing_when_a_broker_crashes(broker: str, at: str) -> None:
    result = simulate(scenario(faults=crash(broker, at, "300ms")))
    s = result.summary
    assert s["lost"] == 0 and s["delivered"] == s["offered"] == 399
    assert s["elections"] >= 1  # each broker leads partitions
    assert rules(result) == []


def test_acks_one_loses_what_the_followers_had_not_fetched() -> None:
    slow_followers = {"acks": 1, "fetch_interval": "20ms"}
    result = simulate(scenario(log=slow_followers, faults=crash("broker0", "0.3s", "300ms")))
    s = result.summary
    assert s["lost"] == s["lost_unreplicated"] > 0
    assert rules(result) == ["no_loss"]
    assert s["elections"] == 2  # broker0 leads partitions 0 and 3


def unclean(allowed: bool) -> Scenario:
    """Partition 0 on broker0 (leader) and broker1: the follower is out of the ISR when the leader dies.
    The one consumer is slower than the producers: records wait in the log."""
    return scenario(
        nodes=SLOW,
        log={
            "partitions": 1,
            "replication_factor": 2,
            "min_insync_replicas": 1,
            "unclean_leader_election": allowed,
        },
        faults=[
            {"at": "0.2s", "action": "crash", "target": "broker1", "for": "400ms"},
            {"at": "0.5s", "action": "crash", "target": "broker0", "for": "300ms"},
        ],
    )


def test_an_unclean_election_loses_the_new_leaders_missing_records() -> None:
    result = simulate(unclean(True))
    s = result.summary
    assert s["unclean_elections"] == s["elections"] == 1
    assert s["lost"] == s["lost_unclean_election"] > 0
    assert rules(result) == ["no_loss"]


def test_without_unclean_elections_the_partition_waits_for_its_leader() -> None:
    result = simulate(unclean(False))
    s = result.summary
    assert s["unclean_elections"] == 0 and s["lost"] == 0
    assert s["delivered"] == s["offered"]
    assert s["under_replicated_s"] > 0.3  # offline from 0.6 s to 0.8 s, short of a replica before and after
    assert rules(result) == []


# -- the consumer group ---------------------------------------------------------------------------------
def test_a_consumer_crash_replays_from_the_last_commit_after_processing() -> None:
    result = simulate(scenario(nodes=SLOW, workload={"rate": "300/s"}, faults=crash("h1_0", "0.2s", "700ms")))
    s = result.summary
    assert s["rebalances"] == 2  # noticed after the session timeout, then back
    assert s["lost"] == 0 and s["delivered"] == s["offered"] and s["duplicates"] > 0
    assert rules(result) == []


def test_periodic_commits_skip_what_was_committed_but_not_processed() -> None:
    result = simulate(
        scenario(
            nodes=SLOW,
            workload={"rate": "400/s"},
            log={"commit": "periodic", "commit_interval": "20ms"},
            faults=crash("h1_0", "0.4s", "1s"),
        )
    )
    s = result.summary
    assert s["lost"] == s["lost_committed_unprocessed"] > 0
    assert rules(result) == ["no_loss"]


@pytest.mark.parametrize(("start", "outcome"), [("earliest", "duplicates"), ("latest", "lost_skipped")])
def test_a_partition_without_a_commit_starts_where_start_says(start: str, outcome: str) -> None:
    result = simulate(
        scenario(
            delivery={"guarantee": "at_most_once"},
            log={"commit_interval": "10s", "start": start},
            faults=crash("h1_0", "0.5s", "1s"),
        )
    )
    s = result.summary
    other = {"duplicates", "lost_skipped"} - {outcome}
    assert s[outcome] > 0 and s[other.pop()] == 0


def test_retention_drops_what_the_group_did_not_read_in_time() -> None:
    result = simulate(
        scenario(
            log={"retention": "100ms", "partitions": 2, "session_timeout": "2s"},
            faults=crash("h1_0", "0.3s", "3s"),
        )
    )
    s = result.summary
    assert s["lost"] == s["lost_retention"] > 0
    assert rules(result) == []  # retention is a designed loss


def test_retention_while_the_leader_is_down_is_reported_by_the_followers() -> None:
    faults = crash("h1_0", "0.3s", "3s") + crash("broker0", "0.5s", "300ms")  # broker0 leads partition 0
    result = simulate(
        scenario(log={"retention": "100ms", "partitions": 2, "session_timeout": "2s"}, faults=faults)
    )
    s = result.summary
    # the records of h1_0's partition are deleted before anyone reads them, some while broker0 is down
    assert (s["offered"], s["delivered"], s["in_flight"]) == (399, 236, 0)
    assert s["lost"] == s["lost_retention"] == 163
    assert result.end_time < 1.2  # all settled soon after the last record: not drained to the 6 s cap
    assert rules(result) == []


# -- retries, order and idempotence ---------------------------------------------------------------------
LOSSY = {"links": {"loss": 0.1}, "delivery": {"ack_timeout": "20ms", "max_attempts": "inf"}}


def test_retries_with_several_batches_in_flight_reorder_a_key() -> None:
    result = simulate(scenario(**LOSSY, log={"max_in_flight": 5, "acks": 1}))  # type: ignore[arg-type]
    s = result.summary
    assert s["ordering_violations"] > 0 and s["duplicates"] > 0
    assert "fifo" in rules(result)


def test_an_idempotent_producer_keeps_order_and_appends_once() -> None:
    result = simulate(scenario(**LOSSY, log={"max_in_flight": 5, "acks": 1, "idempotent": True}))  # type: ignore[arg-type]
    s = result.summary
    assert s["ordering_violations"] == 0 and s["duplicates"] == 0 and s["lost"] == 0
    assert rules(result) == []


# -- determinism ----------------------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_ledger_traced_or_not() -> None:
    faults = crash("broker0", "0.3s", "300ms") + crash("h1_1", "0.5s", "700ms")
    runs = [simulate(scenario(faults=faults, trace=trace)) for trace in (False, True, False)]
    for other in runs[1:]:
        for name, column in runs[0].columns.items():
            assert np.array_equal(column, other.columns[name]), name


def test_effectively_once_processes_each_record_once_across_a_consumer_crash() -> None:
    faults = crash("h1_0", "0.2s", "700ms")
    result = simulate(
        scenario(
            nodes=SLOW, workload={"rate": "300/s"}, delivery={"guarantee": "effectively_once"}, faults=faults
        )
    )
    s = result.summary
    assert s["duplicates"] == 0 and s["lost"] == 0 and s["delivered"] == s["offered"]
    assert result.counters["deduplicated"] > 0  # the replayed records, recognised
    assert rules(result) == []


def test_a_start_offset_ahead_of_the_log_skips_the_records_below_it() -> None:
    result = simulate(scenario(delivery={"guarantee": "at_most_once"}, log={"partitions": 1, "start": 5}))
    s = result.summary
    assert (s["lost"], s["lost_skipped"], s["delivered"]) == (5, 5, s["offered"] - 5)
    cols = result.columns
    skipped = np.flatnonzero(cols["reason"] == "skipped")
    assert skipped.tolist() == np.argsort(cols["created_at"])[:5].tolist()  # the first five records
    assert rules(result) == []  # skipped as asked: not a loss at most once either
