"""The log's producer client: keys, the partitioner, batches (``linger``, ``batch_size``), the in-flight
limit, acknowledgements, retries and idempotence."""

from __future__ import annotations

import bisect
import zlib
from collections import deque
from typing import TYPE_CHECKING, Any

import simpy

from sim.core.context import SimContext
from sim.core.message import Message
from sim.model.log.cluster import NOT_LEADER, OUT_OF_ORDER
from sim.model.log.partition import Batch, Record
from sim.model.node import Node
from sim.patterns.base import Outbox

if TYPE_CHECKING:
    from sim.patterns.log.pattern import LogRun

__all__ = ["Producer"]


class Producer:
    """One producer node's client: keys, partitioner, batches, in-flight limit, acks and retries."""

    def __init__(self, run: LogRun, node: Node, index: int) -> None:
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
