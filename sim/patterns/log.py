"""The partitioned log (Kafka's model): producers append keyed records to a replicated topic's partitions,
and a consumer group reads them, each partition by one member, committing its offsets.

The cluster (partitions, replication, elections, retention) is :mod:`sim.model.log.cluster`, the group's
coordinator :mod:`sim.model.log.group`; this module holds the clients and the pattern's options.

- **Producers** pick each record's key (``keys``) and its partition (a stable hash of the key, or round-robin
  without keys), gather records per partition into batches (sent when ``batch_size`` bytes are reached or
  ``linger`` after the first record, as soon as fewer than ``max_in_flight`` batches of that partition await
  an answer) and send each batch to the partition's leader. With ``acks`` 1 or ``"all"`` a batch is retried
  ``ack_timeout * backoff**(attempt-1)`` after it was sent, or after an error answer, up to ``max_attempts``
  (``[delivery]``); then its records are lost with the last reason noted. ``idempotent`` producers number
  their records, so that the leader drops a retried batch it already has and refuses one out of order.
- **Consumers** fetch from each of their partitions' leader from their position up to the high watermark,
  hand the records to the node's workers (its service time, its servers), and fetch again once those are
  processed (``fetch_interval`` later when there was nothing). A record's ledger row is delivered when a
  worker processes it. ``commit = "periodic"`` commits the position (everything fetched) every
  ``commit_interval``; ``"after_processing"`` commits once all the records of a fetch are processed (as a
  consumer's synchronous commit after each poll's records).

One ledger row per record (one group): ``dst`` is the group's name, not a node (the group, whichever member
holds the partition, owes the processing; a broker down at the end excuses nothing), ``topic`` is
``<topic>/<key>`` (``<topic>`` without keys), so that ``delivery.ordering = "per_key"`` checks each
producer's per-key order.
"""

from __future__ import annotations

import bisect
import math
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import simpy

from sim.core.context import SimContext
from sim.core.errors import SimError
from sim.core.message import Message
from sim.core.units import parse_count, parse_duration, parse_size
from sim.model.log.cluster import (
    ACKS_ALL,
    NOT_LEADER,
    OUT_OF_ORDER,
    OUT_OF_RANGE,
    Batch,
    Cluster,
    LogConfig,
    Record,
)
from sim.model.log.group import Group
from sim.model.node import Node
from sim.patterns.base import Measure, Operation, Outbox, WorldView, check_keys

__all__ = ["Log"]

KEYS = ("producer", "uniform", "zipf", "none")
COMMITS = ("periodic", "after_processing")
STARTS = ("earliest", "latest")
OPTIONS = (
    "brokers",
    "topic",
    "partitions",
    "replication_factor",
    "acks",
    "min_insync_replicas",
    "unclean_leader_election",
    "fetch_interval",
    "replica_lag_max",
    "election_delay",
    "keys",
    "key_count",
    "key_skew",
    "linger",
    "batch_size",
    "max_in_flight",
    "idempotent",
    "group",
    "commit",
    "commit_interval",
    "session_timeout",
    "start",
    "retention",
    "retention_bytes",
    "lag_interval",
)


def _name(options: Mapping[str, Any], key: str, default: str) -> str:
    value = options.get(key, default)
    if not isinstance(value, str) or not value or "/" in value:
        raise SimError(key, value, "a non-empty name without '/'")
    return value


def _flag(options: Mapping[str, Any], key: str, default: bool | None) -> bool | None:
    value = options.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise SimError(key, value, "true or false")
    return value


def _positive(options: Mapping[str, Any], key: str, default: object) -> float:
    value = options.get(key, default)
    x = parse_duration(value, key)
    if x <= 0:
        raise SimError(key, value, "a duration > 0")
    return x


