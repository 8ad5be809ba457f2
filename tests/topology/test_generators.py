"""Built-in generators: shapes, names, roles, seeds and parameter validation."""

from __future__ import annotations

from collections import Counter

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core.errors import SimError
from sim.topology import GENERATORS, build_topology
from sim.topology.generators import (
    MAX_SIZE,
    fat_tree,
    grid,
    leaf_spine,
    line,
    multi_region,
    random,
    star,
    tree,
    watts_strogatz,
)


def roles(g: nx.Graph) -> dict[str, int]:
    return dict(Counter(role for _, role in g.nodes(data="role")))


def test_registry_names_in_order() -> None:
    assert list(GENERATORS) == [
        "line", "ring", "star", "full_mesh", "tree", "grid", "random", "barabasi_albert",
        "watts_strogatz", "leaf_spine", "fat_tree", "multi_region",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "params", "nodes", "edges", "expected_roles"),
    [
        ("line", {}, 3, 2, {"host": 3}),
        ("line", {"n": 1}, 1, 0, {"host": 1}),
        ("ring", {}, 8, 8, {"host": 8}),
        ("ring", {"n": 3}, 3, 3, {"host": 3}),
        ("star", {}, 9, 8, {"switch": 1, "host": 8}),
        ("full_mesh", {}, 5, 10, {"host": 5}),
        ("full_mesh", {"n": 1}, 1, 0, {"host": 1}),
        ("tree", {}, 13, 12, {"switch": 4, "host": 9}),
        ("tree", {"depth": 3, "fanout": 2}, 15, 14, {"switch": 7, "host": 8}),
        ("tree", {"depth": 2, "fanout": 1}, 3, 2, {"switch": 2, "host": 1}),
        ("grid", {}, 16, 24, {"host": 16}),
        ("grid", {"rows": 2, "cols": 3}, 6, 7, {"host": 6}),
        ("random", {"seed": 3}, 20, None, {"host": 20}),
        ("barabasi_albert", {"seed": 3}, 100, 196, {"host": 100}),
        ("watts_strogatz", {"seed": 3}, 20, 40, {"host": 20}),
        ("leaf_spine", {}, 22, 24, {"switch": 6, "host": 16}),
        ("leaf_spine", {"spines": 3, "leaves": 2, "hosts_per_leaf": 0}, 5, 6, {"switch": 5}),
        ("fat_tree", {}, 36, 48, {"switch": 20, "host": 16}),
        ("fat_tree", {"k": 6}, 99, 162, {"switch": 45, "host": 54}),
        ("fat_tree", {"k": 2}, 7, 6, {"switch": 5, "host": 2}),
        ("multi_region", {}, 15, 15, {"gateway": 3, "host": 12}),
        ("multi_region", {"regions": 1, "nodes_per_region": 0}, 1, 0, {"gateway": 1}),
    ],
)
def test_counts_and_roles(
    name: str, params: dict[str, object], nodes: int, edges: int | None, expected_roles: dict[str, int]
) -> None:
    g = GENERATORS[name](**params)
    assert g.number_of_nodes() == nodes
    if edges is not None:
        assert g.number_of_edges() == edges
    assert roles(g) == expected_roles
    assert all(isinstance(v, str) for v in g)
    assert g.graph["name"] == name
    assert nx.is_connected(g)


def test_node_names() -> None:
    assert list(line(3)) == ["n0", "n1", "n2"]
    assert sorted(star(2)) == ["h0", "h1", "hub"]
    assert set(grid(2, 2)) == {"n0_0", "n0_1", "n1_0", "n1_1"}
    assert set(grid(2, 2)["n0_0"]) == {"n0_1", "n1_0"}
    t = tree(depth=2, fanout=2)
    assert set(t["s0"]) == {"s1", "s2"}
    assert set(t["s1"]) == {"s0", "h0", "h1"} and set(t["s2"]) == {"s0", "h2", "h3"}
    ls = leaf_spine(spines=2, leaves=2, hosts_per_leaf=2)
    assert set(ls["leaf1"]) == {"spine0", "spine1", "h1_0", "h1_1"}
    assert ls.nodes["spine0"]["layer"] == "spine"


