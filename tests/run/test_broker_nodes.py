"""A cluster's broker nodes: ids as given, or a count from the topology's nodes with role ``broker``."""

from __future__ import annotations

import pytest

from sim.config.scenario import Scenario
from sim.core.context import SimContext
from sim.core.errors import SimError
from sim.run.build import build


def _world(**topology: object) -> object:
    scenario = Scenario.model_validate(
        {
            "pattern": "queue",
            "duration": "1s",
            "topology": {"name": "leaf_spine_dc", "params": {"leaves": 2, "hosts_per_leaf": 2, **topology}},
            "workload": {"producers": ["h0_0"], "consumers": ["h1_0"], "rate": "10/s"},
        }
    )
    return build(SimContext.from_seed(1), scenario)


def test_a_count_takes_the_broker_node_first_then_the_other_broker_nodes_in_order() -> None:
    world = _world(brokers=3)
    assert world.broker_nodes(3, "log.brokers") == ("broker0", "broker1", "broker2")
    assert world.broker_nodes(1, "log.brokers") == ("broker0",)


def test_a_count_beyond_the_topology_names_the_field_and_the_broker_nodes() -> None:
    world = _world(brokers=2)
    with pytest.raises(SimError, match=r"log\.brokers.*from 1 to 2.*broker0, broker1"):
        world.broker_nodes(3, "log.brokers")


def test_ids_are_taken_as_given_and_checked() -> None:
    world = _world(brokers=2)
    assert world.broker_nodes(["broker1", "spine0"], "log.brokers") == ("broker1", "spine0")
    with pytest.raises(SimError, match="a node of the topology"):
        world.broker_nodes(["nowhere"], "log.brokers")
    with pytest.raises(SimError, match="distinct node ids"):
        world.broker_nodes(["broker1", "broker1"], "log.brokers")


def test_a_broker_host_has_the_broker_tables_processing_and_is_made_once() -> None:
    world = _world(brokers=2)
    host = world.broker_host("broker1")
    assert world.broker_host("broker1") is host
    assert host.servers == world.scenario.broker.servers
    with pytest.raises(SimError, match="runs no producer or consumer"):
        world.broker_host("h0_0")
