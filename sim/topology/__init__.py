"""Topologies: builtin generators, loaders for Python/GraphML/JSON files, validation and defaults.

>>> g = build_topology("star", {"n": 3}, links={"latency": "5ms"})
>>> g.nodes["hub"]["role"], g.edges["hub", "h0"]["latency"].mean
('switch', 0.005)
"""

from sim.topology.attributes import LINK_DEFAULTS, NODE_DEFAULTS, ROLES, normalize
from sim.topology.describe import describe, format_description
from sim.topology.generators import GENERATORS
from sim.topology.loaders import PROJECT_TOPOLOGIES, available, build_topology, load_file

__all__ = [
    "GENERATORS",
    "LINK_DEFAULTS",
    "NODE_DEFAULTS",
    "PROJECT_TOPOLOGIES",
    "ROLES",
    "available",
    "build_topology",
    "describe",
    "format_description",
    "load_file",
    "normalize",
]
