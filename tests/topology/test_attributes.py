"""normalize(): defaults, precedence, parsing of every attribute form, and the errors."""

from __future__ import annotations

import math

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.core.distributions import Constant, Exponential, LogNormal, Normal
from sim.core.errors import SimError
from sim.topology import LINK_DEFAULTS, NODE_DEFAULTS, ROLES, normalize


def pair(**edge: object) -> nx.Graph:
    g = nx.Graph(name="pair")
    g.add_edge("a", "b", **edge)
    return g


def error(graph: nx.Graph, **kwargs: object) -> SimError:
    with pytest.raises(SimError) as info:
        normalize(graph, **kwargs)  # type: ignore[arg-type]
    return info.value


def test_default_tables() -> None:
    assert LINK_DEFAULTS == {"latency": "1ms", "loss": 0.0, "bandwidth": "inf"}
    assert NODE_DEFAULTS == {"role": "host", "servers": 1, "service": None}
    assert ROLES == ("host", "switch", "router", "broker", "gateway", "service", "client", "server")


def test_defaults_fill_everything() -> None:
    g = normalize(pair())
    assert g.edges["a", "b"] == {"latency": Constant(0.001), "loss": 0.0, "bandwidth": math.inf}
    assert g.nodes["a"] == {"role": "host", "servers": 1, "service": None}
    assert g.graph["name"] == "pair"


def test_link_precedence_edge_over_table_over_defaults() -> None:
    g = nx.Graph()
    g.add_edge("a", "b", latency="5ms")
    g.add_edge("b", "c", loss=0.2, bandwidth="1Gbps")
    out = normalize(g, links={"latency": "2ms", "loss": 0.1})
    assert out.edges["a", "b"] == {"latency": Constant(0.005), "loss": 0.1, "bandwidth": math.inf}
    assert out.edges["b", "c"] == {"latency": Constant(0.002), "loss": 0.2, "bandwidth": 125_000_000.0}


def test_node_precedence_node_over_table_over_defaults() -> None:
    g = nx.Graph()
    g.add_node("a", role="broker", servers=4)
    g.add_node("b", service="3ms")
    g.add_edge("a", "b")
    out = normalize(g, nodes={"servers": 2, "service": {"dist": "exponential", "mean": "1ms"}})
    assert out.nodes["a"] == {"role": "broker", "servers": 4, "service": Exponential(0.001)}
    assert out.nodes["b"] == {"role": "host", "servers": 2, "service": Constant(0.003)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.004, Constant(0.004)),
        (2, Constant(2.0)),
        ("250us", Constant(0.00025)),
        ({"dist": "exponential", "mean": "2ms"}, Exponential(0.002)),
        ('{"dist": "lognormal", "mean": "40ms", "cv": 0.05}', LogNormal(0.04, 0.05)),
        (' {"dist": "normal", "mean": "1ms", "std": "0.1ms"}', Normal(0.001, 0.0001)),
        (Exponential(0.5), Exponential(0.5)),
    ],
)
def test_latency_forms(value: object, expected: object) -> None:
    assert normalize(pair(latency=value)).edges["a", "b"]["latency"] == expected


def test_normalize_is_idempotent_and_does_not_mutate() -> None:
    g = pair(latency="5ms", weight=2.0, note="uplink")
    once = normalize(g)
    assert g.edges["a", "b"] == {"latency": "5ms", "weight": 2.0, "note": "uplink"}
    twice = normalize(once)
    assert nx.utils.graphs_equal(once, twice)
    assert twice.edges["a", "b"] == {
        "latency": Constant(0.005),
        "loss": 0.0,
        "bandwidth": math.inf,
        "note": "uplink",
    }


def test_nodes_relabelled_to_text_and_extra_attributes_kept() -> None:
    g = nx.Graph()
    g.add_node(1, region=7, rack="r1")
    g.add_edge(1, (2, 3))
    out = normalize(g)
    assert sorted(out.nodes) == ["(2, 3)", "1"]
    assert out.nodes["1"]["region"] == "7" and out.nodes["1"]["rack"] == "r1"
    assert "region" not in out.nodes["(2, 3)"]


def test_graphml_style_text_values() -> None:
    g = nx.Graph()
    g.add_node("a", servers="3", service="0")
    g.add_node("b", servers=2.0, service="0ms")
    g.add_node("c", servers=1, service="")
    g.add_edge("a", "b", loss="0.25", bandwidth="100Mbps")
    g.add_edge("b", "c", loss=0, bandwidth=1000)
    out = normalize(g)
    assert [out.nodes[v]["servers"] for v in "abc"] == [3, 2, 1]
    assert [out.nodes[v]["service"] for v in "abc"] == [None, None, None]
    assert out.edges["a", "b"]["loss"] == 0.25 and out.edges["a", "b"]["bandwidth"] == 12_500_000.0
    assert out.edges["b", "c"]["bandwidth"] == 1000.0


def test_directed_keeps_each_direction() -> None:
    g = nx.DiGraph()
    g.add_edge("a", "b", latency="1ms")
    g.add_edge("b", "a", latency="9ms", loss=0.5)
    out = normalize(g)
    assert out.is_directed()
    assert out.edges["a", "b"]["latency"] == Constant(0.001) and out.edges["a", "b"]["loss"] == 0.0
    assert out.edges["b", "a"]["latency"].mean == pytest.approx(0.009) and out.edges["b", "a"]["loss"] == 0.5
    assert error(nx.DiGraph([("a", "b")]), links={"loss": -1}).field == "links.loss"
    bad = nx.DiGraph()
    bad.add_edge("a", "b", loss=2)
    assert error(bad).field == "topology.edges[a->b].loss"


