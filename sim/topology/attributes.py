"""Validate a topology graph and fill in link and node attributes.

:func:`normalize` turns any ``Graph``/``DiGraph`` — built in Python, read from GraphML or from
node-link JSON — into the form the model layers use: string node ids, and parsed attributes.

Edges (the value on the edge wins over the scenario's ``[links]`` table, which wins over
:data:`LINK_DEFAULTS`):

- ``latency``: a :class:`~sim.core.distributions.Distribution` of the one-way delay in seconds,
- ``loss``: the probability in [0, 1] that a transmission is lost,
- ``bandwidth``: bytes per second (``math.inf`` = no serialization delay).

Nodes (the value on the node wins over the scenario's ``[nodes]`` table, which wins over
:data:`NODE_DEFAULTS`):

- ``role``: one of :data:`ROLES`,
- ``servers``: the number of parallel workers, a whole number >= 1,
- ``service``: a :class:`~sim.core.distributions.Distribution` of the service time in seconds, or ``None``
  for "no processing time",
- ``region``: an optional string, kept as given.

Other attributes are kept untouched, except an edge ``weight``, which is dropped: routes follow the
mean latency.

>>> import networkx as nx
>>> g = normalize(nx.Graph([(0, 1)]), links={"loss": 0.01})
>>> sorted(g.nodes)
['0', '1']
>>> g.edges["0", "1"]["latency"], g.edges["0", "1"]["loss"], g.edges["0", "1"]["bandwidth"]
(Constant(value=0.001), 0.01, inf)
>>> g.nodes["0"]["role"], g.nodes["0"]["servers"], g.nodes["0"]["service"]
('host', 1, None)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import networkx as nx
import numpy as np

from sim.core.distributions import Constant, Distribution, from_spec
from sim.core.errors import SimError
from sim.core.units import parse_bandwidth, parse_probability

__all__ = ["LINK_DEFAULTS", "NODE_DEFAULTS", "ROLES", "normalize"]

LINK_DEFAULTS: dict[str, object] = {"latency": "1ms", "loss": 0.0, "bandwidth": "inf"}
"""Link attributes used where neither the edge nor the scenario's ``[links]`` table sets one."""

NODE_DEFAULTS: dict[str, object] = {"role": "host", "servers": 1, "service": None}
"""Node attributes used where neither the node nor the scenario's ``[nodes]`` table sets one."""

ROLES: tuple[str, ...] = ("host", "switch", "router", "broker", "gateway", "service", "client", "server")
"""The node roles a topology may use."""

_Parser = Callable[[object, str], object]


