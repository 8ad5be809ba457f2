"""Find a topology by name and load it: a builtin generator, a Python file, GraphML or node-link JSON.

A topology file is one of

- ``*.py`` defining ``build(**params) -> networkx.Graph`` (it receives ``seed`` when it accepts one),
- ``*.graphml`` (GraphML, as written by ``networkx.write_graphml`` or yEd/Gephi),
- ``*.json`` in node-link form (``{"nodes": [{"id": ...}], "edges": [{"source": ..., "target": ...}]}``;
  the older ``"links"`` key is read too).

>>> g = build_topology("line", {"n": 4}, links={"latency": "2ms"})
>>> sorted(g.nodes), g.edges["n0", "n1"]["latency"].mean
(['n0', 'n1', 'n2', 'n3'], 0.002)
>>> try:
...     build_topology("lien")
... except SimError as e:
...     print(e.field, "=", e.value)
topology.name = lien
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast
from xml.etree import ElementTree as ET

import networkx as nx

from sim.core.errors import SimError, failure
from sim.core.rng import stable_hash
from sim.topology.attributes import normalize
from sim.topology.generators import GENERATORS

__all__ = ["PROJECT_TOPOLOGIES", "SUFFIXES", "available", "build_topology", "load_file"]

SUFFIXES: tuple[str, ...] = (".py", ".graphml", ".json")
"""File kinds a topology may come from, in the order a search directory is tried."""

_FILE_KINDS = "a .py file with build(**params) -> networkx.Graph, a .graphml file or a node-link .json file"


def _call(fn: Callable[..., object], params: Mapping[str, object], seed: int | None) -> object:
    """Call ``fn(**params)``, adding ``seed`` when it accepts one; unknown parameters are refused."""
    signature = inspect.signature(fn)
    accepted = [
        p.name for p in signature.parameters.values() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    open_ended = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    for key, value in params.items():
        if not isinstance(key, str) or (key not in accepted and not open_ended):
            shown = ", ".join(accepted) if accepted else "none"
            raise SimError(f"topology.params.{key}", value, f"one of the accepted parameters: {shown}")
    kwargs = dict(params)
    if "seed" not in kwargs and ("seed" in accepted or open_ended):
        kwargs["seed"] = seed
    return fn(**kwargs)


def _load_python(path: Path, params: Mapping[str, object], seed: int | None) -> object:
    module_name = f"_sim_topology_{stable_hash(str(path.resolve())):016x}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - only for suffixes importlib does not know
        raise SimError("topology.file", str(path), _FILE_KINDS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and typing look the module up while it runs
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ beside the file
    try:
        spec.loader.exec_module(module)
    except SimError:
        raise
    except (Exception, SystemExit) as e:  # a user's file may fail in any way, sys.exit() included
        what = failure(e).removeprefix("it raised ")
        raise SimError("topology.file", str(path), f"a Python file that runs ({what})") from e
    finally:
        sys.modules.pop(module_name, None)
        sys.dont_write_bytecode = dont_write
    build = getattr(module, "build", None)
    if not callable(build):
        raise SimError("topology.file", str(path), "a Python file defining build(**params) -> networkx.Graph")
    try:
        return _call(build, params, seed)
    except SimError:
        raise
    except (Exception, SystemExit) as e:  # a user's build() may fail in any way, sys.exit() included
        raise SimError(
            "topology.file", str(path), f"a build(**params) that returns a graph ({failure(e)})"
        ) from e


def _declared(path: Path, ids: Sequence[tuple[str, object]], ends: Sequence[tuple[str, object]]) -> None:
    """Every node id once, every edge end a declared node: a loader would silently merge a repeated id
    and add an undeclared end as a new host (which may then become a producer or consumer)."""
    seen: set[str] = set()
    for where, node_id in ids:
        if str(node_id) in seen:
            raise SimError(
                "topology.file", str(path), f"each node id once ({where} = {node_id!r} repeats one)"
            )
        seen.add(str(node_id))
    for where, end in ends:
        if str(end) not in seen:
            raise SimError(
                "topology.file", str(path), f"edges between declared nodes ({where} = {end!r} is not a node)"
            )


def _load_json(path: Path) -> nx.Graph[Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise ValueError('the top level must be an object with "nodes" and "edges" (or "links") lists')
    edges = "links" if "links" in data and "edges" not in data else "edges"
    data.setdefault(edges, [])
    if not isinstance(data[edges], list):
        raise ValueError(f'"{edges}" must be a list')
    for i, node in enumerate(data["nodes"]):
        if not isinstance(node, dict) or "id" not in node:
            raise ValueError(f'nodes[{i}] must be an object with an "id"')
        if isinstance(node["id"], bool) or not isinstance(node["id"], str | int):
            raise ValueError(f"nodes[{i}].id must be a string or a whole number, not {node['id']!r}")
    for i, edge in enumerate(data[edges]):
        if not isinstance(edge, dict) or "source" not in edge or "target" not in edge:
            raise ValueError(f'{edges}[{i}] must be an object with "source" and "target"')
    _declared(
        path,
        [(f"nodes[{i}].id", node["id"]) for i, node in enumerate(data["nodes"])],
        [(f"{edges}[{i}].{end}", e[end]) for i, e in enumerate(data[edges]) for end in ("source", "target")],
    )
    # networkx >= 3.4 names the edge-list key with ``edges=``; older versions with ``link=``
    key = "edges" if "edges" in inspect.signature(nx.node_link_graph).parameters else "link"
    directed, multigraph = data.get("directed", False), data.get("multigraph", False)
    if not isinstance(directed, bool) or not isinstance(multigraph, bool):  # "yes" must not mean true
        raise ValueError('"directed" and "multigraph" must be true or false')
    return nx.node_link_graph(data, directed=directed, multigraph=multigraph, **{key: edges})


def _check_graphml(path: Path) -> None:
    """The node ids and edge ends of a GraphML file (read after networkx parsed it: the XML is sound)."""
    ids: list[tuple[str, object]] = []
    ends: list[tuple[str, object]] = []
    for _, element in ET.iterparse(path):
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "node":
            ids.append((f"node[{len(ids)}].id", element.get("id")))
        elif tag == "edge":
            n = len(ends) // 2
            ends += [
                (f"edge[{n}].source", element.get("source")),
                (f"edge[{n}].target", element.get("target")),
            ]
    _declared(path, ids, ends)


def load_file(
    path: Path, params: Mapping[str, object] | None = None, *, seed: int | None = None
) -> nx.Graph[Any]:
    """Read a topology file (not yet normalized: see :func:`sim.topology.normalize`).

    Parameters
    ----------
    path : Path
        A ``.py``, ``.graphml`` or ``.json`` file.
    params : mapping, optional
        Keyword arguments for a Python file's ``build``; GraphML and JSON take none.
    seed : int or None
        Passed to ``build`` when it has a ``seed`` parameter (or ``**kwargs``).

    Returns
    -------
    networkx.Graph
        The graph as the file defines it, with ``graph.graph["name"]`` set (the file's stem unless
        the file names it).

    Raises
    ------
    SimError
        ``topology.file`` for a missing or unreadable file, a file that does not parse, a Python file
        without ``build`` or whose ``build`` does not return a graph; ``topology.params.<key>`` for a
        parameter ``build`` does not accept, or any parameter for GraphML/JSON.
    """
    path = Path(path)
    params = dict(params or {})
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise SimError("topology.file", str(path), _FILE_KINDS)
    if not path.is_file():
        raise SimError("topology.file", str(path), f"an existing file: {_FILE_KINDS}")
    if suffix == ".py":
        graph = _load_python(path, params, seed)
        if not isinstance(graph, nx.Graph):
            raise SimError(
                "topology.file", str(path), f"build() to return a networkx Graph, not {type(graph).__name__}"
            )
    else:
        if params:
            key = next(iter(params))
            raise SimError(
                f"topology.params.{key}", params[key], f"no parameters: {suffix} topologies take none"
            )
        try:
            graph = nx.read_graphml(path) if suffix == ".graphml" else _load_json(path)
            if suffix == ".graphml":
                _check_graphml(path)
        except SimError:
            raise
        except Exception as e:  # parsers raise many types (ParseError, KeyError, NetworkXError, ...)
            kind = "GraphML" if suffix == ".graphml" else "node-link JSON"
            raise SimError("topology.file", str(path), f"valid {kind} ({type(e).__name__}: {e})") from e
    if not graph.graph.get("name"):
        graph.graph["name"] = path.stem
    return graph


PROJECT_TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"
"""The project's own named topologies (``topologies/`` beside the ``sim`` package in a checkout): with the
builtins, the only place a bare name is looked up from the command line."""


def _find(name: str, search: Sequence[Path]) -> Path | None:
    as_path = Path(name)
    if as_path.suffix.lower() in SUFFIXES and as_path.is_file():
        return as_path  # a path the user wrote
    if as_path.suffix.lower() not in SUFFIXES and (len(as_path.parts) != 1 or name.startswith(".")):
        return None  # a name is a plain stem; anything else must be written as a path to a file
    for folder in search:
        candidates = [Path(folder) / name] if as_path.suffix.lower() in SUFFIXES else []
        candidates += [Path(folder) / f"{name}{suffix}" for suffix in SUFFIXES]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
    return None


def build_topology(
    name: str,
    params: Mapping[str, object] | None = None,
    *,
    seed: int | None = None,
    search: Sequence[Path] = (),
    links: Mapping[str, object] | None = None,
    nodes: Mapping[str, object] | None = None,
) -> nx.Graph[str]:
    """Build the topology called ``name`` and normalize it.

    ``name`` is looked up as a builtin (:data:`sim.topology.GENERATORS`), then as a file path, then as
    ``<dir>/<name>.py``, ``.graphml`` or ``.json`` in each ``search`` directory in turn.

    Parameters
    ----------
    name : str
        A builtin name, a file path or a file stem.
    params : mapping, optional
        Keyword arguments for the generator or the file's ``build`` (a ``seed`` here wins over ``seed``).
    seed : int or None
        Passed to generators and ``build`` functions that take one.
    search : sequence of Path
        Directories to look for ``name`` in (e.g. ``[Path("topologies")]``).
    links, nodes : mapping, optional
        The scenario's ``[links]`` and ``[nodes]`` tables, see :func:`sim.topology.normalize`.

    Returns
    -------
    networkx.Graph
        The normalized graph, with ``graph.graph["name"]`` set.

    Raises
    ------
    SimError
        ``topology.name`` when nothing is found; ``topology.params.<key>`` for an unknown or bad
        parameter; ``topology.file`` for a file that cannot be loaded; the normalization errors.
    """
    params = dict(params or {})
    generator = GENERATORS.get(name)
    if generator is not None:
        graph = cast("nx.Graph[str]", _call(generator, params, seed))  # builtins always return a graph
        graph.graph["name"] = name
    else:
        path = _find(name, search)
        if path is None:
            local = [Path("topologies") / f"{name}{suffix}" for suffix in SUFFIXES]
            hint = next((f"; to use {p}, write its path" for p in local if p.is_file()), "; found none")
            raise SimError(
                "topology.name",
                name,
                "a builtin (line, ring, ...), a name in the project's topologies/, "
                f"or the path of a .py/.graphml/.json file{hint}",
            )
        graph = load_file(path, params, seed=seed)
    return normalize(graph, links, nodes, where="topology")


def available(search: Sequence[Path] = ()) -> list[str]:
    """Names :func:`build_topology` can build: the builtins, then the file stems found in ``search``.

    Files whose name starts with ``_`` are skipped; a stem found twice is listed once.

    >>> available()[:3]
    ['line', 'ring', 'star']
    """
    names = list(GENERATORS)
    found: set[str] = set()
    for folder in search:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.suffix.lower() in SUFFIXES and path.is_file() and not path.name.startswith("_"):
                found.add(path.stem)
    names += sorted(found - set(names))
    return names
