"""Replicated brokers: one broker's queues and topics on N broker nodes, a leader and followers.

Quorum-queue style (``broker.replicas = N``). The :class:`ReplicatedBroker` is the queue service; it runs
on its *leader* and keeps a copy on each *follower*:

- A publish reaches the leader, which appends it (its usual service time) and sends a ``replicate`` message
  of the publish's size to every follower. A follower appends in order on one log writer (FIFO, the
  ``[broker]`` service time plus ``persist`` when durable) and answers ``replicated``. When a majority of
  the replicas has it (the leader included) the publish is *committed*: only then is it enqueued (a quorum
  queue delivers committed messages only) and the publisher confirm sent. Publishes commit in log order,
  as in Raft: a publish that has its majority before an earlier one waits for it (the commit index only
  moves forward), so the queue's order is the append order. A publish still not committed
  ``election_delay`` after its append, or retried by its publisher, is sent again to the followers that
  have not answered (a ``replicate`` or its answer lost on a link).
- A consumer's ack (or, with auto ack, a delivery) is replicated as a ``settle`` message; it is committed
  when a majority has it.
- Replication traffic is control traffic in the ledger (attributed to the row it serves); the broker also
  counts it (``replication_messages``, ``replication_bytes``).
- The leader's crash is noticed after ``election_delay``: the live in-sync replica with the most appends
  becomes leader, provided a majority of the replicas is up (else the queues have no leader until enough
  recover; what is sent meanwhile is dropped as ``node_down``). The new leader has every committed message:
  what was delivered and not acknowledged, and what was settled but not known to any live replica, is
  delivered again (duplicates). A publish not yet committed survives if a live replica had appended it
  (it commits under the new leader); otherwise it is gone: the publisher retries it under confirms (it had
  no confirm), without confirms its rows are lost (``crash_lost``). Clients reconnect to the new leader.
- A replica is out of sync when a publish or a settle commits without it while it is down, or when it
  restarts without its log (``durable = false``); it is in sync again when the leader's ``catch_up``
  arrives (sent on its recovery, or by a new leader): one message the size of what it lacks (publishes
  being replicated and, out of sync, every queued message). A durable replica that crashes and recovers
  while nothing commits stays in sync.

Simplifications: a failure is noticed only when a node crashes (a partitioned leader stays leader); a
replica that is out of sync still appends and acknowledges new publishes; if no live replica is in sync at
an election, the new leader has nothing the old one had committed (lost as ``crash_lost``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from sim.core.context import SimContext
from sim.core.message import DATA_KINDS, Message
from sim.model.broker.broker import Broker
from sim.model.broker.queue import BrokerConfig, BrokerQueue, Entry
from sim.model.node import Node

__all__ = ["REPLICATION_KINDS", "Replica", "ReplicatedBroker"]

REPLICATION_KINDS = ("replicate", "replicated", "settle", "catch_up")
"""The control messages between replicas."""


class Replica:
    """One member of the cluster: its node, whether it holds all the leader committed, its log writer."""

    __slots__ = ("id", "in_sync", "last_seq", "log_free_at", "node")

    def __init__(self, node: Node) -> None:
        self.node = node
        self.id = node.id
        self.in_sync = True
        self.last_seq = 0
        """The log index of the last publish this replica appended (the most up-to-date wins elections)."""
        self.log_free_at = 0.0


class _Pending:
    """A publish appended by the leader, not yet committed."""

    __slots__ = ("acks", "appended", "msg", "seq", "stored")

    def __init__(self, msg: Message, seq: int, appended: float, leader: str) -> None:
        self.msg = msg
        self.seq = seq
        self.appended = appended
        self.stored = {leader}  # replicas that appended it
        self.acks = {leader}  # replicas the leader knows have it


class _Settle:
    """A consumer's ack (or an auto-ack delivery) replicated to the followers, not yet committed."""

    __slots__ = ("entry", "queue", "received")

    def __init__(self, queue: str, entry: Entry, leader: str) -> None:
        self.queue = queue
        self.entry = entry
        self.received = {leader}


