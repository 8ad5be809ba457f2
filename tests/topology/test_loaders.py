"""Loaders (Python, GraphML, node-link JSON), name resolution, the shipped topologies, describe()."""

from __future__ import annotations

import doctest
import importlib.util
import json
import math
import re
import textwrap
from pathlib import Path

import networkx as nx
import pytest

from sim.core.distributions import Constant, Exponential, LogNormal, Normal
from sim.core.errors import SimError
from sim.topology import (
    GENERATORS,
    available,
    build_topology,
    describe,
    format_description,
    load_file,
    normalize,
)

ROOT = Path(__file__).parents[2]
SHIPPED = ROOT / "topologies"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def file_error(path: Path | str, params: dict[str, object] | None = None) -> SimError:
    with pytest.raises(SimError) as info:
        build_topology(str(path), params)
    return info.value


# -- Python files ---------------------------------------------------------------------------------
PY = """
    import networkx as nx
    import numpy as np

    def build(n=3, latency="2ms", seed=None):
        rng = np.random.default_rng(seed)
        g = nx.path_graph(n)
        nx.set_edge_attributes(g, latency, "latency")
        nx.set_node_attributes(g, "server", "role")
        g.graph["draw"] = float(rng.random())
        return g
"""


def test_python_file_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path / "chain.py", PY)
    g = build_topology(str(path), {"n": 4, "latency": "7ms"}, seed=11)
    assert sorted(g.nodes) == ["0", "1", "2", "3"]
    assert g.edges["2", "3"]["latency"] == Constant(0.007)
    assert {r for _, r in g.nodes(data="role")} == {"server"}
    assert g.graph["name"] == "chain"
    assert g.graph["draw"] == build_topology("chain", seed=11, search=[tmp_path]).graph["draw"]
    assert g.graph["draw"] != build_topology("chain", seed=12, search=[tmp_path]).graph["draw"]
    raw = load_file(path, {"n": 2})
    assert raw.edges[0, 1] == {"latency": "2ms"}  # load_file does not normalize


def test_python_kwargs_build_gets_seed_and_params(tmp_path: Path) -> None:
    write(tmp_path / "anything.py", """
        import networkx as nx

        def build(**params):
            g = nx.Graph(name="named-inside")
            g.add_node("x", role="client", seed=params["seed"], extra=params.get("extra"))
            return g
    """)  # fmt: skip
    g = build_topology("anything", {"extra": 5}, seed=9, search=[tmp_path])
    assert g.nodes["x"] == {"role": "client", "seed": 9, "extra": 5, "servers": 1, "service": None}
    assert g.graph["name"] == "named-inside"


def test_python_unknown_param(tmp_path: Path) -> None:
    path = write(tmp_path / "chain.py", PY)
    e = file_error(path, {"size": 3})
    assert str(e) == "topology.params.size = 3: expected one of the accepted parameters: n, latency, seed"


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("def build(:\n    pass\n", r"a Python file that runs \(SyntaxError: "),
        ("import no_such_module_xyz\n", r"a Python file that runs \(ModuleNotFoundError: "),
        ("import networkx as nx\n", r"a Python file defining build\(\*\*params\) -> networkx\.Graph"),
        ("build = 3\n", r"a Python file defining build"),
        ("def build():\n    return [1, 2]\n", r"build\(\) to return a networkx Graph, not list"),
        (
            "def build():\n    raise KeyError('rack')\n",
            r"a build\(\*\*params\) that returns a graph \(it raised KeyError: 'rack'\)",
        ),
    ],
)
def test_python_bad_files(tmp_path: Path, source: str, allowed: str) -> None:
    path = tmp_path / "bad.py"
    path.write_text(source, encoding="utf-8")
    e = file_error(path)
    assert e.field == "topology.file" and e.value == str(path)
    assert re.search(rf"^topology\.file = {re.escape(str(path))}: expected {allowed}", str(e))


def test_python_build_may_raise_sim_error(tmp_path: Path) -> None:
    write(tmp_path / "strict.py", """
        from sim.core.errors import SimError

        def build(n=1):
            raise SimError("topology.params.n", n, "an odd number")
    """)  # fmt: skip
    assert (
        str(file_error(tmp_path / "strict.py", {"n": 2})) == "topology.params.n = 2: expected an odd number"
    )


def test_loading_leaves_no_module_behind(tmp_path: Path) -> None:
    import sys

    before = set(sys.modules)
    build_topology(str(write(tmp_path / "chain.py", PY)))
    assert {m for m in set(sys.modules) - before if m.startswith("_sim_topology_")} == set()