@dataclass(frozen=True, slots=True)
class Log:
    """A replicated, partitioned topic on a cluster of brokers, keyed producers and one consumer group.

    Options left ``None`` follow ``[delivery] guarantee`` (:meth:`settings`); see docs/patterns.md.
    """

    name: ClassVar[str] = "log"
    measures: ClassVar[tuple[Measure, ...]] = (
        Measure(
            "produce_latency", "samples", "s", "produce latency of a record (intended send → its batch's ack)"
        ),
        Measure(
            "consumer_lag",
            "samples",
            "records",
            "group lag summed over partitions (high watermark − committed), sampled",
        ),
        Measure(
            "partition_lag",
            "samples",
            "records",
            "one partition's lag (high watermark − committed), sampled per partition",
        ),
        Measure(
            "ordering_violations",
            "count",
            "records",
            "records first processed after a later record of their producer and key",
        ),
        Measure(
            "replication_bytes",
            "count",
            "bytes",
            "bytes sent from leaders to followers (a log's records; a replicated broker's messages)",
        ),
        Measure(
            "under_replicated_s",
            "count",
            "partition-s",
            "time partitions spent with an ISR short of the replication factor or no leader",
        ),
        Measure(
            "elections",
            "count",
            "elections",
            "leader elections (of a log's partitions, clean and unclean; of a replicated broker)",
        ),
        Measure("unclean_elections", "count", "elections", "leader elections of a replica outside the ISR"),
        Measure("rebalances", "count", "rebalances", "consumer group rebalances after the first assignment"),
        Measure(
            "produce_errors",
            "count",
            "answers",
            "produce answers with an error (not leader, not enough replicas, out of order)",
        ),
    )
    operation: ClassVar[Operation] = Operation("a record processed by the consumer group")
    brokers: int | tuple[str, ...] = 1
    topic: str = "events"
    partitions: int = 1
    replication_factor: int | None = None
    acks: int | None = None
    min_insync_replicas: int | None = None
    unclean_leader_election: bool = False
    fetch_interval: float = 0.005
    replica_lag_max: float = 0.1
    election_delay: float = 0.1
    keys: str = "producer"
    key_count: int = 16
    key_skew: float = 1.0
    linger: float = 0.0
    batch_size: float = 16384.0
    max_in_flight: int = 1
    idempotent: bool | None = None
    group: str = "group"
    commit: str | None = None
    commit_interval: float = 0.1
    session_timeout: float = 0.5
    start: str | int = "earliest"
    retention: float = math.inf
    retention_bytes: float = math.inf
    lag_interval: float = 0.01

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Log:
        check_keys(options, OPTIONS)
        o = options
        brokers = o.get("brokers", 1)
        if isinstance(brokers, list | tuple):
            if (
                not brokers
                or not all(isinstance(b, str) and b for b in brokers)
                or len(set(brokers)) < len(brokers)
            ):
                raise SimError("brokers", brokers, "a count >= 1 or a list of distinct node ids")
            brokers = tuple(brokers)
        else:
            brokers = int(parse_count(brokers, "brokers", minimum=1))
        n_brokers = brokers if isinstance(brokers, int) else len(brokers)
        partitions = int(parse_count(o.get("partitions", 1), "partitions", minimum=1))
        rf = o.get("replication_factor")
        if rf is not None:
            rf = int(parse_count(rf, "replication_factor", minimum=1))
            if rf > n_brokers:
                raise SimError("replication_factor", rf, f"from 1 to the number of brokers ({n_brokers})")
        acks = o.get("acks")
        if acks is not None:
            if acks not in (0, 1, "all") or isinstance(acks, bool):
                raise SimError("acks", acks, '0, 1 or "all"')
            acks = ACKS_ALL if acks == "all" else int(acks)
        isr = o.get("min_insync_replicas")
        if isr is not None:
            isr = int(parse_count(isr, "min_insync_replicas", minimum=1))
            if isr > (rf if rf is not None else min(3, n_brokers)):
                raise SimError("min_insync_replicas", isr, "from 1 to the replication factor")
        keys = o.get("keys", "producer")
        if keys not in KEYS:
            raise SimError("keys", keys, "one of " + ", ".join(KEYS))
        skew = o.get("key_skew", 1.0)
        if isinstance(skew, bool) or not isinstance(skew, int | float) or not 0 <= skew < math.inf:
            raise SimError("key_skew", skew, "a number >= 0")
        commit = o.get("commit")
        if commit is not None and commit not in COMMITS:
            raise SimError("commit", commit, "one of " + ", ".join(COMMITS))
        start = o.get("start", "earliest")
        if isinstance(start, str):
            if start not in STARTS:
                raise SimError("start", start, '"earliest", "latest" or an offset >= 0')
        else:
            start = int(parse_count(start, "start", minimum=0))
        retention = parse_duration(o.get("retention", "inf"), "retention", allow_inf=True)
        if retention <= 0:
            raise SimError("retention", o.get("retention"), 'a duration > 0 or "inf"')
        retention_bytes = o.get("retention_bytes", "inf")
        if isinstance(retention_bytes, str) and retention_bytes.strip().lower() == "inf":
            retention_bytes = math.inf
        else:
            retention_bytes = parse_size(retention_bytes, "retention_bytes")
            if retention_bytes <= 0:
                raise SimError("retention_bytes", o.get("retention_bytes"), 'a size > 0 or "inf"')
        return cls(
            brokers=brokers,
            topic=_name(o, "topic", "events"),
            partitions=partitions,
            replication_factor=rf,
            acks=acks,
            min_insync_replicas=isr,
            unclean_leader_election=bool(_flag(o, "unclean_leader_election", False)),
            fetch_interval=_positive(o, "fetch_interval", "5ms"),
            replica_lag_max=_positive(o, "replica_lag_max", "100ms"),
            election_delay=parse_duration(o.get("election_delay", "100ms"), "election_delay"),
            keys=keys,
            key_count=int(parse_count(o.get("key_count", 16), "key_count", minimum=1)),
            key_skew=float(skew),
            linger=parse_duration(o.get("linger", 0), "linger"),
            batch_size=parse_size(o.get("batch_size", "16KiB"), "batch_size"),
            max_in_flight=int(parse_count(o.get("max_in_flight", 1), "max_in_flight", minimum=1)),
            idempotent=_flag(o, "idempotent", None),
            group=_name(o, "group", "group"),
            commit=commit,
            commit_interval=_positive(o, "commit_interval", "100ms"),
            session_timeout=_positive(o, "session_timeout", "500ms"),
            start=start,
            retention=retention,
            retention_bytes=float(retention_bytes),
            lag_interval=_positive(o, "lag_interval", "10ms"),
        )

    def settings(self, guarantee: str, n_brokers: int) -> tuple[int, int, int, bool, str]:
        """(replication_factor, acks, min_insync_replicas, idempotent, commit) with the unset ones from the
        guarantee: ``at_most_once`` acks 1, periodic commits; ``at_least_once`` acks "all", at least 2 in
        sync (when there are 2 replicas), commits after processing; ``effectively_once`` as at-least-once,
        idempotent. The replication factor defaults to the brokers, at most 3."""
        reliable = guarantee != "at_most_once"
        rf = self.replication_factor if self.replication_factor is not None else min(3, n_brokers)
        acks = self.acks if self.acks is not None else (ACKS_ALL if reliable else 1)
        isr = (
            self.min_insync_replicas
            if self.min_insync_replicas is not None
            else (min(2, rf) if reliable else 1)
        )
        if isr > rf:
            raise SimError("min_insync_replicas", isr, f"from 1 to the replication factor ({rf})")
        idempotent = self.idempotent if self.idempotent is not None else guarantee == "effectively_once"
        commit = self.commit if self.commit is not None else ("after_processing" if reliable else "periodic")
        return rf, acks, isr, idempotent, commit

    def install(self, world: WorldView) -> None:
        _LogRun(self, world).install()