def test_fat_tree_structure() -> None:
    g = fat_tree(4)
    layers = Counter(layer for _, layer in g.nodes(data="layer") if layer)
    assert layers == {"core": 4, "agg": 8, "edge": 8}
    assert all(g.degree(v) == 1 for v, r in g.nodes(data="role") if r == "host")
    assert all(g.degree(v) == 4 for v, r in g.nodes(data="layer") if r in ("agg", "edge", "core"))
    assert set(g["agg0_1"]) == {"core2", "core3", "edge0_0", "edge0_1"}
    assert set(g["edge3_1"]) == {"agg3_0", "agg3_1", "h3_1_0", "h3_1_1"}


def test_multi_region_attributes() -> None:
    g = multi_region(
        regions=3,
        nodes_per_region=2,
        intra_latency="2ms",
        inter_latency={"dist": "exponential", "mean": "30ms"},
    )
    assert {g.nodes[v]["region"] for v in g} == {"r0", "r1", "r2"}
    assert g.nodes["r2h1"]["region"] == "r2" and g.nodes["gw1"]["role"] == "gateway"
    gateways = g.subgraph(["gw0", "gw1", "gw2"])
    assert gateways.number_of_edges() == 3
    assert g.edges["gw0", "r0h1"]["latency"] == "2ms"
    assert g.edges["gw1", "gw2"]["latency"] == {"dist": "exponential", "mean": "30ms"}
    built = build_topology("multi_region", {"regions": 2, "nodes_per_region": 1, "inter_latency": "50ms"})
    assert built.edges["gw0", "gw1"]["latency"].mean == 0.05
    assert built.edges["gw0", "r0h0"]["latency"].mean == 0.001


def test_multi_region_spread_is_seeded() -> None:
    a = multi_region(regions=4, spread=0.5, seed=7)
    b = multi_region(regions=4, spread=0.5, seed=7)
    c = multi_region(regions=4, spread=0.5, seed=8)
    lat = [a.edges[e]["latency"] for e in a.subgraph([f"gw{i}" for i in range(4)]).edges]
    assert lat == [b.edges[e]["latency"] for e in b.subgraph([f"gw{i}" for i in range(4)]).edges]
    assert lat != [c.edges[e]["latency"] for e in c.subgraph([f"gw{i}" for i in range(4)]).edges]
    assert all(0.02 <= x <= 0.06 for x in lat) and len(set(lat)) == 6


@pytest.mark.parametrize("name", ["random", "barabasi_albert", "watts_strogatz"])
def test_seed_reproduces_and_differs(name: str) -> None:
    gen = GENERATORS[name]
    assert sorted(gen(seed=1).edges) == sorted(gen(seed=1).edges)
    assert sorted(gen(seed=1).edges) != sorted(gen(seed=2).edges)
    built = build_topology(name, seed=5)
    assert sorted(built.edges) == sorted(gen(seed=5).edges)
    # a seed in params wins over the keyword
    assert sorted(build_topology(name, {"seed": 1}, seed=5).edges) == sorted(gen(seed=1).edges)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_random_is_connected(n: int, seed: int) -> None:
    g = random(n, 0.5, seed=seed)
    assert g.number_of_nodes() == n and nx.is_connected(g)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(7, 60), half_k=st.integers(1, 3), p=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_watts_strogatz_is_connected(n: int, half_k: int, p: float, seed: int) -> None:
    g = watts_strogatz(n, 2 * half_k, p, seed=seed)
    assert g.number_of_nodes() == n and nx.is_connected(g)


