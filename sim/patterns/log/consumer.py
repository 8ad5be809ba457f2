"""The log's consumer client, one group member: fetch from the leaders, hand each partition's records to the
node's workers in order, commit, and what a crash leaves behind."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from sim.core.message import Message
from sim.model.log.cluster import NOT_LEADER, OUT_OF_RANGE
from sim.model.node import Node

if TYPE_CHECKING:
    from sim.patterns.log.pattern import LogRun

__all__ = ["Consumer"]


class Consumer:
    """One group member's client: fetch, hand to the workers, process, commit."""

    def __init__(self, run: LogRun, node: Node) -> None:
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
        self.sweep: dict[int, int] = {}
        """Per partition, a start offset the log had not reached: what is written below it is skipped."""
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
        self.queued, self.busy, self.sweep = {}, set(), {}
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
        self._skip(part, offset)
        if start != "latest":
            self.sweep[part] = offset  # records below it may still be written: skipped once they are
        return offset

    def _skip(self, part: int, offset: int) -> None:
        for r in self.run.cluster.records(part, 0, offset):
            self.ctx.ledger.lose(r.row, "skipped")

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
            # past the log's end (an unclean election cut it, or ``start`` is an offset not yet written):
            # reset as ``start`` says; behind the log start: the records retention removed are lost already
            if position < self.position[part]:
                position = self._start(part)
            wait = position == self.position[part]  # an offset still ahead of the log: ask again later
            self.position[part] = self.done[part] = position
            if wait:
                self.ctx.call_later(self.run.p.fetch_interval, self._fetch_again, later)
            else:
                self._fetch(part)
            return
        if part in self.sweep and not error:  # the log reaches the start offset: all below it is written
            self._skip(part, self.sweep.pop(part))
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
        self.queued, self.busy, self.sweep = {}, set(), {}
        self.generation = -1
        self.run.group.crashed(self.node.id)
