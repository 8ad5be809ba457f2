"""A log partition's data: records, producers' batches, one broker's replica of the partition, and the
partition's state (replicas, leader, in-sync set, high watermark); :mod:`sim.model.log.cluster` runs the
protocol over them."""

from __future__ import annotations

from collections.abc import Sequence

from sim.core.message import Message

__all__ = ["Batch", "Partition", "Record", "Replica"]


class Record:
    """One produced record: its ledger row, who produced it and when, its key and size (bytes)."""

    __slots__ = ("created_at", "key", "msg_id", "producer", "row", "seq", "size")

    def __init__(
        self, row: int, msg_id: int, producer: str, key: str, created_at: float, size: float
    ) -> None:
        self.row = row
        self.msg_id = msg_id
        self.producer = producer
        self.key = key
        self.created_at = created_at
        self.size = size
        self.seq = -1
        """Its sequence number from an idempotent producer (-1 otherwise)."""


class Batch:
    """Records for one partition sent together; ``producer`` is the producer's identity (its node and
    incarnation), ``first_seq`` the first record's sequence number (idempotence), ``attempt`` 1-based."""

    __slots__ = (
        "attempt",
        "bytes",
        "closed",
        "first_seq",
        "id",
        "partition",
        "producer",
        "ready",
        "records",
        "reset",
    )

    def __init__(self, id: int, partition: int, producer: str) -> None:
        self.id = id
        self.partition = partition
        self.producer = producer
        self.records: list[Record] = []
        self.bytes = 0.0
        self.first_seq = -1
        self.attempt = 0
        self.ready = False
        """May be sent: full, or ``linger`` has passed (or no linger)."""
        self.closed = False
        """Takes no more records: full, or sent."""
        self.reset = False
        """An idempotent producer's resend of its oldest batch after the leader lost its earlier ones."""


class Replica:
    """One broker's copy of a partition: records from offset ``start`` on."""

    __slots__ = ("bytes", "log", "seqs", "start")

    def __init__(self) -> None:
        self.log: list[Record] = []
        self.start = 0
        self.bytes = 0.0
        self.seqs: dict[str, int] = {}
        """Per producer identity, the last sequence number appended (idempotence)."""

    @property
    def end(self) -> int:
        """The log end offset: the next record's offset."""
        return self.start + len(self.log)

    def append(self, records: Sequence[Record]) -> None:
        self.log.extend(records)
        self.bytes += sum(r.size for r in records)
        if records and records[0].seq >= 0:
            for r in records:
                self.seqs[r.producer] = r.seq

    def rebuild_seqs(self) -> None:
        """The producers' last sequence numbers from the records left (after a truncation); a producer
        whose records are all gone is forgotten, and its next batch taken as a fresh start."""
        self.seqs = {r.producer: r.seq for r in self.log if r.seq >= 0}

    def truncate(self, offset: int) -> list[Record]:
        """Drop the records from ``offset`` on; returns them."""
        keep = max(0, offset - self.start)
        cut = self.log[keep:]
        if cut:
            del self.log[keep:]
            self.bytes -= sum(r.size for r in cut)
        return cut

    def trim(self, count: int) -> list[Record]:
        """Drop the ``count`` oldest records (retention); returns them."""
        cut = self.log[:count]
        del self.log[:count]
        self.start += len(cut)
        self.bytes -= sum(r.size for r in cut)
        if not self.log:
            self.bytes = 0.0
        return cut

    def reset(self, offset: int) -> None:
        """Start over, empty, at ``offset`` (a follower behind its leader's log start)."""
        self.log.clear()
        self.start = offset
        self.bytes = 0.0


class Partition:
    """A partition's replicas, leader, in-sync set and high watermark."""

    __slots__ = (
        "caught_up",
        "epoch",
        "epoch_start",
        "hw",
        "index",
        "isr",
        "last_fetch",
        "leader",
        "leo",
        "logs",
        "replicas",
        "under_since",
        "waiting",
    )

    def __init__(self, index: int, replicas: tuple[str, ...]) -> None:
        self.index = index
        self.replicas = replicas
        self.logs = {b: Replica() for b in replicas}
        self.leader: str | None = replicas[0]
        self.epoch = 0
        self.epoch_start = 0
        """The leader's log end when it was elected: a follower rejoins the ISR only once it has that much
        (Kafka's rule; here every replica is cut back to the new leader's end at an election, so the high
        watermark rule alone nearly always decides)."""
        self.isr = set(replicas)
        self.hw = 0
        self.leo: dict[str, int] = dict.fromkeys(replicas, 0)
        """The leader's view of each follower's log end (its last fetch offset)."""
        self.caught_up: dict[str, float] = dict.fromkeys(replicas, 0.0)
        self.last_fetch: dict[str, tuple[float, int]] = {}
        self.waiting: list[tuple[int, Message]] = []
        """``acks = "all"`` batches appended but not yet committed: (log end after the batch, the request)."""
        self.under_since: float | None = None