def _plain(value: object) -> object:
    """Numpy scalars as Python numbers; JSON tables written as strings (GraphML) as mappings."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value  # the parser reports it with its own field name and what is allowed
    return value


def _is_distribution(value: object) -> bool:
    mean = getattr(value, "mean", None)
    return (
        callable(getattr(value, "sample", None))
        and isinstance(mean, int | float)
        and not isinstance(mean, bool)
    )


def _latency(value: object, field: str) -> Distribution:
    if _is_distribution(value):
        return value  # type: ignore[return-value]  # already parsed (normalize is idempotent)
    value = _plain(value)
    if isinstance(value, str) and value.lstrip().startswith("{"):
        raise SimError(field, value, 'a duration such as "5ms" or a JSON table such as {"dist": ...}')
    return from_spec(value, field)


def _number_text(value: object) -> object:
    """GraphML may carry numbers as text: ``"0.01"`` -> 0.01 (anything else is returned as given)."""
    value = _plain(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _loss(value: object, field: str) -> float:
    return parse_probability(_number_text(value), field)


def _bandwidth(value: object, field: str) -> float:
    return parse_bandwidth(_plain(value), field)


def _role(value: object, field: str) -> str:
    if not isinstance(value, str) or value not in ROLES:
        raise SimError(field, value, "a role, one of " + ", ".join(ROLES))
    return value


def _servers(value: object, field: str) -> int:
    x = _number_text(value)
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) or x != int(x) or x < 1:
        raise SimError(field, value, "a whole number of servers >= 1")
    return int(x)


def _service(value: object, field: str) -> Distribution | None:
    if _is_distribution(value):
        return value  # type: ignore[return-value]
    value = _plain(value)
    if value is None or (isinstance(value, str) and value.strip() in ("", "none", "None")):
        return None
    if isinstance(value, str) and value.lstrip().startswith("{"):
        raise SimError(field, value, 'a duration such as "2ms", a JSON table such as {"dist": ...}, or none')
    dist = from_spec(value, field)
    if isinstance(dist, Constant) and dist.value == 0:
        return None
    return dist


_LINK_PARSERS: dict[str, _Parser] = {"latency": _latency, "loss": _loss, "bandwidth": _bandwidth}
_NODE_PARSERS: dict[str, _Parser] = {"role": _role, "servers": _servers, "service": _service}


def _table(table: Mapping[str, object] | None, parsers: dict[str, _Parser], prefix: str) -> dict[str, object]:
    """Parse a scenario table (``[links]`` or ``[nodes]``), refusing keys it does not know."""
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        raise SimError(prefix, table, "a table of " + ", ".join(parsers))
    out: dict[str, object] = {}
    for key, value in table.items():
        if key not in parsers:
            raise SimError(f"{prefix}.{key}", value, f"a known {prefix} setting: " + ", ".join(parsers))
        out[key] = parsers[key](value, f"{prefix}.{key}")
    return out


def _parsed_defaults(
    defaults: Mapping[str, object],
    parsers: dict[str, _Parser],
    table: Mapping[str, object] | None,
    prefix: str,
) -> dict[str, object]:
    base = {key: parsers[key](value, f"{prefix}.{key}") for key, value in defaults.items()}
    base.update(_table(table, parsers, prefix))
    return base


def _fill(
    attrs: Mapping[str, Any], parsers: dict[str, _Parser], base: dict[str, object], field: str
) -> dict[str, Any]:
    out = dict(attrs)
    for key, parse in parsers.items():
        out[key] = parse(attrs[key], f"{field}.{key}") if key in attrs else base[key]
    return out


def normalize(
    graph: nx.Graph[Any],
    links: Mapping[str, object] | None = None,
    nodes: Mapping[str, object] | None = None,
    *,
    where: str = "topology",
) -> nx.Graph[str]:
    """A validated copy of ``graph`` with string node ids and every link and node attribute parsed.

    Parameters
    ----------
    graph : networkx.Graph or networkx.DiGraph
        The topology. At least one node; no self-loops; multigraphs are refused. It may be
        disconnected. It is not modified.
    links : mapping, optional
        The scenario's ``[links]`` table: ``latency`` (seconds, a unit string or a distribution table),
        ``loss`` (probability) and ``bandwidth`` (bytes/s or a unit string such as ``"1Gbps"``), used
        for edges that do not set their own.
    nodes : mapping, optional
        The scenario's ``[nodes]`` table: ``role``, ``servers`` and ``service`` (seconds), used for
        nodes that do not set their own.
    where : str
        Field prefix for error messages about the graph's own values.

    Returns
    -------
    networkx.Graph
        A new graph of the same directedness. For a directed graph each directed edge carries its
        own direction's attributes.

    Raises
    ------
    SimError
        Naming the field (``topology.edges[a-b].loss``, ``links.latency``, ``topology.nodes[b].role``),
        the bad value and what is allowed.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.DiGraph()
    >>> g.add_edge("a", "b", latency="5ms", weight=3)
    >>> g.add_edge("b", "a", latency={"dist": "exponential", "mean": "2ms"})
    >>> out = normalize(g, nodes={"servers": 2})
    >>> out.edges["a", "b"]
    {'latency': Constant(value=0.005), 'loss': 0.0, 'bandwidth': inf}
    >>> out.edges["b", "a"]["latency"].mean, out.nodes["a"]["servers"]
    (0.002, 2)
    >>> normalize(nx.Graph([("a", "b")]), links={"loss": 1.5})
    Traceback (most recent call last):
    ...
    sim.core.errors.SimError: links.loss = 1.5: expected a probability in [0, 1]
    """
    if not isinstance(graph, nx.Graph):
        raise SimError(where, type(graph).__name__, "a networkx Graph or DiGraph")
    name = graph.graph.get("name") or "graph"
    if graph.is_multigraph():
        raise SimError(where, name, "a Graph or DiGraph (multigraphs with parallel links are not supported)")
    if graph.number_of_nodes() == 0:
        raise SimError(where, name, "a graph with at least one node")
    link_base = _parsed_defaults(LINK_DEFAULTS, _LINK_PARSERS, links, "links")
    node_base = _parsed_defaults(NODE_DEFAULTS, _NODE_PARSERS, nodes, "nodes")

    out: nx.Graph[str] = nx.DiGraph() if graph.is_directed() else nx.Graph()
    out.graph.update(graph.graph)
    if graph.graph.get("name"):
        out.graph["name"] = str(graph.graph["name"])
    ids: dict[Any, str] = {}
    for node, attrs in graph.nodes(data=True):
        nid = str(node)
        if nid in out:
            raise SimError(f"{where}.nodes", node, f"unique node ids as text ({nid!r} appears twice)")
        ids[node] = nid
        filled = _fill(attrs, _NODE_PARSERS, node_base, f"{where}.nodes[{nid}]")
        if filled.get("region") is not None:
            filled["region"] = str(_plain(filled["region"]))
        out.add_node(nid, **filled)
    arrow = "->" if graph.is_directed() else "-"
    for u, v, attrs in graph.edges(data=True):
        field = f"{where}.edges[{ids[u]}{arrow}{ids[v]}]"
        if u == v:
            raise SimError(field, (ids[u], ids[v]), "no self-loops (a link from a node to itself)")
        filled = _fill(attrs, _LINK_PARSERS, link_base, field)
        filled.pop("weight", None)
        out.add_edge(ids[u], ids[v], **filled)
    return out
