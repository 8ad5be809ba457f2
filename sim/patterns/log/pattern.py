"""The log pattern's options, their defaults from the delivery guarantee, and one run's wiring and figures
(the clients: :mod:`sim.patterns.log.producer`, :mod:`sim.patterns.log.consumer`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import simpy

from sim.core.errors import SimError
from sim.core.units import parse_count, parse_duration, parse_size
from sim.model.log.cluster import ACKS_ALL, Cluster, LogConfig
from sim.model.log.group import Group
from sim.model.log.partition import Record
from sim.patterns.base import Measure, Operation, WorldView, check_keys
from sim.patterns.log.consumer import Consumer
from sim.patterns.log.producer import Producer

__all__ = ["Log", "LogRun"]

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
        idempotent. The replication factor defaults to the brokers, at most 3. An idempotent producer needs
        acks (1 or "all")."""
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
        if idempotent and acks == 0:  # a lost batch would strand every later one (Kafka requires "all")
            raise SimError(
                "log.acks",
                0,
                '1 or "all" with an idempotent producer (log.idempotent, or guarantee effectively_once)',
            )
        commit = self.commit if self.commit is not None else ("after_processing" if reliable else "periodic")
        return rf, acks, isr, idempotent, commit

    def install(self, world: WorldView) -> None:
        LogRun(self, world).install()


class LogRun:
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
        self.cluster = Cluster(self.ctx, config, {b: world.broker_host(b, "log.brokers") for b in ids})
        self.group = Group(
            self.ctx, pattern.group, world.workload.consumers, pattern.partitions, pattern.session_timeout
        )
        self.delivery = world.delivery
        self.max_attempts = world.delivery.max_attempts if acks != 0 and world.delivery.reliable else 1
        self.dedup: set[int] | None = set() if world.delivery.guarantee == "effectively_once" else None
        self.producers: dict[str, Producer] = {}
        self.consumers: dict[str, Consumer] = {}
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
            self.consumers[member] = Consumer(self, world.node(member))
        for i, name in enumerate(dict.fromkeys(world.workload.producers)):
            self.producers[name] = Producer(self, world.node(name), i)
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
