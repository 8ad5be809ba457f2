"""Summaries of a topology, for ``sim topology show`` and for reports.

>>> from sim.topology.generators import line
>>> from sim.topology.attributes import normalize
>>> info = describe(normalize(line(3)))
>>> info["nodes"], info["edges"], info["roles"], info["degree"], info["diameter_hops"]
(3, 2, {'host': 3}, {'min': 1, 'mean': 1.3333333333333333, 'max': 2}, 2)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import networkx as nx

__all__ = ["DIAMETER_LIMIT", "SHOWN", "describe", "format_description"]

DIAMETER_LIMIT = 2000
"""Largest component (in nodes) whose diameter :func:`describe` computes; above it ``None``."""

SHOWN = 20
"""Nodes and edges listed by :func:`format_description` before "... and N more"."""


def _stats(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "mean": math.fsum(values) / len(values), "max": max(values)}


def _latency_mean(value: object) -> float | None:
    mean = getattr(value, "mean", None)
    return mean if isinstance(mean, float) else None


def describe(graph: nx.Graph[Any]) -> dict[str, object]:
    """A summary of ``graph`` (best on a normalized graph, where every edge has a latency distribution).

    Parameters
    ----------
    graph : networkx.Graph or networkx.DiGraph
        The topology.

    Returns
    -------
    dict
        ``name``; ``directed``; ``nodes`` and ``edges`` (counts); ``roles`` (role -> node count);
        ``degree`` (``min``/``mean``/``max`` links per node, in plus out when directed);
        ``latency_mean_s`` (``min``/``mean``/``max`` over edges of the mean one-way latency, seconds;
        ``None`` without edges); ``connected`` and ``components`` (weakly, when directed);
        ``diameter_hops`` (of the largest component; ``None`` above :data:`DIAMETER_LIMIT` nodes).
    """
    degrees = [d for _, d in graph.degree()]
    means = (_latency_mean(data.get("latency")) for _, _, data in graph.edges(data=True))
    latencies = [m for m in means if m is not None]
    undirected = graph.to_undirected(as_view=True) if graph.is_directed() else graph
    components = sorted(nx.connected_components(undirected), key=len, reverse=True)
    diameter: int | None = None
    if components and len(components[0]) <= DIAMETER_LIMIT:
        diameter = nx.diameter(undirected.subgraph(components[0]), usebounds=True)
    return {
        "name": str(graph.graph.get("name") or "graph"),
        "directed": graph.is_directed(),
        "nodes": graph.number_of_nodes(),
        "edges": graph.number_of_edges(),
        "roles": dict(sorted(Counter(str(r) for _, r in graph.nodes(data="role", default="host")).items())),
        "degree": _stats(degrees),
        "latency_mean_s": _stats(latencies),
        "connected": len(components) == 1,
        "components": len(components),
        "diameter_hops": diameter,
    }


def _bandwidth(value: object) -> str:
    if not isinstance(value, int | float):
        return str(value)
    if math.isinf(value):
        return "inf"
    bits = value * 8
    for unit, scale in (("Tbps", 1e12), ("Gbps", 1e9), ("Mbps", 1e6), ("kbps", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.4g}{unit}"
    return f"{bits:.4g}bps"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.4g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]


def _heading(what: str, total: int) -> str:
    return f"{what} ({total}):" if total <= SHOWN else f"{what} (first {SHOWN} of {total}):"


def format_description(name: str, graph: nx.Graph[Any]) -> str:
    """:func:`describe` as aligned plain text, with the first :data:`SHOWN` nodes and edges.

    Examples
    --------
    >>> from sim.topology.loaders import build_topology
    >>> print(format_description("line", build_topology("line", {"n": 3})))
    topology line: undirected, 3 nodes, 2 edges
    connected: yes (1 component), diameter 2 hops
    roles: host 3
    degree: min 1, mean 1.33, max 2
    latency mean (ms): min 1, mean 1, max 1
    <BLANKLINE>
    nodes (3):
      id  role  degree
      n0  host  1
      n1  host  2
      n2  host  1
    <BLANKLINE>
    edges (2):
      u   v   latency_ms  loss  bandwidth
      n0  n1  1           0     inf
      n1  n2  1           0     inf
    """
    info = describe(graph)
    n_nodes, n_edges = graph.number_of_nodes(), graph.number_of_edges()
    kind = "directed" if info["directed"] else "undirected"
    lines = [f"topology {name}: {kind}, {n_nodes} nodes, {n_edges} edges"]
    comps = info["components"]
    lines.append(
        f"connected: {'yes' if info['connected'] else 'no'} ({comps} component{'' if comps == 1 else 's'})"
        + ("" if info["diameter_hops"] is None else f", diameter {info['diameter_hops']} hops")
    )
    roles = info["roles"]
    assert isinstance(roles, dict)
    lines.append("roles: " + (", ".join(f"{r} {c}" for r, c in roles.items()) or "none"))
    degree = info["degree"]
    if isinstance(degree, dict):
        lines.append(f"degree: min {degree['min']}, mean {degree['mean']:.3g}, max {degree['max']}")
    latency = info["latency_mean_s"]
    if isinstance(latency, dict):
        lines.append(
            "latency mean (ms): " + ", ".join(f"{k} {_ms(latency[k])}" for k in ("min", "mean", "max"))
        )

    node_rows = [
        [str(v), str(data.get("role", "")), str(graph.degree(v))]
        for v, data in list(graph.nodes(data=True))[:SHOWN]
    ]
    lines += ["", _heading("nodes", n_nodes), *_table(["id", "role", "degree"], node_rows)]
    if n_nodes > SHOWN:
        lines.append(f"  ... and {n_nodes - SHOWN} more")

    if n_edges:
        edge_rows = []
        for u, v, data in list(graph.edges(data=True))[:SHOWN]:
            mean = _latency_mean(data.get("latency"))
            loss = data.get("loss", "")
            edge_rows.append(
                [
                    str(u),
                    str(v),
                    _ms(mean) if mean is not None else str(data.get("latency", "")),
                    f"{loss:g}" if isinstance(loss, float) else str(loss),
                    _bandwidth(data.get("bandwidth", "")),
                ]
            )
        header = ["u", "v", "latency_ms", "loss", "bandwidth"]
        lines += ["", _heading("edges", n_edges), *_table(header, edge_rows)]
        if n_edges > SHOWN:
            lines.append(f"  ... and {n_edges - SHOWN} more")
    return "\n".join(lines)
