"""Built-in topology generators: pure functions of keyword parameters (and ``seed`` when random).

Every generator returns a ``networkx.Graph`` with string node ids and a ``role`` on every node.
Latency is set on edges only where the topology implies it (``multi_region``); everything else is
left to the scenario's ``[links]`` table and :data:`sim.topology.LINK_DEFAULTS`. Random generators take
``seed`` (an int, or ``None`` for fresh entropy) and give the same graph for the same seed.

>>> g = leaf_spine(spines=2, leaves=3, hosts_per_leaf=2)
>>> g.number_of_nodes(), g.number_of_edges()
(11, 12)
>>> sorted(GENERATORS)[:4]
['barabasi_albert', 'fat_tree', 'full_mesh', 'grid']
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable
from typing import Any

import networkx as nx
import numpy as np

from sim.core.distributions import Constant, from_spec
from sim.core.errors import SimError

__all__ = [
    "GENERATORS",
    "MAX_SIZE",
    "barabasi_albert",
    "fat_tree",
    "full_mesh",
    "grid",
    "leaf_spine",
    "line",
    "multi_region",
    "random",
    "ring",
    "star",
    "tree",
    "watts_strogatz",
]

MAX_SIZE = 250_000
"""Most nodes plus links a generator builds; bigger requests are refused rather than exhausting memory."""

_CONNECT_TRIES = 100


def _int(value: object, name: str, minimum: int) -> int:
    """A whole-number parameter >= ``minimum`` (integral floats such as 4.0 are accepted)."""
    x = value.item() if isinstance(value, np.integer | np.floating) else value
    if (
        isinstance(x, bool)
        or not isinstance(x, int | float)
        or not math.isfinite(x)
        or x != int(x)
        or x < minimum
    ):
        raise SimError(f"topology.params.{name}", value, f"a whole number >= {minimum}")
    return int(x)


def _prob(value: object, name: str) -> float:
    if isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise SimError(f"topology.params.{name}", value, "a probability in [0, 1]")
    return float(value)


def _size(count: float, name: str, value: int) -> None:
    """Refuse parameters giving over MAX_SIZE nodes plus links (``name = value`` is the one blamed)."""
    if count > MAX_SIZE:
        raise SimError(
            f"topology.params.{name}", value, f"a value giving at most {MAX_SIZE} nodes plus links"
        )


def _rng(seed: object) -> np.random.Generator:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise SimError("topology.params.seed", seed, "a whole number >= 0 or None")
    return np.random.default_rng(seed)


def _named(
    graph: nx.Graph[Any], name: str, label: Callable[[Hashable], str], role: str = "host"
) -> nx.Graph[str]:
    out: nx.Graph[str] = nx.Graph(name=name)
    out.add_nodes_from((label(node) for node in graph), role=role)
    out.add_edges_from((label(u), label(v)) for u, v in graph.edges)
    return out


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**32))


def line(n: int = 3) -> nx.Graph[str]:
    """A path ``n0 - n1 - ... - n{n-1}`` of ``n >= 1`` hosts.

    >>> list(line(3).edges)
    [('n0', 'n1'), ('n1', 'n2')]
    """
    n = _int(n, "n", 1)
    _size(2 * n, "n", n)
    return _named(nx.path_graph(n), "line", "n{}".format)


def ring(n: int = 8) -> nx.Graph[str]:
    """A cycle of ``n >= 3`` hosts ``n0 .. n{n-1}``."""
    n = _int(n, "n", 3)
    _size(2 * n, "n", n)
    return _named(nx.cycle_graph(n), "ring", "n{}".format)


def star(n: int = 8) -> nx.Graph[str]:
    """A switch ``hub`` with ``n >= 1`` hosts ``h0 .. h{n-1}`` around it (``n`` counts the leaves).

    >>> g = star(3)
    >>> g.nodes["hub"]["role"], sorted(g["hub"])
    ('switch', ['h0', 'h1', 'h2'])
    """
    n = _int(n, "n", 1)
    _size(2 * n + 1, "n", n)
    g: nx.Graph[str] = nx.Graph(name="star")
    g.add_node("hub", role="switch")
    for i in range(n):
        g.add_node(f"h{i}", role="host")
        g.add_edge("hub", f"h{i}")
    return g


def full_mesh(n: int = 5) -> nx.Graph[str]:
    """Every pair of ``n >= 1`` hosts ``n0 .. n{n-1}`` linked directly."""
    n = _int(n, "n", 1)
    _size(n * (n + 1) / 2, "n", n)
    return _named(nx.complete_graph(n), "full_mesh", "n{}".format)


def tree(depth: int = 2, fanout: int = 3) -> nx.Graph[str]:
    """A balanced tree: switches ``s0`` (the root) ``.. s{k}`` inside, hosts ``h0 ..`` at the leaves.

    Parameters
    ----------
    depth : int
        Levels below the root, >= 1.
    fanout : int
        Children per switch, >= 1.

    >>> g = tree(depth=2, fanout=3)
    >>> sum(r == "switch" for _, r in g.nodes(data="role")), sum(r == "host" for _, r in g.nodes(data="role"))
    (4, 9)
    """
    depth = _int(depth, "depth", 1)
    fanout = _int(fanout, "fanout", 1)
    total, width = 1, 1
    for _ in range(depth):
        width *= fanout
        total += width
        _size(2 * total, "depth", depth)
    g: nx.Graph[str] = nx.Graph(name="tree")
    level = ["s0"]
    g.add_node("s0", role="switch")
    counts = {"s": 1, "h": 0}
    for d in range(depth):
        prefix = "h" if d == depth - 1 else "s"
        nxt = []
        for parent in level:
            for _ in range(fanout):
                child = f"{prefix}{counts[prefix]}"
                counts[prefix] += 1
                g.add_node(child, role="host" if prefix == "h" else "switch")
                g.add_edge(parent, child)
                nxt.append(child)
        level = nxt
    return g


def grid(rows: int = 4, cols: int = 4) -> nx.Graph[str]:
    """A ``rows x cols`` grid of hosts ``n{r}_{c}``, each linked to its 4 neighbours."""
    rows = _int(rows, "rows", 1)
    cols = _int(cols, "cols", 1)
    _size(3 * rows * cols, "rows", rows)
    return _named(nx.grid_2d_graph(rows, cols), "grid", lambda rc: "n{}_{}".format(*rc))  # type: ignore[misc]


def random(n: int = 20, p: float = 0.2, seed: int | None = None) -> nx.Graph[str]:
    """A connected Erdős–Rényi graph G(n, p) of hosts ``n0 ..``, redrawn until connected (100 tries).

    Parameters
    ----------
    n : int
        Hosts, >= 1.
    p : float
        Probability of each possible link, in [0, 1].
    seed : int or None
        Same seed, same graph. All draws disconnected (``p`` below about ``ln(n)/n``) raise SimError.

    >>> g = random(20, 0.3, seed=1)
    >>> nx.is_connected(g), g.number_of_nodes(), g.edges == random(20, 0.3, seed=1).edges
    (True, 20, True)
    """
    n = _int(n, "n", 1)
    p = _prob(p, "p")
    _size(n + p * n * (n - 1) / 2, "n", n)
    rng = _rng(seed)
    for _ in range(_CONNECT_TRIES if n > 1 and p > 0 else 1):
        g = nx.fast_gnp_random_graph(n, p, seed=_seed(rng))
        if nx.is_connected(g):
            return _named(g, "random", "n{}".format)
    need = math.log(n) / n
    raise SimError(
        "topology.params.p",
        p,
        f"a higher p for n = {n} (no connected graph in {_CONNECT_TRIES} "
        f"draws; connectivity needs about p > ln(n)/n = {need:.3g})",
    )


def barabasi_albert(n: int = 100, m: int = 2, seed: int | None = None) -> nx.Graph[str]:
    """A Barabási–Albert preferential-attachment graph of hosts ``n0 ..`` (connected, scale-free degrees).

    Parameters
    ----------
    n : int
        Hosts, > ``m``.
    m : int
        Links each new host makes, >= 1.
    seed : int or None
        Same seed, same graph.
    """
    m = _int(m, "m", 1)
    n = _int(n, "n", m + 1)
    _size(n * (m + 1), "n", n)
    return _named(nx.barabasi_albert_graph(n, m, seed=_seed(_rng(seed))), "barabasi_albert", "n{}".format)


def watts_strogatz(n: int = 20, k: int = 4, p: float = 0.1, seed: int | None = None) -> nx.Graph[str]:
    """A connected Watts–Strogatz small-world graph of hosts ``n0 ..``.

    Parameters
    ----------
    n : int
        Hosts, > ``k``.
    k : int
        Each host links to its ``k`` nearest ring neighbours before rewiring; even, >= 2.
    p : float
        Probability of rewiring each link, in [0, 1].
    seed : int or None
        Same seed, same graph.
    """
    k = _int(k, "k", 2)
    if k % 2:
        raise SimError("topology.params.k", k, "an even whole number >= 2 (k/2 neighbours on each side)")
    n = _int(n, "n", k + 1)
    p = _prob(p, "p")
    _size(n * (k + 2) / 2, "n", n)
    try:
        g = nx.connected_watts_strogatz_graph(n, k, p, tries=_CONNECT_TRIES, seed=_seed(_rng(seed)))
    except nx.NetworkXError as e:  # pragma: no cover - needs p close to 1 with k = 2 and bad luck
        raise SimError("topology.params.p", p, f"a smaller p or larger k ({e})") from e
    return _named(g, "watts_strogatz", "n{}".format)


def leaf_spine(spines: int = 2, leaves: int = 4, hosts_per_leaf: int = 4) -> nx.Graph[str]:
    """A two-tier Clos fabric: every leaf switch links to every spine switch, hosts hang off leaves.

    Nodes: ``spine{i}`` and ``leaf{j}`` (role ``switch``, ``layer`` spine/leaf) and hosts ``h{j}_{i}``.

    >>> g = leaf_spine(2, 4, 4)
    >>> g.number_of_nodes(), g.number_of_edges(), sorted(g["h3_0"])
    (22, 24, ['leaf3'])
    """
    spines = _int(spines, "spines", 1)
    leaves = _int(leaves, "leaves", 1)
    hosts_per_leaf = _int(hosts_per_leaf, "hosts_per_leaf", 0)
    _size(spines + leaves * (1 + spines + 2 * hosts_per_leaf), "leaves", leaves)
    g: nx.Graph[str] = nx.Graph(name="leaf_spine")
    g.add_nodes_from((f"spine{i}" for i in range(spines)), role="switch", layer="spine")
    for j in range(leaves):
        leaf = f"leaf{j}"
        g.add_node(leaf, role="switch", layer="leaf")
        g.add_edges_from((f"spine{i}", leaf) for i in range(spines))
        for i in range(hosts_per_leaf):
            g.add_node(f"h{j}_{i}", role="host")
            g.add_edge(leaf, f"h{j}_{i}")
    return g


def fat_tree(k: int = 4) -> nx.Graph[str]:
    """A k-ary fat tree (Al-Fares et al., 2008): ``k`` pods, ``5k²/4`` switches, ``k³/4`` hosts.

    Core switches ``core{i}``; in pod ``p``, aggregation ``agg{p}_{i}`` and edge ``edge{p}_{i}`` switches
    (``layer`` core/agg/edge); hosts ``h{p}_{e}_{i}`` under edge switch ``e``. Aggregation switch ``i`` of
    every pod links to core switches ``i·k/2 .. i·k/2 + k/2 - 1``.

    Parameters
    ----------
    k : int
        Switch port count, even, >= 2.

    >>> g = fat_tree(4)
    >>> sum(r == "host" for _, r in g.nodes(data="role")), sum(r == "switch" for _, r in g.nodes(data="role"))
    (16, 20)
    """
    k = _int(k, "k", 2)
    if k % 2:
        raise SimError("topology.params.k", k, "an even whole number >= 2")
    _size(k**3 + 5 * k * k / 4, "k", k)
    half = k // 2
    g: nx.Graph[str] = nx.Graph(name="fat_tree")
    g.add_nodes_from((f"core{i}" for i in range(half * half)), role="switch", layer="core")
    for p in range(k):
        for i in range(half):
            agg = f"agg{p}_{i}"
            g.add_node(agg, role="switch", layer="agg")
            g.add_edges_from((agg, f"core{i * half + j}") for j in range(half))
        for e in range(half):
            edge = f"edge{p}_{e}"
            g.add_node(edge, role="switch", layer="edge")
            g.add_edges_from((edge, f"agg{p}_{i}") for i in range(half))
            for i in range(half):
                g.add_node(f"h{p}_{e}_{i}", role="host")
                g.add_edge(edge, f"h{p}_{e}_{i}")
    return g


def multi_region(
    regions: int = 3,
    nodes_per_region: int = 4,
    intra_latency: object = "1ms",
    inter_latency: object = "40ms",
    spread: float = 0.0,
    seed: int | None = None,
) -> nx.Graph[str]:
    """Regions of hosts, each behind a gateway; the gateways form a full mesh of long-haul links.

    Region ``r{i}`` has gateway ``gw{i}`` (role ``gateway``) and hosts ``r{i}h{j}`` (role ``host``)
    linked to it; every node carries ``region = "r{i}"``.

    Parameters
    ----------
    regions : int
        Number of regions, >= 1.
    nodes_per_region : int
        Hosts per region (not counting the gateway), >= 0.
    intra_latency : number, str or mapping
        One-way latency of host–gateway links, in seconds, as a unit string (``"1ms"``) or a
        distribution table (``{"dist": "normal", "mean": "1ms", "std": "0.1ms"}``).
    inter_latency : number, str or mapping
        One-way latency of gateway–gateway links, same forms.
    spread : float
        In [0, 1). When > 0 each gateway pair gets its own constant latency, ``inter_latency`` times a
        factor drawn uniformly from ``[1 - spread, 1 + spread]`` with ``seed`` (``inter_latency`` must then
        be a plain duration). 0 gives every pair ``inter_latency``.
    seed : int or None
        Seeds the per-pair factors; unused when ``spread`` is 0.

    >>> g = multi_region(regions=2, nodes_per_region=2)
    >>> sorted(g.nodes), g.edges["gw0", "gw1"]["latency"], g.nodes["r1h0"]["region"]
    (['gw0', 'gw1', 'r0h0', 'r0h1', 'r1h0', 'r1h1'], '40ms', 'r1')
    """
    regions = _int(regions, "regions", 1)
    nodes_per_region = _int(nodes_per_region, "nodes_per_region", 0)
    _size(regions * (2 * nodes_per_region + 1) + regions**2 / 2, "nodes_per_region", nodes_per_region)
    from_spec(intra_latency, "topology.params.intra_latency")
    inter = from_spec(inter_latency, "topology.params.inter_latency")
    if isinstance(spread, bool) or not isinstance(spread, int | float) or not 0 <= spread < 1:
        raise SimError("topology.params.spread", spread, "a relative spread in [0, 1)")
    if spread and not isinstance(inter, Constant):
        raise SimError("topology.params.inter_latency", inter_latency, "a plain duration when spread > 0")
    rng = _rng(seed)
    g: nx.Graph[str] = nx.Graph(name="multi_region")
    for i in range(regions):
        gw = f"gw{i}"
        g.add_node(gw, role="gateway", region=f"r{i}")
        for j in range(nodes_per_region):
            g.add_node(f"r{i}h{j}", role="host", region=f"r{i}")
            g.add_edge(gw, f"r{i}h{j}", latency=intra_latency)
    for a, b in itertools.combinations(range(regions), 2):
        latency = inter_latency
        if spread:
            latency = inter.mean * float(rng.uniform(1 - spread, 1 + spread))
        g.add_edge(f"gw{a}", f"gw{b}", latency=latency)
    return g


_SIMPLE = (line, ring, star, full_mesh, tree, grid)
_RANDOM = (random, barabasi_albert, watts_strogatz)
_NETWORKS = (leaf_spine, fat_tree, multi_region)
GENERATORS: dict[str, Callable[..., nx.Graph[str]]] = {
    fn.__name__: fn for fn in (*_SIMPLE, *_RANDOM, *_NETWORKS)
}
"""Built-in topologies by name, in the order ``sim topology list`` shows them."""
