"""How much does each delivery cost when one message must reach more and more subscribers: pub/sub or unicast?

Two publishers send 100 messages/s each over a leaf-spine fabric (4 leaves × 5 hosts, 2 spines; most
paths are host → leaf → spine → leaf → host, 4 links) to 1, 2, 4, 8 or 16 consumers, at least once.

- ``pubsub``: every message is published once to the broker (on host ``h1_0``, which runs no client) and
  the broker fans it out into one subscription queue per consumer, so each message is N deliveries
  (``offered`` = messages × N). The publish leg and its confirm are paid once per message and shared by
  the N deliveries; each delivery then pays its own broker → subscriber leg and ack.
- ``point_to_point``: **the simulator cannot send one message to every consumer with point-to-point**:
  ``workload.destinations`` (``fixed``, ``uniform``, ``zipf``, ``hotspot``) picks *one* consumer per
  message, and there is no ``all``. So this is plain unicast — each message goes to one consumer drawn
  uniformly — and it stands in for application-level multicast by N unicasts: a sender that sends a copy
  to each of N consumers pays N times the cost of one unicast, so its cost *per delivery* is the unicast
  cost per delivery shown here, whatever N is (its cost *per message* is N times that).

How to read ``msgs_per_delivery`` (link transmissions per delivered obligation, data plus acks and
confirms) and ``bytes_per_delivery`` (bytes on links per delivery): for unicast both stay flat in N (about
2 × path length transmissions with acks); for pub/sub they fall from about twice the unicast figure at
N = 1 (the message crosses the network twice, publisher → broker → consumer, with a confirm and an ack)
towards the cost of the broker → subscriber leg alone as the shared publish leg is divided among more
deliveries. The broker sends each copy separately (there is no network-level multicast in the model), so
pub/sub per delivery approaches but does not beat unicast in link transmissions; what it saves is the
publisher's own sends (one per message instead of N) and its knowledge of who the subscribers are. Multiply
by N for the cost per published message. ``control_share`` shows how much of it is acks and confirms.
Pub/sub also carries N times the deliveries, all through the broker's one access link; at these rates
(at most 3200 deliveries/s of 1 KB on 1 Gbps links) that adds no visible queueing.

Placement matters too: consumers are spread over the hosts counted from the back, so from N = 4 on some
share a leaf with a producer or with the broker and are 2 links away instead of 4; the unicast figure drops
from 8 to about 7 transmissions per delivery between N = 2 and N = 4 for that reason alone.

The paired differences in the report (pubsub − point_to_point, same seeds, so the same publish times) give
the extra cost of pub/sub per delivery at each N.

Run it: ``sim run experiments/fanout.py`` (``--quick`` for a smoke run of about half a minute).
"""

from sim import Experiment, Scenario

BASE = Scenario(
    duration="30s",
    warmup="3s",
    drain="20s",
    # 20 hosts: the two producers are h0_0 and h2_0, up to 16 consumers are taken from the back, and
    # h1_0 is left free for the broker at every consumer count
    topology={"name": "leaf_spine", "params": {"spines": 2, "leaves": 4, "hosts_per_leaf": 5}},
    links={"latency": {"dist": "exponential", "mean": "200us"}, "bandwidth": "1Gbps"},
    nodes={"service": {"dist": "exponential", "mean": "200us"}},
    workload={"producers": 2, "consumers": 1, "rate": "100/s", "size": "1KB", "destinations": "uniform"},
    delivery={"guarantee": "at_least_once", "ack_timeout": "50ms", "max_timeout": "1s", "max_attempts": 8},
    broker={
        "node": "h1_0",
        "service": {"dist": "exponential", "mean": "50us"},
        "prefetch": 100,
        "ack_timeout": "1s",
    },
)

EXPERIMENT = Experiment(
    name="fanout",
    description=__doc__.strip().splitlines()[0],
    base=BASE,
    grid={
        "pattern": ["point_to_point", "pubsub"],
        "workload.consumers": [1, 2, 4, 8, 16],
    },
    replications=5,
    seed=2026,
    quick={"duration": "5s", "warmup": "1s", "drain": "10s"},
    quick_replications=2,
)

if __name__ == "__main__":
    import sys

    from sim.cli.run import main

    sys.exit(main(EXPERIMENT))