class ReplicatedBroker(Broker):
    """A :class:`~sim.model.broker.broker.Broker` whose state is replicated on ``nodes`` (the first leads).

    Parameters
    ----------
    ctx : SimContext
    nodes : sequence of Node
        The replicas' hosts, at least two; ``nodes[0]`` is the first leader.
    config : BrokerConfig
    consumer_nodes : callable
        As for :class:`~sim.model.broker.broker.Broker`.
    election_delay : float
        Seconds from the leader's crash to the new leader.
    """

    def __init__(
        self,
        ctx: SimContext,
        nodes: Sequence[Node],
        config: BrokerConfig,
        consumer_nodes: Any,
        *,
        election_delay: float,
    ) -> None:
        super().__init__(ctx, nodes[0], config, consumer_nodes)
        self.replicas = {n.id: Replica(n) for n in nodes}
        self.majority = len(nodes) // 2 + 1
        self.election_delay = election_delay
        self.leader: Replica | None = self.replicas[nodes[0].id]
        self.clients: list[Any] = []
        """Objects with ``leader_changed(node_id)``, told of each new leader (the broker clients)."""
        self.pending: dict[int, _Pending] = {}  # message id -> its publish not yet committed
        self.settling: dict[int, _Settle] = {}
        self._seq = 0
        self._settle_ids = itertools.count(1)
        self._electing = False
        self._leaderless_since = 0.0
        self.replication_messages = 0
        self.replication_bytes = 0.0
        self.commit_latency: list[float] = []
        """Seconds from the leader's append to the commit (the majority's append, or an earlier publish's
        commit if later), per publish appended after ``measure_from``."""
        self._resend = ctx.timeouts(max(election_delay, 1e-3), self._resend_due, self.pending.__contains__)
        self.elections = 0
        self.unavailable = 0.0
        """Seconds without a leader (until the end of the run if none is elected)."""

    def start(self) -> None:
        """Register every replica's handlers: a replica acts as the broker only while it leads."""
        for r in self.replicas.values():
            node = r.node
            for kind in DATA_KINDS:
                node.on(kind, partial(self._accept, r))
            node.on("ack", partial(self._if_leader, r, self._ack))
            node.on("consume", partial(self._if_leader, r, self._consume))
            node.on("replicate", partial(self._append, r))
            node.on("replicated", partial(self._replicated, r))
            node.on("settle", partial(self._settled, r))
            node.on("catch_up", partial(self._caught_up, r))
            node.cost = partial(self._replica_cost, r)
            node.on_crash.append(partial(self._replica_crashed, r))
            node.on_recover.append(partial(self._replica_recovered, r))

    def _replica_cost(self, r: Replica, msg: Message) -> float:
        if msg.control:
            return 0.0
        q = self.queues.get(msg.topic)
        return self._append_time(r, q.durable if q is not None else self.config.durable)

    def _append_time(self, r: Replica, durable: bool) -> float:
        cost = self._service.sample(r.node.stream) if self._service is not None else 0.0
        return cost + (self.config.persist if durable else 0.0)

    def _if_leader(self, r: Replica, handler: Callable[[Message], None], msg: Message) -> None:
        if r is self.leader:
            handler(msg)

    def _send(self, src: Replica, dst: Replica, kind: str, size: float, row: int, payload: Any) -> None:
        self.replication_messages += 1
        self.replication_bytes += size
        msg = Message(self.ctx.next_control_id(), kind, src.id, dst.id, size, self.ctx.env.now, row)
        msg.payload = payload
        src.node.send(msg)

    # -- publishes: append, replicate, commit ----------------------------------------------------
    def _accept(self, r: Replica, msg: Message) -> None:
        """A publish served by replica ``r``: the leader appends and replicates it; any other drops it."""
        if r is not self.leader:
            self.ctx.drop(msg, "node_down", r.id)  # no leader here (any more): the publisher retries
            return
        rec = self.pending.get(msg.id)
        if rec is not None:  # a retry of a publish being replicated: its confirm comes with the commit
            self._replicate(rec, r)  # to the followers that have not answered (a replicate lost on a link)
            return
        self._seq += 1
        r.last_seq = self._seq
        rec = self.pending[msg.id] = _Pending(msg, self._seq, self.ctx.env.now, r.id)
        self._replicate(rec, r)
        self._resend.start(msg.id)

    def _replicate(self, rec: _Pending, leader: Replica) -> None:
        msg = rec.msg
        row = msg.ob if type(msg.ob) is int else (msg.ob[0] if msg.ob else -1)  # type: ignore[index]
        q = self.queues.get(msg.topic)
        payload = (msg.id, rec.seq, q.durable if q is not None else self.config.durable)
        for f in self.replicas.values():
            if f.id not in rec.acks:
                self._send(leader, f, "replicate", msg.size, row, payload)

    def _resend_due(self, msg_id: int) -> None:
        """A publish still not committed ``election_delay`` after its append (or its last resend): the
        leader sends it again to the followers that have not answered."""
        rec, leader = self.pending.get(msg_id), self.leader
        if rec is None:
            return
        if leader is not None and leader.node.up:
            self._replicate(rec, leader)
        self._resend.start(msg_id)

    def _append(self, f: Replica, msg: Message) -> None:
        """``replicate`` at a follower: append on its log writer, then answer the sender."""
        if f is self.leader:
            return  # from a deposed leader
        now = self.ctx.env.now
        f.log_free_at = max(now, f.log_free_at) + self._append_time(f, msg.payload[2])
        self.ctx.call_later(f.log_free_at - now, self._appended, (f, f.node.crashes, msg))

    def _appended(self, event: Any) -> None:
        f, crashes, msg = event._value
        if crashes != f.node.crashes or not f.node.up:
            return  # the append died with the follower
        msg_id, seq, _ = msg.payload
        f.last_seq = max(f.last_seq, seq)
        rec = self.pending.get(msg_id)
        if rec is not None:
            rec.stored.add(f.id)
        size = self.config.control_size
        self._send(f, self.replicas[msg.src], "replicated", size, msg.ob, (msg_id, seq))

    def _replicated(self, r: Replica, msg: Message) -> None:
        """``replicated`` at the leader: one more replica has the publish; commit at a majority."""
        rec = self.pending.get(msg.payload[0])
        if r is not self.leader or rec is None or rec.seq != msg.payload[1]:
            return
        rec.acks.add(msg.src)
        if len(rec.acks) >= self.majority:
            self._commit_in_order()

    def _commit_in_order(self) -> None:
        """Commit from the front of the log while its first publish has a majority: ``pending`` is in
        append (= log) order, so a publish with its majority behind one without waits for it (Raft's commit
        index)."""
        pending, majority = self.pending, self.majority
        while pending:
            head = next(iter(pending.values()))
            if len(head.acks) < majority:
                return
            self._commit(head)

    def _commit(self, rec: _Pending) -> None:
        del self.pending[rec.msg.id]
        self._missed(rec.stored)
        now = self.ctx.env.now
        if rec.appended >= self.measure_from:
            self.commit_latency.append(now - rec.appended)
        self._publish(rec.msg)  # enqueue (or fan out) and confirm

    def _dispatch(self, q: BrokerQueue) -> bool:
        if self.leader is None:  # the old leader's node may be back before the election: it serves no one
            return False
        return super()._dispatch(q)

    # -- settles: acks and auto-ack deliveries -----------------------------------------------------
    def _ack(self, msg: Message) -> None:
        q = self._by_tag.get(msg.tag)
        entry = q.unacked.get(msg.tag) if q is not None else None
        super()._ack(msg)
        if q is not None and entry is not None:
            self._settle(q, entry)

    def _deliver(self, q: BrokerQueue, entry: Entry, consumer: str) -> None:
        super()._deliver(q, entry, consumer)
        if not self.config.manual_ack:  # settled when sent
            self._settle(q, entry)

    def _settle(self, q: BrokerQueue, entry: Entry) -> None:
        leader = self.leader
        assert leader is not None  # only a leader delivers and takes acks
        sid = next(self._settle_ids)
        self.settling[sid] = _Settle(q.name, entry, leader.id)
        for f in self.replicas.values():
            if f is not leader:
                self._send(leader, f, "settle", self.config.control_size, entry.row, sid)

    def _settled(self, f: Replica, msg: Message) -> None:
        s = self.settling.get(msg.payload)
        if s is None:
            return
        s.received.add(f.id)
        if len(s.received) >= self.majority:
            del self.settling[msg.payload]
            self._missed(s.received)

    # -- crashes, elections, catching up -----------------------------------------------------------
    def _missed(self, have: set[str]) -> None:
        """A publish or a settle commits: a replica that is down without it misses it (it is out of sync
        until it catches up)."""
        for r in self.replicas.values():
            if not r.node.up and r.id not in have:
                r.in_sync = False

    def _replica_crashed(self, r: Replica) -> None:
        r.log_free_at = 0.0
        if not self.config.durable:  # its log was in memory
            r.in_sync = False
            r.last_seq = 0
        if r is self.leader:
            self.leader = None
            self._leaderless_since = self.ctx.env.now
            self._call_election()

    def _replica_recovered(self, r: Replica) -> None:
        if self.leader is None:
            self._call_election()
        elif self.leader.node.up:
            self._catch_up(r)

    def _call_election(self) -> None:
        if not self._electing:
            self._electing = True
            self.ctx.call_later(self.election_delay, self._elect)

    def _elect(self, _: Any) -> None:
        self._electing = False
        if self.leader is not None:
            return
        live = [r for r in self.replicas.values() if r.node.up]
        if len(live) < self.majority:
            return  # no quorum: the next recovery calls another election
        in_sync = [r for r in live if r.in_sync]
        new = max(in_sync or live, key=lambda r: r.last_seq)  # the first of equals, in replica order
        self._take_over(new, {r.id for r in live}, kept=bool(in_sync))

    def _take_over(self, new: Replica, live: set[str], *, kept: bool) -> None:
        """``new`` leads: the committed state as the replicas have it, consumers and publishers to come."""
        ctx, now = self.ctx, self.ctx.env.now
        self.elections += 1
        self.unavailable += now - self._leaderless_since
        self.leader, self.node, self.id = new, new.node, new.id
        self._by_tag.clear()
        back: dict[str, list[Entry]] = {}  # settled at the old leader, known to no live replica
        for s in self.settling.values():
            if not s.received & live:
                back.setdefault(s.queue, []).append(s.entry)
        self.settling.clear()
        for name, q in self.queues.items():
            q.consumers.clear()
            q.inflight.clear()
            q.publishers.clear()
            q.blocked = False
            again = sorted([*q.unacked.values(), *back.get(name, ())], key=lambda e: e.enqueued_at)
            for entry in reversed(again):
                q.redelivered += 1
                ctx.ledger.count("redeliveries")
                q.ready.appendleft(entry)
            q.unacked.clear()
            if not kept:
                for entry in q.ready:
                    ctx.ledger.lose(entry.row, "crash_lost")
                q.ready.clear()
            q.track(now)
        for rec in list(self.pending.values()):
            alive = rec.stored & live
            if not alive or not kept:
                del self.pending[rec.msg.id]
                if not rec.msg.reliable:  # with confirms, the publisher retries: it had none
                    for row in rec.msg.obligations():
                        ctx.ledger.lose(row, "crash_lost")
                continue
            rec.stored = alive | {new.id}  # the new leader caught up from the live replicas that had it
            rec.acks = set(rec.stored)
            if len(rec.acks) < self.majority:
                self._replicate(rec, new)
        self._commit_in_order()  # those with a majority, from the front of the log
        new.in_sync = True
        new.last_seq = max(new.last_seq, self._seq)
        for r in self.replicas.values():
            if r is not new and r.node.up and not r.in_sync:
                self._catch_up(r)
        for client in self.clients:
            client.leader_changed(new.id)

    def _catch_up(self, r: Replica) -> None:
        """The leader sends ``r`` what it lacks: the publishes being replicated that it has not appended and,
        out of sync, the queued messages too."""
        leader = self.leader
        assert leader is not None
        size = sum(rec.msg.size for rec in self.pending.values() if r.id not in rec.stored)
        if not r.in_sync:
            size += sum(e.msg.size for q in self.queues.values() for e in (*q.ready, *q.unacked.values()))
        self._send(leader, r, "catch_up", max(size, self.config.control_size), -1, self._seq)

    def _caught_up(self, r: Replica, msg: Message) -> None:
        leader = self.leader
        if leader is None or msg.src != leader.id or r is leader:
            return  # from a deposed leader
        r.in_sync = True
        r.last_seq = max(r.last_seq, msg.payload)
        for rec in self.pending.values():
            if rec.seq <= msg.payload and r.id not in rec.stored:
                rec.stored.add(r.id)
                size = self.config.control_size
                self._send(r, leader, "replicated", size, -1, (rec.msg.id, rec.seq))

    # -- figures ---------------------------------------------------------------------------------
    def replication_figures(self) -> dict[str, float | list[float]]:
        """Raw figures: replication traffic, commit latency samples, elections, seconds without a leader."""
        unavailable = self.unavailable
        if self.leader is None:
            unavailable += self.ctx.env.now - self._leaderless_since
        return {
            "replication_messages": self.replication_messages,
            "replication_bytes": self.replication_bytes,
            "commit_latency": self.commit_latency,
            "elections": self.elections,
            "unavailable": unavailable,
        }