# -- GraphML and JSON -----------------------------------------------------------------------------
def sample_graph() -> nx.Graph:
    g = nx.Graph(name="sample")
    g.add_node("a", role="client", region="eu")
    g.add_node("b", role="broker", servers=3, service="1ms")
    g.add_node("c")
    g.add_edge("a", "b", latency="5ms", loss=0.01, bandwidth="1Gbps", weight=2.0)
    g.add_edge("b", "c", latency=json.dumps({"dist": "exponential", "mean": "2ms"}))
    return g


def check_sample(g: nx.Graph) -> None:
    assert g.edges["a", "b"] == {"latency": Constant(0.005), "loss": 0.01, "bandwidth": 125_000_000.0}
    assert g.edges["b", "c"]["latency"] == Exponential(0.002)
    assert g.nodes["a"] == {"role": "client", "region": "eu", "servers": 1, "service": None}
    assert g.nodes["b"] == {"role": "broker", "servers": 3, "service": Constant(0.001)}
    assert g.nodes["c"] == {"role": "host", "servers": 1, "service": None}


def test_graphml_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sample.graphml"
    nx.write_graphml(sample_graph(), path)
    g = build_topology(str(path))
    check_sample(g)
    assert g.graph["name"] == "sample"
    assert build_topology("sample", search=[tmp_path]).edges["a", "b"]["loss"] == 0.01


@pytest.mark.parametrize("key", ["edges", "links"])
def test_json_round_trip(tmp_path: Path, key: str) -> None:
    data = nx.node_link_data(sample_graph(), edges=key)
    data["links" if key == "edges" else "edges"] = None
    del data["links" if key == "edges" else "edges"]
    data["edges" if key == "edges" else "links"][1]["latency"] = {"dist": "exponential", "mean": "2ms"}
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    check_sample(build_topology(str(path)))


def test_json_minimal_and_directed(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({
        "directed": True,
        "nodes": [{"id": 1}, {"id": 2}],
        "edges": [{"source": 1, "target": 2, "latency": "3ms"}, {"source": 2, "target": 1}],
    }), encoding="utf-8")  # fmt: skip
    g = build_topology(str(path))
    assert g.is_directed() and g.graph["name"] == "d"
    assert g.edges["1", "2"]["latency"] == Constant(0.003) and g.edges["2", "1"]["latency"] == Constant(0.001)
    only_nodes = tmp_path / "n.json"
    only_nodes.write_text('{"nodes": [{"id": "solo"}]}', encoding="utf-8")
    assert list(build_topology(str(only_nodes)).nodes) == ["solo"]