class _LogRun:
    """One run of the pattern: the cluster, the group, the producers and consumers, the figures."""

    def __init__(self, pattern: Log, world: WorldView) -> None:
        self.p = pattern
        self.world = world
        self.ctx = world.ctx
        ids = world.broker_nodes(pattern.brokers, "log.brokers")
        rf, acks, isr, idempotent, commit = pattern.settings(world.delivery.guarantee, len(ids))
        if rf > len(ids):
            raise SimError("replication_factor", rf, f"from 1 to the number of brokers ({len(ids)})")
        self.acks, self.idempotent, self.commit = acks, idempotent, commit
        config = LogConfig(
            partitions=pattern.partitions,
            replication_factor=rf,
            acks=acks,
            min_insync_replicas=isr,
            unclean_leader_election=pattern.unclean_leader_election,
            fetch_interval=pattern.fetch_interval,
            replica_lag_max=pattern.replica_lag_max,
            election_delay=pattern.election_delay,
            retention=pattern.retention,
            retention_bytes=pattern.retention_bytes,
            control_size=world.delivery.ack_size,
        )
        self.cluster = Cluster(self.ctx, config, {b: world.broker_host(b) for b in ids})
        self.group = Group(
            self.ctx, pattern.group, world.workload.consumers, pattern.partitions, pattern.session_timeout
        )
        self.delivery = world.delivery
        self.max_attempts = world.delivery.max_attempts if acks != 0 and world.delivery.reliable else 1
        self.dedup: set[int] | None = set() if world.delivery.guarantee == "effectively_once" else None
        self.producers: dict[str, _Producer] = {}
        self.consumers: dict[str, _Consumer] = {}
        self.latency: list[float] = []
        self.lag: list[float] = []
        self.partition_lag: list[float] = []
        self.order: dict[tuple[str, str], int] = {}
        self.violations = 0
        self.errors = 0

    def install(self) -> None:
        world, p, ctx = self.world, self.p, self.ctx
        self.cluster.on_cut = self._cut
        self.cluster.start()
        self.group.is_up = lambda member: world.node(member).up
        for member in self.group.members:
            self.consumers[member] = _Consumer(self, world.node(member))
        for i, name in enumerate(dict.fromkeys(world.workload.producers)):
            self.producers[name] = _Producer(self, world.node(name), i)
        self.group.start()
        world.reporters.append(self._figures)
        ctx.call_later(p.lag_interval, self._sample)
        world.workload.start(self._emit)

    def _emit(self, producer: str, created_at: float, size: float, consumer: int) -> simpy.Event | None:
        return self.producers[producer].emit(created_at, size)

    # -- losses the cluster reports ----------------------------------------------------------------------
    def _cut(self, records: list[Record], reason: str) -> None:
        """Records cut from a leader's log: lost, unless their producer still retries them (an election)."""
        ledger = self.ctx.ledger
        retrying = reason != "retention"
        for r in records:
            if retrying:
                producer = self.producers.get(r.producer.split("#")[0])
                if producer is not None and r.row in producer.unacked:
                    continue
            ledger.lose(r.row, reason)

    # -- figures -------------------------------------------------------------------------------------
    def _sample(self, event: Any) -> None:
        ctx = self.ctx
        if ctx.env.now <= self.world.workload.stop_at:
            ctx.call_later(self.p.lag_interval, self._sample)
        committed = self.group.committed
        total = 0
        for part in self.cluster.partitions:
            lag = max(0, part.hw - committed.get(part.index, 0))
            self.partition_lag.append(float(lag))
            total += lag
        self.lag.append(float(total))

    def _figures(self) -> dict[str, float | list[float]]:
        stats = self.cluster.statistics()
        return {
            "produce_latency": self.latency,
            "consumer_lag": self.lag,
            "partition_lag": self.partition_lag,
            "ordering_violations": float(self.violations),
            "replication_bytes": stats.replication_bytes,
            "under_replicated_s": stats.under_replicated_s,
            "elections": float(stats.elections),
            "unclean_elections": float(stats.unclean_elections),
            "rebalances": float(self.group.rebalances),
            "produce_errors": float(self.errors),
        }