def test_random_needs_enough_p() -> None:
    with pytest.raises(SimError, match=r"topology\.params\.p = 0\.01: expected a higher p for n = 50"):
        random(50, 0.01, seed=1)
    with pytest.raises(SimError, match=r"topology\.params\.p = 0\.0"):
        random(3, 0.0, seed=1)
    assert random(1, 0.0).number_of_nodes() == 1


@pytest.mark.parametrize(
    ("name", "params", "field", "shown"),
    [
        ("line", {"n": 0}, "topology.params.n", "0"),
        ("line", {"n": "3"}, "topology.params.n", "'3'"),
        ("line", {"n": True}, "topology.params.n", "True"),
        ("ring", {"n": 2}, "topology.params.n", "2"),
        ("ring", {"n": 4.5}, "topology.params.n", "4.5"),
        ("star", {"n": -1}, "topology.params.n", "-1"),
        ("tree", {"depth": 0}, "topology.params.depth", "0"),
        ("tree", {"fanout": 0}, "topology.params.fanout", "0"),
        ("grid", {"cols": 0}, "topology.params.cols", "0"),
        ("random", {"p": 1.5}, "topology.params.p", "1.5"),
        ("random", {"seed": -1}, "topology.params.seed", "-1"),
        ("random", {"seed": "x"}, "topology.params.seed", "'x'"),
        ("barabasi_albert", {"n": 2, "m": 2}, "topology.params.n", "2"),
        ("watts_strogatz", {"k": 3}, "topology.params.k", "3"),
        ("watts_strogatz", {"n": 4, "k": 4}, "topology.params.n", "4"),
        ("leaf_spine", {"spines": 0}, "topology.params.spines", "0"),
        ("fat_tree", {"k": 5}, "topology.params.k", "5"),
        ("multi_region", {"regions": 0}, "topology.params.regions", "0"),
        ("multi_region", {"inter_latency": "-1ms"}, "topology.params.inter_latency", "'-1ms'"),
        ("multi_region", {"spread": 1.0}, "topology.params.spread", "1.0"),
        ("multi_region", {"spread": 0.1, "inter_latency": {"dist": "exponential", "mean": "1ms"}},
         "topology.params.inter_latency", "{'dist'"),
        ("line", {"n": 10**9}, "topology.params.n", "1000000000"),
        ("full_mesh", {"n": 5000}, "topology.params.n", "5000"),
        ("tree", {"depth": 10**9, "fanout": 10**9}, "topology.params.depth", "1000000000"),
    ],
)  # fmt: skip
def test_bad_param_values(name: str, params: dict[str, object], field: str, shown: str) -> None:
    with pytest.raises(SimError) as info:
        build_topology(name, params)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field} = {shown}")


def test_size_limit_is_stated() -> None:
    with pytest.raises(SimError, match=f"at most {MAX_SIZE} nodes plus links"):
        line(MAX_SIZE)


def test_integral_floats_are_accepted() -> None:
    assert build_topology("line", {"n": 4.0}).number_of_nodes() == 4


def test_unknown_param_lists_accepted() -> None:
    with pytest.raises(SimError) as info:
        build_topology("tree", {"depht": 3})
    assert (
        str(info.value) == "topology.params.depht = 3: expected one of the accepted parameters: depth, fanout"
    )
    with pytest.raises(SimError, match=r"topology\.params\.n = 1: .*spines, leaves, hosts_per_leaf"):
        build_topology("leaf_spine", {"n": 1})


def test_unknown_builtin() -> None:
    with pytest.raises(SimError) as info:
        build_topology("hypercube")
    assert info.value.field == "topology.name"
    assert str(info.value) == (
        "topology.name = 'hypercube': expected a builtin (line, ring, ...), a name in the project's "
        "topologies/, or the path of a .py/.graphml/.json file; found none"
    )


def test_generators_are_pure() -> None:
    assert sorted(leaf_spine().edges) == sorted(leaf_spine().edges)
    assert nx.utils.graphs_equal(fat_tree(4), fat_tree(4))