@pytest.mark.parametrize(
    ("name", "text", "allowed"),
    [
        ("bad.graphml", "<graphml><graph", r"valid GraphML \(ParseError: "),
        ("bad.graphml", "not xml at all", r"valid GraphML \("),
        ("bad.json", '{"nodes": [', r"valid node-link JSON \(JSONDecodeError: "),
        (
            "bad.json",
            "[1, 2]",
            r'valid node-link JSON \(ValueError: the top level must be an object with "nodes"',
        ),
        (
            "bad.json",
            '{"nodes": [{"name": "x"}]}',
            r'\(ValueError: nodes\[0\] must be an object with an "id"\)',
        ),
        (
            "bad.json",
            '{"nodes": [{"id": 1}], "links": [{"source": 1}]}',
            r'links\[0\] must be an object with "source"',
        ),
        ("bad.json", '{"nodes": "abc"}', r'\(ValueError: the top level must be an object with "nodes" and'),
        ("bad.json", '{"nodes": [{"id": [1]}]}', r"\(ValueError: nodes\[0\]\.id must be a string or a whole"),
    ],
)
def test_unparseable_files(tmp_path: Path, name: str, text: str, allowed: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    e = file_error(path)
    assert e.field == "topology.file" and name in str(e)
    assert re.search(allowed, str(e))


def test_multigraph_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    edges = [{"source": "a", "target": "b", "key": 0}, {"source": "a", "target": "b", "key": 1}]
    path.write_text(json.dumps({"multigraph": True, "nodes": [{"id": "a"}, {"id": "b"}], "edges": edges}))
    assert "multigraphs" in str(file_error(path))


def test_empty_file_graph_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "void.json"
    path.write_text('{"nodes": [], "edges": []}', encoding="utf-8")
    assert str(file_error(path)) == "topology = 'void': expected a graph with at least one node"


def test_graphml_and_json_take_no_params() -> None:
    e = file_error(SHIPPED / "example_star.json", {"n": 3})
    assert str(e) == "topology.params.n = 3: expected no parameters: .json topologies take none"
    assert file_error(SHIPPED / "example_line.graphml", {"k": 1}).field == "topology.params.k"


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    e = file_error(tmp_path / "nowhere.py")
    assert e.field == "topology.name" and "nowhere.py" in str(e)
    with pytest.raises(SimError) as info:
        load_file(tmp_path / "nowhere.graphml")
    assert str(info.value).startswith(
        f"topology.file = {tmp_path / 'nowhere.graphml'}: expected an existing file"
    )
    (tmp_path / "t.yaml").write_text("nodes: []", encoding="utf-8")
    with pytest.raises(SimError, match=r"topology\.file = .*t\.yaml: expected a \.py file"):
        load_file(tmp_path / "t.yaml")


# -- name resolution ------------------------------------------------------------------------------
def test_search_order_and_available(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    write(first / "net.py", "import networkx as nx\ndef build():\n    return nx.Graph([('py', 'x')])\n")
    nx.write_graphml(nx.Graph([("graphml", "x")]), first / "net.graphml")
    nx.write_graphml(nx.Graph([("other", "x")]), second / "other.graphml")
    (second / "notes.txt").write_text("not a topology", encoding="utf-8")
    write(second / "_helper.py", "X = 1\n")
    assert "py" in build_topology("net", search=[first, second])
    assert "graphml" in build_topology("net.graphml", search=[first])
    assert "other" in build_topology("other", search=[first, second])
    names = available([first, second, tmp_path / "missing"])
    assert names == [*GENERATORS, "net", "other"]
    assert available() == list(GENERATORS)


# a topology file that leaves a mark when it runs: proof that it was (or was not) imported
MARKER = """\
import pathlib
import networkx as nx
pathlib.Path(__file__).with_suffix(".ran").write_text("imported")
def build():
    return nx.Graph([("local", "x")])
"""


def test_a_name_never_runs_a_file_of_the_working_directory_or_near_the_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sim.cli.main import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "topologies").mkdir()
    (tmp_path / "project" / "topologies").mkdir(parents=True)
    (tmp_path / "project" / "scenarios").mkdir()
    for folder in (tmp_path / "topologies", tmp_path / "project" / "topologies"):
        write(folder / "microservice_mesh.py", MARKER)  # would shadow the shipped one
        write(folder / "mine.py", MARKER)
    scenario = tmp_path / "project" / "scenarios" / "s.toml"
    for name in ("microservice_mesh", "mine"):
        scenario.write_text(f'duration = "1s"\ndrain = "1s"\n[topology]\nname = "{name}"\n')
        status = main(["simulate", str(scenario), "--json"])
        out, err = capsys.readouterr()
        if name == "microservice_mesh":  # the project's own, not the local copy
            assert status == 0 and json.loads(out)["summary"]["delivered"] > 0
        else:
            assert status == 2
            assert err.startswith("sim: error: topology.name = 'mine': expected a builtin")
            assert "to use topologies/mine.py, write its path" in err
    assert not list(tmp_path.rglob("*.ran"))
    assert main(["list", "topologies"]) == 0
    listed = capsys.readouterr().out.split()
    assert "microservice_mesh" in listed and "mine" not in listed
    # written as a path, the same file is loaded: the user pointed at it
    scenario.write_text('duration = "1s"\ndrain = "1s"\n[topology]\nname = "topologies/mine.py"\n')
    assert main(["simulate", str(scenario)]) == 0
    assert "point_to_point on topologies/mine.py" in capsys.readouterr().out
    assert (tmp_path / "topologies" / "mine.ran").exists()


@pytest.mark.parametrize("name", ["sub/net", "../net", ".net", "/abs/net"])
def test_a_name_is_a_plain_stem(tmp_path: Path, name: str) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "net.py", "import networkx as nx\ndef build():\n    return nx.Graph([(1, 2)])\n")
    with pytest.raises(SimError) as info:
        build_topology(name, search=[tmp_path, tmp_path / "sub"])
    assert info.value.field == "topology.name"


def test_builtin_wins_over_a_file_of_the_same_name(tmp_path: Path) -> None:
    write(tmp_path / "line.py", "import networkx as nx\ndef build():\n    return nx.Graph([('a', 'b')])\n")
    assert sorted(build_topology("line", search=[tmp_path])) == ["n0", "n1", "n2"]


