"""The log cluster: one topic's partitions, replicated over broker nodes (Kafka's model).

- **Placement.** Partition ``p``'s ``replication_factor`` replicas sit on brokers ``p, p+1, ...`` (mod the
  broker count), the first one its preferred leader (Kafka's round-robin assignment).
- **Produce.** A producer's batch (:class:`Batch`) is a ``data`` message to the partition's leader: the
  broker's workers append it (the broker node's service time, its ``servers``). ``acks = 0`` gets no answer,
  ``acks = 1`` an answer on the leader's append, ``acks = "all"`` one when the high watermark passes the
  batch; with ``acks = "all"`` a leader whose in-sync set is smaller than ``min_insync_replicas`` refuses the
  batch (``not_enough_replicas``), and answers that error too when the set shrank below it before the
  batch was committed. An idempotent producer's batches carry sequence numbers: the leader acknowledges a
  batch it already holds without appending it again (with ``acks = "all"`` once that batch is committed,
  as the original's answer) and refuses one that leaves a gap (``out_of_order``).
- **Replication.** Every ``fetch_interval`` each follower asks its leader for the records after its log end
  (``replica_fetch``, control traffic); the answer (``replica_data``) carries them, their first offset and
  the leader's epoch (not the high watermark: followers do not use it).
  A follower is caught up when it fetched up to the leader's log end, or up to where the end was at its
  previous fetch (Kafka's rule); one not caught up for ``replica_lag_max`` leaves the in-sync set (ISR),
  and it joins again once its fetch reaches the high watermark and the current leader's first offset. The
  high watermark is the smallest log end in the ISR and of the followers outside it caught up within
  ``replica_lag_max`` (Kafka's rule: otherwise, under steady load, a follower's fetch would trail the high
  watermark by the records of one fetch interval and never rejoin): consumers read only below it.
- **Elections.** ``election_delay`` after a leader's (last) crash, the first live replica in the ISR leads
  (clean); with none, and ``unclean_leader_election``, the first live replica (its ISR is itself); else the
  partition is offline until an eligible replica recovers (elected at once). Every replica truncates to the
  new leader's log end; the records cut are handed to :attr:`Cluster.on_cut` with the reason
  ``unclean_election`` or ``unreplicated``. A leader back before its election keeps leading.
- **Retention.** Each replica drops records older than ``retention`` (by their creation time, as Kafka's
  default timestamps) or beyond ``retention_bytes``; what the leader drops goes to :attr:`Cluster.on_cut`
  with the reason ``retention``, and while the partition's leader is down or it has none, what its
  followers drop (a record may be reported more than once).
- **Consumer fetch.** ``log_fetch`` to the leader returns up to ``max_fetch_records`` records below the high
  watermark (``log_records``), or ``out_of_range`` with the log start for an offset retention removed.

Logs live on the brokers' disks: a crash loses a broker's inbox and work in service, not its log. Clients
learn a new leader as soon as it is elected (metadata propagation is instant).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from sim.core.context import SimContext
from sim.core.message import Message
from sim.model.log.partition import Batch, Partition, Record, Replica
from sim.model.node import Node

__all__ = [
    "ACKS_ALL",
    "NOT_ENOUGH_REPLICAS",
    "NOT_LEADER",
    "OUT_OF_ORDER",
    "OUT_OF_RANGE",
    "Cluster",
    "ClusterStatistics",
    "LogConfig",
]

ACKS_ALL = -1
NOT_LEADER = "not_leader"
NOT_ENOUGH_REPLICAS = "not_enough_replicas"
OUT_OF_ORDER = "out_of_order"
OUT_OF_RANGE = "out_of_range"


@dataclass(frozen=True, slots=True)
class LogConfig:
    """The cluster's plain settings (validated by :class:`sim.patterns.log.Log`). Times in seconds, sizes in
    bytes; ``acks`` is 0, 1 or :data:`ACKS_ALL`."""

    partitions: int = 1
    replication_factor: int = 1
    acks: int = ACKS_ALL
    min_insync_replicas: int = 1
    unclean_leader_election: bool = False
    fetch_interval: float = 0.005
    replica_lag_max: float = 0.1
    election_delay: float = 0.1
    retention: float = math.inf
    retention_bytes: float = math.inf
    control_size: float = 64.0
    max_fetch_records: int = 500


@dataclass(frozen=True, slots=True)
class ClusterStatistics:
    """Counts of the cluster's run: replication bytes, leader elections (and the unclean ones among them),
    partition-seconds with an ISR smaller than the replication factor or no leader."""

    replication_bytes: float
    elections: int
    unclean_elections: int
    under_replicated_s: float


class Cluster:
    """A topic's partitions on ``brokers`` (node id -> the broker's node, in placement order).

    ``on_cut(records, reason)`` is told of records removed from a leader's log (see the module); by default
    nothing is done with them.
    """

    def __init__(self, ctx: SimContext, config: LogConfig, brokers: Mapping[str, Node]) -> None:
        self.ctx = ctx
        self.config = config
        self.brokers = dict(brokers)
        ids = list(self.brokers)
        n = len(ids)
        rf = config.replication_factor
        self.partitions = [
            Partition(p, tuple(ids[(p + i) % n] for i in range(rf))) for p in range(config.partitions)
        ]
        self.hosted: dict[str, list[Partition]] = {b: [] for b in ids}
        for part in self.partitions:
            for b in part.replicas:
                self.hosted[b].append(part)
        self.on_cut: Callable[[list[Record], str], None] = lambda records, reason: None
        self.replication_bytes = 0.0
        self.elections = 0
        self.unclean_elections = 0
        self._under_time = 0.0
        self._tick_cb = self._tick

    # -- wiring ------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Register the brokers' handlers and crash hooks; start each broker's fetch and housekeeping tick."""
        for broker, node in self.brokers.items():
            node.on("data", partial(self._on_produce, node))
            node.on("replica_fetch", partial(self._on_replica_fetch, node))
            node.on("replica_data", partial(self._on_replica_data, node))
            node.on("log_fetch", partial(self._on_log_fetch, node))
            node.on_crash.append(partial(self._crashed, broker))
            node.on_recover.append(partial(self._recovered, broker))
            if self.hosted[broker]:
                self.ctx.call_later(self.config.fetch_interval, self._tick_cb, broker)

    def leader(self, partition: int) -> str | None:
        """The partition's leader now (None while it has none)."""
        return self.partitions[partition].leader

    def statistics(self) -> ClusterStatistics:
        now = self.ctx.env.now
        open_spans = sum(now - p.under_since for p in self.partitions if p.under_since is not None)
        return ClusterStatistics(
            self.replication_bytes, self.elections, self.unclean_elections, self._under_time + open_spans
        )

    # -- produce -----------------------------------------------------------------------------------------
    def _answer(self, node: Node, request: Message, error: str) -> None:
        ctx = self.ctx
        batch: Batch = request.payload
        ob = request.ob
        row = ob[0] if type(ob) is tuple and ob else -1
        node.send(
            Message(
                ctx.next_control_id(),
                "produce_ack",
                node.id,
                request.src,
                self.config.control_size,
                ctx.env.now,
                row,
                tag=batch.id,
                attempt=request.attempt,
                payload=error,
            )
        )

    def _on_produce(self, node: Node, msg: Message) -> None:
        batch: Batch = msg.payload
        part = self.partitions[batch.partition]
        config = self.config
        if part.leader != node.id:
            if config.acks != 0:
                self._answer(node, msg, NOT_LEADER)
            return
        if config.acks == ACKS_ALL and len(part.isr) < config.min_insync_replicas:
            self._answer(node, msg, NOT_ENOUGH_REPLICAS)
            return
        replica = part.logs[node.id]
        records = batch.records
        if batch.first_seq >= 0:  # idempotent
            last = replica.seqs.get(batch.producer)
            if last is not None and batch.first_seq <= last < records[-1].seq:
                # a retry whose head only is here: a follower, elected, had fetched part of the batch (a
                # fetch answer can end inside a batch); the missing tail is appended, the head not again
                records = [r for r in records if r.seq > last]
            elif last is not None and batch.first_seq <= last:  # a retry of a batch already appended
                if config.acks == ACKS_ALL:
                    end = self._end_of(replica, batch)
                    if end > part.hw:  # not committed yet: answered with the original, as Kafka
                        part.waiting.append((end, msg))
                        return
                if config.acks != 0:
                    self._answer(node, msg, "")
                return
            if last is not None and batch.first_seq > last + 1 and not batch.reset:
                if config.acks != 0:
                    self._answer(node, msg, OUT_OF_ORDER)
                return
        replica.append(records)
        if config.acks == 1:
            self._answer(node, msg, "")
        elif config.acks == ACKS_ALL:
            part.waiting.append((replica.end, msg))
        self._advance(part)

    @staticmethod
    def _end_of(replica: Replica, batch: Batch) -> int:
        """The log end just after ``batch``'s last record in ``replica`` (its start if retention removed it);
        a search from the end, for a retry, which is rare and usually of a recent batch."""
        last = batch.records[-1]
        log = replica.log
        for i in range(len(log) - 1, -1, -1):
            if log[i] is last:
                return replica.start + i + 1
        return replica.start

    def _advance(self, part: Partition) -> None:
        """Move the high watermark to the ISR's smallest log end; answer the batches it commits."""
        leader = part.leader
        if leader is None:
            return
        hw = part.logs[leader].end
        leo = part.leo
        for f in part.isr:
            if f != leader and leo[f] < hw:
                hw = leo[f]
        if len(part.isr) < len(part.replicas):  # a caught-up follower outside the ISR holds it too (Kafka)
            now = self.ctx.env.now
            lag_max = self.config.replica_lag_max
            for f in part.replicas:
                if leo[f] < hw and f not in part.isr and now - part.caught_up[f] <= lag_max:
                    hw = leo[f]
        if hw <= part.hw:
            return
        part.hw = hw
        if part.waiting:
            node = self.brokers[leader]
            error = "" if len(part.isr) >= self.config.min_insync_replicas else NOT_ENOUGH_REPLICAS
            keep = []
            for end, request in part.waiting:
                if end <= hw:
                    self._answer(node, request, error)
                else:
                    keep.append((end, request))
            part.waiting = keep

    # -- replication -------------------------------------------------------------------------------------
    def _tick(self, event: Any) -> None:
        broker = event._value
        config = self.config
        self.ctx.call_later(config.fetch_interval, self._tick_cb, broker)
        node = self.brokers[broker]
        if not node.up or node.paused:
            return
        now = self.ctx.env.now
        for part in self.hosted[broker]:
            replica = part.logs[broker]
            if config.retention < math.inf or config.retention_bytes < math.inf:
                self._retain(part, broker, replica, now)
            if part.leader == broker:
                self._shrink(part, now)
            elif part.leader is not None:
                ctx = self.ctx
                node.send(
                    Message(
                        ctx.next_control_id(),
                        "replica_fetch",
                        broker,
                        part.leader,
                        config.control_size,
                        now,
                        payload=(part.index, replica.end, part.epoch),
                    )
                )

    def _shrink(self, part: Partition, now: float) -> None:
        lag_max = self.config.replica_lag_max
        out = [f for f in part.isr if f != part.leader and now - part.caught_up[f] > lag_max]
        if out:
            part.isr.difference_update(out)
            self._under(part)
            self._advance(part)

    def _on_replica_fetch(self, node: Node, msg: Message) -> None:
        p, offset, epoch = msg.payload
        part = self.partitions[p]
        if part.leader != node.id or epoch != part.epoch:
            return
        follower = msg.src
        replica = part.logs[node.id]
        now = self.ctx.env.now
        end = replica.end
        offset = min(offset, end)
        part.leo[follower] = offset
        last = part.last_fetch.get(follower)
        if offset >= end:
            part.caught_up[follower] = now
        elif last is not None and offset >= last[1]:
            part.caught_up[follower] = max(part.caught_up[follower], last[0])
        part.last_fetch[follower] = (now, end)
        if follower not in part.isr and offset >= max(part.hw, part.epoch_start, replica.start):
            part.isr.add(follower)
            part.caught_up[follower] = now
            self._under(part)
        self._advance(part)
        first = max(offset, replica.start)
        records = replica.log[first - replica.start : first - replica.start + self.config.max_fetch_records]
        nbytes = sum(r.size for r in records)
        self.replication_bytes += nbytes
        ctx = self.ctx
        node.send(
            Message(
                ctx.next_control_id(),
                "replica_data",
                node.id,
                follower,
                self.config.control_size + nbytes,
                now,
                payload=(p, first, records, part.epoch),
            )
        )

    def _on_replica_data(self, node: Node, msg: Message) -> None:
        p, first, records, epoch = msg.payload
        part = self.partitions[p]
        if part.leader != msg.src or epoch != part.epoch:
            return
        replica = part.logs[node.id]
        if first > replica.end or first < replica.start:  # behind the leader's log start: start over there
            replica.reset(first)
        elif first < replica.end:
            return  # an older answer
        replica.append(records)

    # -- retention ---------------------------------------------------------------------------------------
    def _retain(self, part: Partition, broker: str, replica: Replica, now: float) -> None:
        config = self.config
        log = replica.log
        count = 0
        nbytes = replica.bytes
        while count < len(log) and (
            now - log[count].created_at > config.retention or nbytes > config.retention_bytes
        ):
            nbytes -= log[count].size
            count += 1
        if count:
            cut = replica.trim(count)
            leader = part.leader
            if broker == leader or leader is None or not self.brokers[leader].up:
                self.on_cut(cut, "retention")  # a leader that is down does not trim: its followers report

    # -- crashes and elections ---------------------------------------------------------------------------
    def _crashed(self, broker: str) -> None:
        for part in self.hosted[broker]:
            if part.leader == broker:
                part.waiting = []  # the requests die with the broker: their producers time out and retry
                crashes = self.brokers[broker].crashes
                self.ctx.call_later(
                    self.config.election_delay, self._elect_later, (part, part.epoch, crashes)
                )

    def _elect_later(self, event: Any) -> None:
        part, epoch, crashes = event._value
        if part.epoch != epoch or part.leader is None:
            return  # elected meanwhile
        leader = self.brokers[part.leader]
        if leader.up or leader.crashes != crashes:
            return  # the leader is back, or back and down again: that crash's own timer elects
        self._elect(part)

    def _elect(self, part: Partition) -> None:
        brokers = self.brokers
        live = [b for b in part.replicas if brokers[b].up]
        clean = [b for b in live if b in part.isr]
        if clean:
            new, unclean = clean[0], False
        elif live and self.config.unclean_leader_election:
            new, unclean = live[0], True
        else:
            if part.leader is not None:
                part.leader = None  # offline until an eligible replica recovers
                part.epoch += 1
                self._under(part)
            return
        now = self.ctx.env.now
        self.elections += 1
        if unclean:
            self.unclean_elections += 1
        cut_at = part.logs[new].end
        cut: dict[int, Record] = {}
        for replica in part.logs.values():
            if replica.end > cut_at:
                for r in replica.truncate(cut_at):
                    cut.setdefault(r.row, r)
        part.isr = {new} if unclean else {b for b in part.isr if brokers[b].up}
        part.leader = new
        part.epoch += 1
        part.hw = min(part.hw, cut_at)
        part.epoch_start = cut_at
        part.leo = {b: part.logs[b].end for b in part.replicas}
        part.caught_up = {b: now if b in part.isr else -math.inf for b in part.replicas}
        part.last_fetch = {}
        part.waiting = []
        for replica in part.logs.values():
            replica.rebuild_seqs()
        self._under(part)
        self._advance(part)
        if cut:
            self.on_cut(list(cut.values()), "unclean_election" if unclean else "unreplicated")

    def _recovered(self, broker: str) -> None:
        now = self.ctx.env.now
        for part in self.hosted[broker]:
            if part.leader is None:
                self._elect(part)
            elif part.leader == broker:
                part.caught_up = {b: now if b in part.isr else part.caught_up[b] for b in part.replicas}

    def _under(self, part: Partition) -> None:
        under = part.leader is None or len(part.isr) < len(part.replicas)
        now = self.ctx.env.now
        if under and part.under_since is None:
            part.under_since = now
        elif not under and part.under_since is not None:
            self._under_time += now - part.under_since
            part.under_since = None

    # -- consumers ---------------------------------------------------------------------------------------
    def _on_log_fetch(self, node: Node, msg: Message) -> None:
        p, offset, serial = msg.payload
        part = self.partitions[p]
        ctx = self.ctx
        records: list[Record] = []
        error = ""
        position = offset
        if part.leader != node.id:
            error = NOT_LEADER
        else:
            replica = part.logs[node.id]
            if offset < replica.start or offset > replica.end:
                error, position = OUT_OF_RANGE, replica.start if offset < replica.start else part.hw
            elif offset < part.hw:
                i = offset - replica.start
                records = replica.log[i : min(part.hw - replica.start, i + self.config.max_fetch_records)]
        node.send(
            Message(
                ctx.next_control_id(),
                "log_records",
                node.id,
                msg.src,
                self.config.control_size + sum(r.size for r in records),
                ctx.env.now,
                payload=(p, position, records, error, serial),
            )
        )

    def log_start(self, partition: int) -> int:
        """The partition's first offset on its leader (0 while it has none)."""
        part = self.partitions[partition]
        return part.logs[part.leader].start if part.leader is not None else 0

    def high_watermark(self, partition: int) -> int:
        return self.partitions[partition].hw

    def records(self, partition: int, start: int, stop: int) -> list[Record]:
        """The leader's records with offsets in ``[start, stop)`` (those it still has)."""
        part = self.partitions[partition]
        if part.leader is None:
            return []
        replica = part.logs[part.leader]
        return replica.log[max(0, start - replica.start) : max(0, stop - replica.start)]