class _Producer:
    """One producer node's client: keys, partitioner, batches, in-flight limit, acks and retries."""

    def __init__(self, run: _LogRun, node: Node, index: int) -> None:
        self.run = run
        self.ctx: SimContext = run.ctx
        self.node = node
        p = run.p
        self.outbox = Outbox(run.ctx, node, self._accept)
        self.partitions = p.partitions
        self.keys = run.ctx.rng.stream(f"log:keys:{node.id}")
        self.key_names = [node.id] if p.keys == "producer" else [f"k{i}" for i in range(p.key_count)]
        self.key_partition = [zlib.crc32(k.encode()) % p.partitions for k in self.key_names]
        weights = [1.0 / (i + 1) ** p.key_skew for i in range(p.key_count)]
        total = sum(weights)
        acc, self.cdf = 0.0, []
        for w in weights:
            acc += w
            self.cdf.append(acc / total)
        self.next_partition = index % p.partitions
        self.queues: list[deque[Batch]] = [deque() for _ in range(p.partitions)]
        self.in_flight = [0] * p.partitions
        self.sequences = [0] * p.partitions
        self.pending: dict[int, Batch] = {}
        self.unacked: set[int] = set()
        """Rows of records sent with acks and not yet acknowledged (still retried)."""
        self.batch_ids = 0
        self._key = ""
        self._partition = 0
        self._linger_cb = self._linger
        node.on("produce_ack", self._on_answer)
        node.on_crash.append(self._crashed)

    @property
    def identity(self) -> str:
        """The producer's identity for idempotence: a restarted producer is a new one."""
        return f"{self.node.id}#{self.node.crashes}"

    def emit(self, created_at: float, size: float) -> simpy.Event | None:
        p = self.run.p
        if p.keys == "none":
            part = self.next_partition
            self.next_partition = (part + 1) % self.partitions
            self._key, self._partition = "", part
            return self.outbox.offer("data", p.group, p.topic, created_at, size)
        if p.keys == "producer":
            k = 0
        elif p.keys == "uniform":
            k = self.keys.index(p.key_count)
        else:
            k = min(bisect.bisect_right(self.cdf, self.keys.random()), p.key_count - 1)
        self._key, self._partition = self.key_names[k], self.key_partition[k]
        return self.outbox.offer("data", p.group, f"{p.topic}/{self._key}", created_at, size)

    def _accept(self, msg: Message) -> None:
        """The outbox's record: into its partition's open batch."""
        part = self._partition
        record = Record(msg.ob, msg.id, self.identity, self._key, msg.created_at, msg.size)  # type: ignore[arg-type]
        queue = self.queues[part]
        batch = queue[-1] if queue and not queue[-1].closed else None
        if batch is None:
            self.batch_ids += 1
            batch = Batch(self.batch_ids, part, self.identity)
            queue.append(batch)
            linger = self.run.p.linger
            if linger > 0:
                self.ctx.call_later(linger, self._linger_cb, batch)
            else:
                batch.ready = True
        batch.records.append(record)
        batch.bytes += record.size
        if batch.bytes >= self.run.p.batch_size:
            batch.ready = batch.closed = True  # full: the next record opens a new batch
        self._drain(part)

    def _linger(self, event: Any) -> None:
        batch: Batch = event._value
        batch.ready = True
        self._drain(batch.partition)

    def _drain(self, part: int) -> None:
        queue = self.queues[part]
        limit = self.run.p.max_in_flight
        while queue and queue[0].ready and self.in_flight[part] < limit and self.node.up:
            batch = queue.popleft()
            batch.closed = True
            if self.run.idempotent:
                batch.first_seq = self.sequences[part]
                self.sequences[part] += len(batch.records)
                for i, r in enumerate(batch.records):
                    r.seq = batch.first_seq + i
            if self.run.acks != 0:
                self.in_flight[part] += 1
                self.pending[batch.id] = batch
                self.ctx.pending += 1
                self.unacked.update(r.row for r in batch.records)
            self._send(batch)

    def _send(self, batch: Batch) -> None:
        run, ctx = self.run, self.ctx
        batch.attempt += 1
        rows = tuple(r.row for r in batch.records)
        attempts = ctx.ledger.attempts
        for row in rows:
            attempts[row] += 1
        if batch.attempt > 1:
            ctx.ledger.count("retries")
        leader = run.cluster.leader(batch.partition)
        reliable = run.acks != 0
        if leader is None:  # offline: no leader to send to
            for row in rows:
                if reliable:
                    ctx.ledger.note(row, "node_down")
                else:
                    ctx.ledger.lose(row, "node_down")
        else:
            first = batch.records[0]
            msg = Message(
                first.msg_id,
                "data",
                self.node.id,
                leader,
                batch.bytes,
                first.created_at,
                rows,
                payload=batch,
                tag=batch.id,
                attempt=batch.attempt,
            )
            msg.reliable = reliable
            self.node.send(msg)
        if reliable:
            ctx.call_later(
                self.run.delivery.timeout(batch.attempt),
                self._expire,
                (batch, batch.attempt, self.node.crashes),
            )

    def _expire(self, event: Any) -> None:
        batch: Batch = event._value[0]
        attempt, crashes = event._value[1:]
        if self.pending.get(batch.id) is not batch or batch.attempt != attempt:
            return
        if crashes != self.node.crashes:
            return  # the crash gave it up
        self._retry(batch)

    def _retry(self, batch: Batch) -> None:
        if batch.attempt >= self.run.max_attempts:
            ledger = self.ctx.ledger
            self._settle(batch)
            for r in batch.records:
                ledger.lose(r.row, ledger.last_reason(r.row) or "timeout")
            return
        if self.node.paused:
            self.node.on_resume.append(lambda: self._retry(batch))
            return
        self._send(batch)

    def _settle(self, batch: Batch) -> None:
        del self.pending[batch.id]
        self.ctx.pending -= 1
        self.in_flight[batch.partition] -= 1
        self.unacked.difference_update(r.row for r in batch.records)

    def _on_answer(self, msg: Message) -> None:
        batch = self.pending.get(msg.tag)
        if batch is None or msg.attempt != batch.attempt:
            return  # an answer to an earlier attempt, or after the batch was settled
        error = msg.payload
        if not error:
            self._settle(batch)
            now = self.ctx.env.now
            self.run.latency.extend(now - r.created_at for r in batch.records)
            self._drain(batch.partition)
            return
        self.run.errors += 1
        if error == OUT_OF_ORDER and batch.first_seq == min(
            b.first_seq for b in self.pending.values() if b.partition == batch.partition
        ):
            batch.reset = True  # the leader lost this producer's earlier records: start over from this one
        if error == NOT_LEADER:
            for r in batch.records:
                self.ctx.ledger.note(r.row, "node_down")
        # retried when the attempt's request timeout expires, as a request without an answer

    def _crashed(self) -> None:
        """The producer's memory is gone: unsent and unacknowledged records are lost (``crash_lost``); a
        record its leader has will still reach the consumers (the loss turns into a delivery)."""
        ledger = self.ctx.ledger
        for queue in self.queues:
            for batch in queue:
                for r in batch.records:
                    ledger.lose(r.row, "crash_lost")
            queue.clear()
        for batch in list(self.pending.values()):
            self._settle(batch)
            for r in batch.records:
                ledger.lose(r.row, "crash_lost")
        self.in_flight = [0] * self.partitions
        self.sequences = [0] * self.partitions


