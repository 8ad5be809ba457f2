"""Broadcast, written as SimPy processes: each message a producer sends goes to every peer.

A plug-in: the scenario names it as ``pattern = "../patterns/broadcast.py:Broadcast"``; nothing in ``sim/``
knows it. Every producer takes the shared workload's messages (``node.arrival()``) and sends a copy to each
peer under the scenario's delivery guarantee; the copies of one broadcast form one operation
(``node.group()``), complete when every peer has its copy. Each peer spends its node's service time on a
copy, if the node has one. See docs/plugins.md, "Writing your own pattern".
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from sim.core.errors import SimError
from sim.patterns.base import Measure, Operation
from sim.patterns.process import App, NodeHandle, ProcessPattern

Process = Generator[simpy.Event, Any, None]


class Broadcast(ProcessPattern):
    """Every producer sends each of its messages to every peer; ``peers`` are the workload's consumers
    (``"consumers"``) or every producer and consumer but the sender (``"everyone"``)."""

    name = "broadcast"
    operation = Operation("a broadcast whose copies all reached their peers")
    measures = (Measure("broadcasts", "count", "broadcasts", "broadcasts sent (whole run)"),)
    peers: str = "consumers"  # an option: the key `peers` of the scenario's [broadcast] table

    def validate(self) -> None:
        if self.peers not in ("consumers", "everyone"):
            raise SimError("peers", self.peers, "consumers or everyone")

    def start(self, app: App) -> None:
        self.app = app
        everyone = tuple(dict.fromkeys(app.producers + app.consumers))
        group = app.consumers if self.peers == "consumers" else everyone
        for node_id in everyone:  # every node that receives runs one receiver per worker
            if node_id in group:
                for _ in range(app.node(node_id).servers):
                    app.spawn(node_id, self.peer)
        for node_id in app.producers:
            app.spawn(node_id, self.sender, tuple(p for p in group if p != node_id))

    def sender(self, node: NodeHandle, peers: tuple[str, ...]) -> Process:
        while True:
            job = yield node.arrival()  # the next message of the shared workload, at its intended time
            op = node.group()  # one operation for all the copies
            for peer in peers:
                node.send(peer, job.at, size=job.size, op=op, created_at=job.at)
            self.app.count("broadcasts")

    def peer(self, node: NodeHandle) -> Process:
        while True:
            yield node.receive("data")  # delivered: the guarantee's acks and dedup are done
            if node.service is not None:
                yield node.compute()  # the node's service time, on one of its workers