def test_links_and_nodes_tables_apply(tmp_path: Path) -> None:
    g = build_topology("ring", {"n": 4}, links={"loss": 0.1, "bandwidth": "8Mbps"}, nodes={"servers": 2})
    assert all(d["loss"] == 0.1 and d["bandwidth"] == 1_000_000.0 for _, _, d in g.edges(data=True))
    assert all(d["servers"] == 2 for _, d in g.nodes(data=True))
    with pytest.raises(SimError, match=r"^links\.loss = 1\.5: expected a probability in \[0, 1\]$"):
        build_topology("ring", links={"loss": 1.5})
    with pytest.raises(SimError, match=r"^links\.latency = '-1ms': expected a duration >= 0"):
        build_topology("ring", links={"latency": "-1ms"})
    with pytest.raises(SimError, match=r"^nodes\.role = 'db': expected a role, one of host, switch"):
        build_topology("ring", nodes={"role": "db"})
    with pytest.raises(SimError, match=r"^links\.delay = '1ms': expected a known links setting"):
        build_topology("ring", links={"delay": "1ms"})


# -- the shipped topologies -----------------------------------------------------------------------
def roles(g: nx.Graph) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, role in g.nodes(data="role"):
        out[role] = out.get(role, 0) + 1
    return out


def shipped(name: str, params: dict[str, object] | None = None) -> nx.Graph:
    return build_topology(name, params, search=[SHIPPED])


def test_shipped_names_are_available() -> None:
    assert available([SHIPPED])[len(GENERATORS) :] == [
        "client_server", "example_line", "example_star", "leaf_spine_dc", "microservice_mesh",
        "three_region_wan",
    ]  # fmt: skip


def test_leaf_spine_dc() -> None:
    g = shipped("leaf_spine_dc")
    assert roles(g) == {"switch": 12, "host": 64, "broker": 2}
    assert g.number_of_edges() == 4 * 8 + 64 + 2
    assert g.edges["leaf3", "spine2"]["bandwidth"] == 100e9 / 8
    assert g.edges["leaf3", "h3_7"]["bandwidth"] == 10e9 / 8
    assert g.edges["leaf1", "broker1"]["bandwidth"] == 25e9 / 8
    assert g.edges["leaf3", "spine2"]["latency"] == Normal(pytest.approx(10e-6), pytest.approx(1e-6))
    assert g.nodes["broker0"]["servers"] == 4 and g.nodes["broker0"]["service"] == Exponential(
        pytest.approx(20e-6)
    )
    assert roles(shipped("leaf_spine_dc", {"spines": 2, "leaves": 2, "hosts_per_leaf": 1, "brokers": 0})) == {
        "switch": 4, "host": 2,
    }  # fmt: skip


def test_three_region_wan() -> None:
    g = shipped("three_region_wan")
    assert roles(g) == {"gateway": 3, "host": 9, "broker": 1}
    assert {g.nodes[v]["region"] for v in g} == {"us-east", "eu-west", "ap-south"}
    assert g.edges["gw-us-east", "gw-eu-west"]["latency"] == LogNormal(0.04, 0.05)
    assert g.edges["gw-eu-west", "gw-ap-south"]["latency"].mean == pytest.approx(0.095)
    assert g.edges["gw-us-east", "gw-ap-south"]["latency"].mean == pytest.approx(0.115)
    assert g.edges["gw-us-east", "us-east-0"]["latency"].mean == pytest.approx(0.0005)
    # the direct link is shorter than the detour, so routes take it
    us_ap = nx.shortest_path(g, "us-east-0", "ap-south-0", weight=lambda u, v, d: d["latency"].mean)
    assert us_ap == ["us-east-0", "gw-us-east", "gw-ap-south", "ap-south-0"]
    moved = shipped("three_region_wan", {"broker_region": "eu-west", "one_way_ms": {"eu-west/us-east": 50.0}})
    assert moved.nodes["broker"]["region"] == "eu-west"
    assert moved.edges["gw-us-east", "gw-eu-west"]["latency"].mean == pytest.approx(0.05)
    e = file_error(SHIPPED / "three_region_wan.py", {"broker_region": "mars"})
    assert "broker_region must be one of us-east, eu-west, ap-south" in str(e)


def test_microservice_mesh() -> None:
    g = shipped("microservice_mesh", {"replicas": 2})
    assert roles(g) == {"gateway": 1, "switch": 1, "client": 2, "service": 16, "broker": 1}
    assert {g.nodes[v]["app"] for v in g if g.nodes[v]["role"] == "service"} == {
        "orders", "payments", "inventory", "shipping", "users", "catalog", "search", "notifications",
    }  # fmt: skip
    assert g.nodes["payments-1"]["service"] == Exponential(0.005)
    assert g.nodes["payments-1"]["servers"] == 4 and g.nodes["broker"]["servers"] == 8
    assert set(g["mesh"]) >= {"gateway", "broker", "orders-0", "orders-1"}
    assert nx.shortest_path_length(g, "client0", "orders-1") == 3