def test_disconnected_graph_is_fine() -> None:
    g = nx.Graph()
    g.add_nodes_from(["a", "b", "c"])
    g.add_edge("a", "b")
    out = normalize(g)
    assert out.number_of_nodes() == 3 and not nx.is_connected(out)


@pytest.mark.parametrize(
    ("edge", "field", "shown"),
    [
        ({"loss": 1.5}, "topology.edges[a-b].loss", "1.5"),
        ({"loss": "lots"}, "topology.edges[a-b].loss", "'lots'"),
        ({"latency": "-1ms"}, "topology.edges[a-b].latency", "'-1ms'"),
        ({"latency": "fast"}, "topology.edges[a-b].latency", "'fast'"),
        ({"latency": '{"dist": oops}'}, "topology.edges[a-b].latency", "'{\"dist\": oops}'"),
        ({"latency": '{"dist": "zipf"}'}, "topology.edges[a-b].latency.dist", "'zipf'"),
        ({"bandwidth": 0}, "topology.edges[a-b].bandwidth", "0"),
        ({"bandwidth": "fast"}, "topology.edges[a-b].bandwidth", "'fast'"),
    ],
)
def test_bad_edge_values(edge: dict[str, object], field: str, shown: str) -> None:
    e = error(pair(**edge))
    assert e.field == field
    assert str(e).startswith(f"{field} = {shown}: expected ")


@pytest.mark.parametrize(
    ("links", "field", "shown"),
    [
        ({"loss": 1.5}, "links.loss", "1.5"),
        ({"latency": "-1ms"}, "links.latency", "'-1ms'"),
        ({"bandwidth": -5}, "links.bandwidth", "-5"),
        ({"jitter": "1ms"}, "links.jitter", "'1ms'"),
    ],
)
def test_bad_links_table(links: dict[str, object], field: str, shown: str) -> None:
    e = error(pair(), links=links)
    assert e.field == field
    assert str(e).startswith(f"{field} = {shown}: expected ")


def test_unknown_keys_list_what_is_allowed() -> None:
    assert str(error(pair(), links={"jitter": "1ms"})) == (
        "links.jitter = '1ms': expected a known links setting: latency, loss, bandwidth"
    )
    assert (
        str(error(pair(), nodes={"cpu": 2}))
        == "nodes.cpu = 2: expected a known nodes setting: role, servers, service"
    )
    assert error(pair(), links=["loss"]).field == "links"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("node", "field", "shown"),
    [
        ({"role": "database"}, "topology.nodes[a].role", "'database'"),
        ({"role": 3}, "topology.nodes[a].role", "3"),
        ({"servers": 0}, "topology.nodes[a].servers", "0"),
        ({"servers": 1.5}, "topology.nodes[a].servers", "1.5"),
        ({"servers": "two"}, "topology.nodes[a].servers", "'two'"),
        ({"servers": True}, "topology.nodes[a].servers", "True"),
        ({"servers": math.inf}, "topology.nodes[a].servers", "inf"),
        ({"service": "-2ms"}, "topology.nodes[a].service", "'-2ms'"),
        ({"service": "{not json"}, "topology.nodes[a].service", "'{not json'"),
    ],
)
def test_bad_node_values(node: dict[str, object], field: str, shown: str) -> None:
    g = pair()
    g.nodes["a"].update(node)
    e = error(g)
    assert e.field == field
    assert str(e).startswith(f"{field} = {shown}: expected ")


def test_unknown_role_lists_roles() -> None:
    assert str(error(pair(), nodes={"role": "db"})) == (
        "nodes.role = 'db': expected a role, one of "
        "host, switch, router, broker, gateway, service, client, server"
    )


def test_graph_shape_errors() -> None:
    empty = error(nx.Graph(name="void"))
    assert str(empty) == "topology = 'void': expected a graph with at least one node"
    assert str(error(nx.Graph())) == "topology = 'graph': expected a graph with at least one node"
    assert error(nx.Graph(), where="scenario.topology").field == "scenario.topology"
    loop = nx.Graph()
    loop.add_edge("a", "a")
    assert error(loop).field == "topology.edges[a-a]"
    assert "no self-loops" in str(error(loop))
    multi = nx.MultiGraph([("a", "b"), ("a", "b")])
    assert "multigraphs" in str(error(multi))
    assert str(error([("a", "b")])) == "topology = 'list': expected a networkx Graph or DiGraph"  # type: ignore[arg-type]
    clash = nx.Graph()
    clash.add_nodes_from([1, "1"])
    assert "'1' appears twice" in str(error(clash))


@given(st.floats(0, 1))
def test_any_probability_is_a_loss(p: float) -> None:
    assert normalize(pair(loss=p)).edges["a", "b"]["loss"] == p


@given(
    st.one_of(
        st.floats(max_value=-1e-12), st.floats(min_value=1 + 1e-9, allow_infinity=True), st.just(math.nan)
    )
)
def test_any_non_probability_is_refused(p: float) -> None:
    with pytest.raises(
        SimError, match=r"topology\.edges\[a-b\]\.loss = .*: expected a probability in \[0, 1\]"
    ):
        normalize(pair(loss=p))


@given(st.floats(0, 1e6))
def test_any_nonnegative_number_is_a_constant_latency(x: float) -> None:
    assert normalize(pair(latency=x)).edges["a", "b"]["latency"] == Constant(x)


@given(st.integers(1, 10**6))
def test_any_whole_servers(n: int) -> None:
    g = (
        normalize(nx.Graph(), nodes={"servers": n})
        if False
        else normalize(pair(), nodes={"servers": float(n)})
    )
    assert g.nodes["a"]["servers"] == n and isinstance(g.nodes["a"]["servers"], int)
