"""Request/reply with callbacks: clients send requests to servers and carry on; a reply fires a callback.

Clients are the workload's producers and keep issuing requests at their arrival times (asynchronous, no
waiting for replies). Servers are the workload's consumers; a request goes to the consumer the workload
picks (direct), or through a broker queue that servers compete for (``via_broker``), with replies sent to
the client's own reply queue. A server's processing time is its node's service time.

Each request is an obligation (client → server) and each reply another (server → client). A client's
``timeout`` fires the callback with an error; under ``at_least_once`` and ``effectively_once`` the client
retries up to ``delivery.max_attempts`` times before that, and under ``effectively_once`` servers answer a
repeated request from a cache of replies instead of processing it again. The cache is each server's own
(``delivery.dedup = "consumer"``: a crash forgets it, and a retry that another server takes is processed
again) or shared by the servers (``"shared"``).

The operation is a call: it completes when the callback gets a reply, however many request and reply
copies that took; its rows are the request's and every reply's. A reply that was not delivered but whose
call another reply answered is ``superseded`` after the run, not lost.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import simpy

from sim.core.errors import SimError
from sim.core.message import Message
from sim.core.units import parse_duration, parse_size
from sim.model.node import Node
from sim.patterns.base import Delivery, Measure, Operation, Outbox, WorldView, check_keys
from sim.patterns.client import BrokerClient, connect

__all__ = ["RequestReply"]


@dataclass(frozen=True, slots=True)
class RequestReply:
    """Asynchronous request/reply with callbacks, timeouts and retries; direct or through a broker."""

    name: ClassVar[str] = "request_reply"
    measures: ClassVar[tuple[Measure, ...]] = (
        Measure("rtt", "samples", "s", "round-trip time of an answered request (intended send → callback)"),
        Measure("requests", "count", "requests", "requests issued (whole run)"),
        Measure("answered", "count", "requests", "requests whose callback fired with a reply"),
        Measure("timeouts", "count", "requests", "requests whose callback fired with a timeout error"),
        Measure("late_replies", "count", "requests", "replies that arrived after their request timed out"),
        Measure("outstanding_max", "count", "requests", "most requests awaiting a reply at once"),
    )
    operation: ClassVar[Operation] = Operation(
        "a call answered: the callback got a reply", app_kinds=("request",), supersedable=("reply",)
    )
    timeout: float = 1.0
    via_broker: bool = False
    reply_size: float | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RequestReply:
        check_keys(options, ("timeout", "via_broker", "reply_size"))
        timeout = parse_duration(options.get("timeout", 1.0), "timeout")
        if timeout <= 0:
            raise SimError("timeout", options.get("timeout"), "a duration > 0")
        via = options.get("via_broker", False)
        if not isinstance(via, bool):
            raise SimError("via_broker", via, "true or false")
        size = options.get("reply_size")
        return cls(timeout, via, None if size is None else parse_size(size, "reply_size"))

    def install(self, world: WorldView) -> None:
        _RequestReplyRun(self, world).install()


class _RequestReplyRun:
    """The state of one run of the pattern."""

    def __init__(self, pattern: RequestReply, world: WorldView) -> None:
        self.p = pattern
        self.world = world
        self.ctx = world.ctx
        self.delivery = Delivery(world.ctx, world.delivery, reliable=False, dedup=False)
        self.dedup = world.delivery.guarantee == "effectively_once"
        # the servers' shared reply cache (an idempotency store), or None: each server keeps its own
        self.replies: dict[int, Message] | None = {} if world.delivery.dedup == "shared" else None
        self.retry = world.delivery.reliable
        self.max_attempts = world.delivery.max_attempts if self.retry else 1
        # request id -> [created_at, attempt, row, client, server, the request as first sent]
        self.outstanding: dict[int, list[Any]] = {}
        self.timed_out: set[int] = set()
        self.rtts = array("d")
        self.issued = self.answered = self.timeouts = self.late = self.outstanding_max = 0
        self.clients: dict[str, BrokerClient] = {}
        self.outboxes: dict[str, Outbox] = {}  # the clients'
        self.broker_id = ""
        self.confirms = False

    def install(self) -> None:
        world, workload = self.world, self.world.workload
        if self.p.via_broker:
            broker = world.broker()
            self.broker_id = broker.id
            self.confirms = broker.config.confirms
            broker.declare_queue("requests")
            self.clients = connect(world, broker, self.delivery, (*workload.producers, *workload.consumers))
            for server in dict.fromkeys(workload.consumers):
                self.world.node(server).on("request", self._serve(world.node(server)))
                self.clients[server].consume("requests")
            for client in dict.fromkeys(workload.producers):
                self.clients[client].on_message("reply", self._on_reply)
                self.clients[client].consume(f"reply/{client}")
                broker.declare_queue(f"reply/{client}")
        else:
            for server in dict.fromkeys(workload.consumers):
                node = world.node(server)
                node.on("request", self._serve(node))
            for client in dict.fromkeys(workload.producers):
                node = world.node(client)
                node.on("reply", self._client_handler(node))
        for client in workload.producers:
            node = world.node(client)
            self.outboxes[client] = Outbox(self.ctx, node, self._first_request, with_node=True)
        world.reporters.append(self.report)
        workload.start(self._emit)

    # -- client side -----------------------------------------------------------------------------
    def _emit(self, client: str, created_at: float, size: float, consumer: int) -> simpy.Event | None:
        server = self.world.workload.consumers[consumer]
        via = self.broker_id
        # direct: a dropped request is noted, not lost, while the client may retry; through a broker the
        # publisher-confirm setting decides, as for any publish
        return self.outboxes[client].offer(
            "request",
            via or server,
            "requests" if via else "",
            created_at,
            size,
            reliable=self.confirms if via else self.retry,
            payload=client,
        )

    def _first_request(self, node: Node, msg: Message) -> None:
        """The call starts: its state, then the first attempt (a retry resends a copy of ``msg``)."""
        self.outstanding[msg.id] = [msg.created_at, 1, msg.ob, node.id, msg.dst, msg]
        self.outstanding_max = max(self.outstanding_max, len(self.outstanding))
        self.issued += 1
        self.ctx.pending += 1
        self._send_request(node, msg)

    def _send_request(self, node: Node, msg: Message) -> None:
        self._transmit(node, msg)
        self.ctx.call_later(self.p.timeout, self._expire, (msg.id, msg.attempt, node.crashes))

    def _expire(self, event: Any) -> None:
        msg_id, attempt, crashes = event._value
        state = self.outstanding.get(msg_id)
        if state is None or state[1] != attempt:
            return
        node = self.world.node(state[3])
        if attempt < self.max_attempts and node.up and node.crashes == crashes:
            state[1] = attempt + 1
            self.ctx.ledger.count("retries")
            self._send_request(node, state[5].copy(attempt=attempt + 1))
            return
        del self.outstanding[msg_id]
        self.timed_out.add(msg_id)
        self.ctx.pending -= 1
        self.timeouts += 1  # the callback fires with a timeout error
        ledger = self.ctx.ledger
        reason = ledger.last_reason(state[2]) or "timeout"
        ledger.lose(state[2], reason)
        ledger.ops.fail(msg_id, reason, attempt)

    def _client_handler(self, node: Node) -> Any:
        def handle(msg: Message) -> None:
            self.ctx.ledger.deliver(msg.ob, self.ctx.env.now, node.id)  # type: ignore[arg-type]
            self._on_reply(msg)

        return handle

    def _on_reply(self, msg: Message) -> None:
        request_id = msg.payload  # the correlation id: which request this answers
        state = self.outstanding.pop(request_id, None)
        if state is None:  # answered already (a retry's second reply), or timed out before
            if request_id in self.timed_out:
                self.timed_out.discard(request_id)
                self.late += 1
            return
        self.ctx.pending -= 1
        self.answered += 1  # the callback fires with the reply
        self.rtts.append(self.ctx.env.now - state[0])
        self.ctx.ledger.ops.complete(request_id, self.ctx.env.now)

    # -- server side -----------------------------------------------------------------------------
    def _serve(self, node: Node) -> Any:
        """The server's handler: process a request and send the reply (from the cache for a repeat
        under effectively-once)."""
        ctx, delivery = self.ctx, self.delivery
        outbox = Outbox(ctx, node, self._reply, with_node=True)

        def handle(request: Message) -> None:
            # the reply cache is the server's own memory (a crash forgets it, another server never had it),
            # or a store shared by the servers
            cache: dict[int, Message] = (
                node.volatile.setdefault("replies", {}) if self.replies is None else self.replies
            )
            cached = cache.get(request.id) if self.dedup else None
            if cached is not None:
                if self.broker_id:
                    delivery.acknowledge(node, request)
                ctx.ledger.count("deduplicated")
                cached.attempt += 1
                self._transmit(node, cached.copy(src=node.id))  # from this server
                return
            if self.broker_id:  # a broker delivery wants the consumer's ack; a direct request does not
                delivery.acknowledge(node, request)
            ctx.ledger.deliver(request.ob, ctx.env.now, node.id)  # type: ignore[arg-type]
            client = request.payload
            size = self.p.reply_size if self.p.reply_size is not None else request.size
            if self.broker_id:  # to the client's own reply queue
                outbox.offer(
                    "reply",
                    self.broker_id,
                    "",
                    ctx.env.now,
                    size,
                    to=client,
                    op=request.id,
                    queue=f"reply/{client}",
                    payload=request.id,
                )
            else:
                outbox.offer("reply", client, "", ctx.env.now, size, op=request.id, payload=request.id)

        return handle

    def _reply(self, node: Node, reply: Message) -> None:
        """Send a new reply (kept in the reply cache first, under effectively-once)."""
        if self.dedup:
            cache = node.volatile.setdefault("replies", {}) if self.replies is None else self.replies
            cache[reply.payload] = reply
        self._transmit(node, reply)

    def _transmit(self, node: Node, msg: Message) -> None:
        """Send a request or reply: publish it through the broker (which counts the attempt), or send it."""
        if self.broker_id:
            self.clients[node.id].publish(msg)
        else:
            self.ctx.ledger.attempt(msg.ob)  # type: ignore[arg-type]
            node.send(msg)

    def report(self) -> dict[str, float | Sequence[float]]:
        """The raw figures of :attr:`RequestReply.measures`."""
        return {
            "rtt": self.rtts,
            "requests": self.issued,
            "answered": self.answered,
            "timeouts": self.timeouts,
            "late_replies": self.late,
            "outstanding_max": self.outstanding_max,
        }