def test_example_files() -> None:
    line = shipped("example_line")
    assert list(line.edges) == [("a", "b"), ("b", "c")]
    assert line.edges["a", "b"] == {"latency": Constant(0.002), "loss": 0.001, "bandwidth": 125_000_000.0}
    assert line.edges["b", "c"]["latency"] == Exponential(0.003)
    assert line.nodes["b"] == {"role": "broker", "servers": 2, "service": Constant(0.0005)}
    star = shipped("example_star")
    assert roles(star) == {"switch": 1, "broker": 1, "host": 3}
    assert star.edges["hub", "h0"]["latency"] == Normal(0.001, 0.0001)
    assert star.edges["hub", "h1"]["loss"] == 0.01 and star.edges["hub", "h2"]["latency"] == Constant(0.001)


@pytest.mark.parametrize("name", ["leaf_spine_dc", "three_region_wan", "microservice_mesh"])
def test_shipped_python_docstring_examples_run(name: str) -> None:
    spec = importlib.util.spec_from_file_location(f"_doc_{name}", SHIPPED / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.__doc__
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_docs_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = doctest.testfile(str(ROOT / "docs" / "topologies.md"), module_relative=False)
    assert result.attempted > 10 and result.failed == 0


def test_readme_python_example_builds(tmp_path: Path) -> None:
    readme = (SHIPPED / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    write(tmp_path / "two_racks.py", blocks[0])
    g = build_topology("two_racks", {"hosts_per_rack": 2}, search=[tmp_path])
    assert roles(g) == {"router": 1, "switch": 2, "host": 4}
    assert g.edges["core", "r0"]["bandwidth"] == 40e9 / 8
    assert g.edges["r1", "r1h1"]["latency"] == Constant(pytest.approx(5e-6))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        namespace: dict[str, object] = {"print": lambda *a: namespace.setdefault("out", a[0])}
        exec(blocks[1], namespace)
    assert str(namespace["out"]).startswith("topology example_star: undirected, 5 nodes, 4 edges")


# -- describe -------------------------------------------------------------------------------------
def test_describe_small_line() -> None:
    g = build_topology("line", {"n": 4}, links={"latency": {"dist": "uniform", "low": "1ms", "high": "3ms"}})
    assert describe(g) == {
        "name": "line",
        "directed": False,
        "nodes": 4,
        "edges": 3,
        "roles": {"host": 4},
        "degree": {"min": 1, "mean": 1.5, "max": 2},
        "latency_mean_s": {"min": 0.002, "mean": 0.002, "max": 0.002},
        "connected": True,
        "components": 1,
        "diameter_hops": 3,
    }


def test_describe_disconnected_directed_and_single() -> None:
    g = nx.DiGraph(name="bits")
    g.add_edge("a", "b", latency="2ms")
    g.add_edge("b", "a", latency="4ms")
    g.add_edge("c", "d")
    g.add_node("e", role="broker")
    info = describe(normalize(g))
    assert info["directed"] is True and info["connected"] is False and info["components"] == 3
    assert info["roles"] == {"broker": 1, "host": 4}
    assert info["latency_mean_s"] == {"min": 0.001, "mean": pytest.approx(0.007 / 3), "max": 0.004}
    assert info["diameter_hops"] == 1 and info["degree"] == {"min": 0, "mean": 1.2, "max": 2}
    single = describe(build_topology("line", {"n": 1}))
    assert single["latency_mean_s"] is None and single["diameter_hops"] == 0 and single["connected"] is True


def test_describe_skips_diameter_of_huge_components() -> None:
    assert describe(build_topology("line", {"n": 2001}))["diameter_hops"] is None
    assert describe(build_topology("line", {"n": 2000}))["diameter_hops"] == 1999


def test_format_description_truncates() -> None:
    text = format_description(
        "ring", build_topology("ring", {"n": 25}, links={"bandwidth": 1e6, "loss": 0.25})
    )
    lines = text.splitlines()
    assert lines[0] == "topology ring: undirected, 25 nodes, 25 edges"
    assert lines[1] == "connected: yes (1 component), diameter 12 hops"
    assert "nodes (first 20 of 25):" in lines and "edges (first 20 of 25):" in lines
    assert lines.count("  ... and 5 more") == 2
    assert "  n0   host  2" in lines
    assert "  n0   n1   1           0.25  8Mbps" in lines
    assert lines[-1] == "  ... and 5 more"
    assert math.isclose(describe(build_topology("ring", {"n": 25}))["degree"]["mean"], 2.0)  # type: ignore[index]
