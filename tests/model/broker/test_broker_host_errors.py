"""A broker host refused (it runs a producer or a consumer) is reported under the setting that named it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim import Scenario, SimError
from sim.core.context import SimContext
from sim.run.build import build, topology_search_path

SCENARIOS = Path(__file__).resolve().parents[3] / "experiments" / "scenarios"


def test_a_replica_on_the_producer_s_node_is_reported_as_broker_replicas() -> None:
    sc = Scenario(
        pattern="queue",
        duration=1.0,
        topology={"name": "full_mesh", "params": {"n": 5}},
        workload={"producers": ["n3"], "consumers": ["n4"], "rate": 1},
        broker={"node": "n0", "replicas": ["n0", "n1", "n3"]},
    )
    with pytest.raises(SimError) as err:
        build(SimContext.from_seed(1), sc).broker()
    assert (err.value.field, err.value.value) == ("broker.replicas", "n3")
    assert "broker.replicas" in str(err.value) and "broker.node" not in str(err.value)


def test_a_log_broker_on_the_producer_s_node_is_reported_as_log_brokers() -> None:
    sc = Scenario.from_toml(SCENARIOS / "log.toml")
    producer = sc.workload.producers[0]
    sc = sc.with_updates({"log.brokers": ["broker0", "broker1", producer]})
    with pytest.raises(SimError) as err:
        build(SimContext.from_seed(1), sc, search=topology_search_path())
    assert (err.value.field, err.value.value) == ("log.brokers", producer)
    assert "log.brokers" in str(err.value) and "broker.node" not in str(err.value)


def test_the_broker_node_itself_is_still_reported_as_broker_node() -> None:
    sc = Scenario(
        pattern="queue",
        duration=1.0,
        topology={"name": "full_mesh", "params": {"n": 5}},
        workload={"producers": ["n3"], "consumers": ["n4"], "rate": 1},
        broker={"node": "n3"},
    )
    with pytest.raises(SimError) as err:
        build(SimContext.from_seed(1), sc).broker()
    assert err.value.field == "broker.node"