class _Consumer:
    """One group member's client: fetch, hand to the workers, process, commit."""

    def __init__(self, run: _LogRun, node: Node) -> None:
        self.run = run
        self.ctx = run.ctx
        self.node = node
        self.generation = 0
        self.parts: tuple[int, ...] = ()
        self.position: dict[int, int] = {}
        self.held: dict[int, dict[int, int]] = {}
        """Per partition, offset -> row of the records handed to the workers and not yet processed."""
        self.done: dict[int, int] = {}
        """Per partition, the end of the last fetch whose records were all processed (after-processing
        commits)."""
        self.queued: dict[int, deque[Message]] = {}
        """Per partition, the records fetched and not yet handed to the workers: a partition's records are
        processed one at a time, in order (as a consumer's poll loop does), partitions in parallel."""
        self.busy: set[int] = set()
        """Partitions with a record at the workers."""
        self._handing = False
        self.serial = 0
        self.waiting: dict[int, int] = {}
        """Per partition, the serial of the fetch awaiting its answer."""
        run.group.assign[node.id] = self._assign
        run.group.revoke[node.id] = self._revoke
        node.on("log_records", self._on_records)
        node.on("data", self._process)
        node.on_crash.append(self._crashed)
        node.on_recover.append(lambda: run.group.joined(node.id))
        if run.commit == "periodic":
            self.ctx.call_later(run.p.commit_interval, self._commit_tick)

    # -- assignment ------------------------------------------------------------------------------------
    def _assign(self, generation: int, parts: tuple[int, ...]) -> None:
        if not self.node.up:
            return
        self.generation, self.parts = generation, parts
        self.position, self.held, self.done, self.waiting = {}, {}, {}, {}
        self.queued, self.busy = {}, set()
        group = self.run.group
        for part in parts:
            offset = group.committed.get(part)
            if offset is None:
                offset = self._start(part)
            self.position[part] = self.done[part] = offset
            self.held[part] = {}
            self.queued[part] = deque()
            self._fetch(part)

    def _start(self, part: int) -> int:
        """Where a partition without a committed offset starts (``start``); records it skips are lost."""
        start, cluster = self.run.p.start, self.run.cluster
        if start == "earliest":
            return cluster.log_start(part)
        offset = cluster.high_watermark(part) if start == "latest" else int(start)
        for r in cluster.records(part, 0, offset):
            self.ctx.ledger.lose(r.row, "skipped")
        return offset

    def _revoke(self) -> None:
        """A rebalance takes the partitions away: commit up to the first record not processed; the records
        in hand are dropped (their holder reads them again from there)."""
        group = self.run.group
        for part in self.parts:
            held = self.held[part]
            group.commit(self.node.id, self.generation, part, min(held) if held else self.position[part])

    def _commit_all(self) -> None:
        group = self.run.group
        source = self.position if self.run.commit == "periodic" else self.done
        for part in self.parts:
            group.commit(self.node.id, self.generation, part, source[part])

    def _commit_tick(self, event: Any) -> None:
        self.ctx.call_later(self.run.p.commit_interval, self._commit_tick)
        if self.node.up and not self.node.paused:
            self._commit_all()

    # -- fetching --------------------------------------------------------------------------------------
    def _fetch(self, part: int) -> None:
        if not self.node.up or part not in self.position:
            return
        ctx, run = self.ctx, self.run
        leader = run.cluster.leader(part)
        self.serial += 1
        self.waiting[part] = self.serial
        if leader is not None:
            self.node.send(
                Message(
                    ctx.next_control_id(),
                    "log_fetch",
                    self.node.id,
                    leader,
                    run.delivery.ack_size,
                    ctx.env.now,
                    payload=(part, self.position[part], self.serial),
                )
            )
        # a fetch or its answer lost, or no leader: ask again after the request timeout
        ctx.call_later(
            max(run.delivery.ack_timeout, run.p.fetch_interval),
            self._fetch_again,
            (part, self.serial, self.generation),
        )

    def _fetch_again(self, event: Any) -> None:
        part, serial, generation = event._value
        if generation == self.generation and self.waiting.get(part) == serial:
            self._fetch(part)

    def _on_records(self, msg: Message) -> None:
        part, position, records, error, serial = msg.payload
        if self.waiting.get(part) != serial:
            return  # an answer to an earlier fetch or generation
        self.serial += 1
        self.waiting[part] = self.serial
        later = (part, self.serial, self.generation)
        if error == OUT_OF_RANGE:
            if position < self.position[part]:  # past the log's end (an unclean election cut it): reset
                position = self._start(part)
            # else behind the log start: the records retention removed are lost already
            self.position[part] = self.done[part] = position
            self._fetch(part)
            return
        if error == NOT_LEADER or not records:
            self.ctx.call_later(self.run.p.fetch_interval, self._fetch_again, later)
            return
        node, held, generation = self.node, self.held[part], self.generation
        handed = []
        for offset, r in enumerate(records, position):
            held[offset] = r.row
            local = Message(r.msg_id, "data", node.id, node.id, r.size, r.created_at, r.row)
            local.payload = (part, offset, generation, r)
            local.reliable = True  # a crash drops it from the inbox without losing the record
            handed.append(local)
        self.position[part] = position + len(records)
        self.queued[part].extend(handed)
        self._hand(part)

    def _hand(self, part: int) -> None:
        """Hand the partition's next record to the workers (a loop, not a recursion, for workers that
        process at once, without a service time)."""
        if self._handing:
            return
        self._handing = True
        queue, busy, node = self.queued[part], self.busy, self.node
        while queue and part not in busy:
            busy.add(part)
            node.receive(queue.popleft())
        self._handing = False

    # -- processing ------------------------------------------------------------------------------------
    def _process(self, msg: Message) -> None:
        part, offset, generation, record = msg.payload
        if generation != self.generation:
            return  # fetched before a rebalance: dropped, read again by the partition's holder
        run, ctx = self.run, self.ctx
        ledger = ctx.ledger
        fresh = True
        if run.dedup is not None:
            if record.row in run.dedup:
                ledger.count("deduplicated")
                fresh = False
            else:
                run.dedup.add(record.row)
        if fresh and ledger.deliver(record.row, ctx.env.now, self.node.id) and record.key:
            order_key = (record.producer.split("#")[0], record.key)
            latest = run.order.get(order_key, -1)
            if record.msg_id < latest:
                run.violations += 1
            else:
                run.order[order_key] = record.msg_id
        held = self.held.get(part)
        if held is None:
            return
        held.pop(offset, None)
        self.busy.discard(part)
        if self.queued[part]:
            self._hand(part)
        elif not held:  # every record of the fetch processed: commit (after processing), fetch the next ones
            if run.commit == "after_processing":
                self.done[part] = self.position[part]
                run.group.commit(self.node.id, generation, part, self.done[part])
            self._fetch(part)

    def _crashed(self) -> None:
        """Records fetched and committed but not processed will never be read again: lost
        (``committed_unprocessed``). The rest is read again by the partition's next holder."""
        ledger, committed = self.ctx.ledger, self.run.group.committed
        for part, held in self.held.items():
            upto = committed.get(part, -1)
            for offset, row in held.items():
                if offset < upto:
                    ledger.lose(row, "committed_unprocessed")
        self.parts, self.position, self.held, self.done, self.waiting = (), {}, {}, {}, {}
        self.queued, self.busy = {}, set()
        self.generation = -1
        self.run.group.crashed(self.node.id)
