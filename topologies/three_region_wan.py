"""Three cloud regions joined by long-haul links: ``us-east``, ``eu-west`` and ``ap-south``.

Each region has a gateway router (``gw-<region>``, role ``gateway``) and a few hosts
(``<region>-<i>``) on a local network; the broker (``broker``, role ``broker``) lives in
``broker_region`` (default ``us-east``). Every node has a ``region`` attribute.

One-way latencies between gateways are approximate propagation-plus-routing figures for
these geographies (not measurements of any provider; pass your own to ``build``):

=====================  ==============
us-east ↔ eu-west      about 40 ms
eu-west ↔ ap-south     about 95 ms
us-east ↔ ap-south     about 115 ms
=====================  ==============

They are chosen so that the direct us-east ↔ ap-south link stays shorter than the detour through
eu-west (40 + 95 = 135 ms), so routes take it. Each is lognormal with coefficient of variation
``jitter_cv`` (5 % by default) to model queueing jitter; intra-region links are about 0.5 ms
(lognormal, cv 10 %).

>>> g = build(hosts_per_region=2)
>>> sorted(g["gw-eu-west"])
['eu-west-0', 'eu-west-1', 'gw-ap-south', 'gw-us-east']
>>> g.nodes["broker"]["region"]
'us-east'
"""

from __future__ import annotations

import itertools

import networkx as nx

REGIONS = ("us-east", "eu-west", "ap-south")
ONE_WAY_MS = {("us-east", "eu-west"): 40.0, ("eu-west", "ap-south"): 95.0, ("us-east", "ap-south"): 115.0}


def _lognormal(mean_ms: float, cv: float) -> dict[str, object]:
    return {"dist": "lognormal", "mean": f"{mean_ms}ms", "cv": cv}


def build(
    hosts_per_region: int = 3,
    broker_region: str = "us-east",
    jitter_cv: float = 0.05,
    intra_latency_ms: float = 0.5,
    wan_bandwidth: str = "10Gbps",
    lan_bandwidth: str = "10Gbps",
    wan_loss: float = 0.0,
    one_way_ms: dict[str, float] | None = None,
) -> nx.Graph:
    """Build the WAN.

    Parameters
    ----------
    hosts_per_region : int
        Hosts in each region, besides the gateway (and the broker in its region).
    broker_region : str
        Region of the broker.
    jitter_cv : float
        Coefficient of variation of inter-region latency.
    intra_latency_ms : float
        Mean one-way host–gateway latency, milliseconds.
    wan_bandwidth, lan_bandwidth : str
        Bandwidth of gateway–gateway and host–gateway links.
    wan_loss : float
        Loss probability on gateway–gateway links.
    one_way_ms : dict, optional
        Overrides, keyed ``"us-east/eu-west"`` etc., in milliseconds.
    """
    if broker_region not in REGIONS:
        raise ValueError(f"broker_region must be one of {', '.join(REGIONS)}, not {broker_region!r}")
    g = nx.Graph(name="three_region_wan")
    for region in REGIONS:
        gw = f"gw-{region}"
        g.add_node(gw, role="gateway", region=region)
        members = [f"{region}-{i}" for i in range(hosts_per_region)]
        if region == broker_region:
            members.append("broker")
        for name in members:
            role = "broker" if name == "broker" else "host"
            g.add_node(name, role=role, region=region)
            g.add_edge(gw, name, latency=_lognormal(intra_latency_ms, 0.1), bandwidth=lan_bandwidth)
    overrides = one_way_ms or {}
    for a, b in itertools.combinations(REGIONS, 2):
        ms = overrides.get(f"{a}/{b}", overrides.get(f"{b}/{a}", ONE_WAY_MS[(a, b)]))
        g.add_edge(
            f"gw-{a}", f"gw-{b}", latency=_lognormal(ms, jitter_cv), bandwidth=wan_bandwidth, loss=wan_loss
        )
    return g
