"""The log cluster on a hand-made star (every host 2 ms from every other): exact times of acknowledgements,
the ISR's shrinking, elections and what they cut."""

from __future__ import annotations

import networkx as nx
import pytest
from conftest import wire

from sim.core.context import SimContext
from sim.core.distributions import Constant
from sim.core.message import Message
from sim.model.log.cluster import ACKS_ALL, NOT_ENOUGH_REPLICAS, Cluster, LogConfig
from sim.model.log.partition import Batch, Record
from sim.model.node import Node

BROKERS = ("b0", "b1", "b2")


def star() -> nx.Graph:
    g = nx.star_graph(["s", "p", "c", *BROKERS])
    for u, v in g.edges:
        g.edges[u, v].update(latency=Constant(0.001), loss=0.0, bandwidth=float("inf"))
    for n in g.nodes:
        g.nodes[n].update(role="host", servers=1, service=None)
    return g


class Setup:
    def __init__(self, ctx: SimContext, **config: object) -> None:
        self.ctx = ctx
        _, self.nodes, _ = wire(ctx, star())
        settings = {"replication_factor": 3, "fetch_interval": 0.01, "replica_lag_max": 0.03, **config}
        self.cluster = Cluster(ctx, LogConfig(**settings), {b: self.nodes[b] for b in BROKERS})  # type: ignore[arg-type]
        self.cut: list[tuple[float, list[int], str]] = []
        self.cluster.on_cut = lambda records, why: self.cut.append(
            (ctx.env.now, [r.row for r in records], why)
        )
        self.cluster.start()
        self.answers: list[tuple[float, int, str]] = []
        self.nodes["p"].on("produce_ack", lambda m: self.answers.append((ctx.env.now, m.tag, m.payload)))
        self.batches = 0

    def produce(self, partition: int = 0, records: int = 1, first_seq: int = -1) -> Batch:
        ctx = self.ctx
        self.batches += 1
        batch = Batch(self.batches, partition, "p#0")
        batch.first_seq = first_seq
        for i in range(records):
            row = ctx.ledger.open(ctx.next_id(), "data", "p", "g", "t", ctx.env.now, 100.0)
            record = Record(row, ctx.ledger.msg_id[row], "p#0", "", ctx.env.now, 100.0)
            record.seq = first_seq + i if first_seq >= 0 else -1
            batch.records.append(record)
        batch.bytes = 100.0 * records
        self.send(batch)
        return batch

    def send(self, batch: Batch) -> None:
        """The batch's next attempt, to the partition's leader now."""
        ctx = self.ctx
        batch.attempt += 1
        partition = batch.partition
        leader = self.cluster.leader(partition)
        assert leader is not None
        rows = tuple(r.row for r in batch.records)
        msg = Message(
            batch.records[0].msg_id, "data", "p", leader, batch.bytes, ctx.env.now, rows, payload=batch
        )
        msg.tag, msg.attempt = batch.id, batch.attempt
        self.nodes["p"].send(msg)

    def at(self, t: float, action: object) -> None:
        self.ctx.call_later(t - self.ctx.env.now, lambda _: action())  # type: ignore[operator]

    def node(self, name: str) -> Node:
        return self.nodes[name]


@pytest.mark.parametrize(("acks", "answered"), [(1, 0.004), (ACKS_ALL, 0.024)])
def test_an_ack_comes_on_the_append_or_once_the_high_watermark_passes(
    ctx: SimContext, acks: int, answered: float
) -> None:
    s = Setup(ctx, acks=acks)
    s.produce()
    ctx.env.run(until=0.1)
    # appended at 2 ms; followers fetch at 10 ms (the record reaches them at 14 ms) and at 20 ms, when the
    # leader learns (22 ms) that both have it: the high watermark passes, the answer arrives at 24 ms
    assert [(round(t, 9), tag, err) for t, tag, err in s.answers] == [(answered, 1, "")]
    part = s.cluster.partitions[0]
    assert part.hw == 1 and part.isr == set(BROKERS)
    assert [part.logs[b].end for b in BROKERS] == [1, 1, 1]
    assert s.cluster.statistics().replication_bytes == 200.0


def test_a_dead_follower_holds_the_high_watermark_until_it_leaves_the_isr(ctx: SimContext) -> None:
    s = Setup(ctx, acks=ACKS_ALL, min_insync_replicas=2)
    s.at(0.001, s.node("b1").crash)
    s.produce()
    ctx.env.run(until=0.2)
    # b1 never fetches: caught up at 0 s, out of the ISR at the leader's first tick after 30 ms (40 ms)
    assert [(round(t, 9), err) for t, _, err in s.answers] == [(0.042, "")]
    part = s.cluster.partitions[0]
    assert part.isr == {"b0", "b2"}
    assert s.cluster.statistics().under_replicated_s == pytest.approx(0.2 - 0.04)


def test_too_few_in_sync_replicas_refuse_a_batch(ctx: SimContext) -> None:
    s = Setup(ctx, acks=ACKS_ALL, min_insync_replicas=3)
    s.at(0.001, s.node("b1").crash)
    s.at(0.05, s.produce)
    ctx.env.run(until=0.2)
    assert [(round(t, 9), err) for t, _, err in s.answers] == [(0.054, NOT_ENOUGH_REPLICAS)]
    assert s.cluster.partitions[0].logs["b0"].end == 0  # not appended


def test_a_clean_election_cuts_what_no_follower_fetched(ctx: SimContext) -> None:
    s = Setup(ctx, acks=1, election_delay=0.05)
    s.produce()  # fetched by the followers at 10 ms
    s.at(0.015, lambda: s.produce(records=2))  # appended at 17 ms, fetched at 20 ms...
    s.at(0.019, s.node("b0").crash)  # ... but the leader is gone by then
    ctx.env.run(until=0.2)
    cluster, part = s.cluster, s.cluster.partitions[0]
    assert cluster.leader(0) == "b1" and part.epoch == 1
    assert s.cut == [(pytest.approx(0.069), [1, 2], "unreplicated")]
    assert [part.logs[b].end for b in BROKERS] == [1, 1, 1]  # b0's log cut too, though it is down
    assert cluster.statistics().elections == 1 and cluster.statistics().unclean_elections == 0


@pytest.mark.parametrize("unclean", [False, True])
def test_without_an_in_sync_replica_the_partition_waits_or_elects_an_unclean_leader(
    ctx: SimContext, unclean: bool
) -> None:
    s = Setup(ctx, acks=1, election_delay=0.05, replication_factor=2, unclean_leader_election=unclean)
    s.at(0.001, s.node("b1").crash)  # the only follower: out of the ISR at 40 ms
    s.at(0.05, s.produce)
    s.at(0.06, s.node("b0").crash)
    s.at(0.08, s.node("b1").recover)
    ctx.env.run(until=0.3)
    cluster = s.cluster
    if unclean:
        assert cluster.leader(0) == "b1" and cluster.statistics().unclean_elections == 1
        assert s.cut == [(pytest.approx(0.11), [0], "unclean_election")]
    else:
        assert cluster.leader(0) is None and s.cut == []  # offline until b0 is back
        s.node("b0").recover()
        assert cluster.leader(0) == "b0" and cluster.partitions[0].logs["b0"].end == 1


def test_retention_deletes_old_records_and_reports_the_leaders(ctx: SimContext) -> None:
    s = Setup(ctx, acks=1, retention=0.05)
    s.produce()
    s.at(0.03, s.produce)
    ctx.env.run(until=0.2)
    part = s.cluster.partitions[0]
    assert [part.logs[b].start for b in BROKERS] == [2, 2, 2]
    assert [(round(t, 9), rows, why) for t, rows, why in s.cut] == [
        (0.06, [0], "retention"),
        (0.09, [1], "retention"),
    ]


def test_retention_by_size_keeps_the_newest_records_within_the_bound(ctx: SimContext) -> None:
    s = Setup(ctx, acks=1, retention_bytes=250.0)
    s.produce(records=2)
    s.at(0.03, lambda: s.produce(records=2))
    ctx.env.run(until=0.1)
    part = s.cluster.partitions[0]
    assert [(part.logs[b].start, part.logs[b].end, part.logs[b].bytes) for b in BROKERS] == [
        (2, 4, 200.0)
    ] * 3
    assert [(rows, why) for _, rows, why in s.cut] == [([0, 1], "retention")]


def test_a_retry_of_an_uncommitted_batch_is_answered_only_once_the_batch_is_committed(
    ctx: SimContext,
) -> None:
    s = Setup(ctx, acks=ACKS_ALL, min_insync_replicas=2)
    batch = s.produce(first_seq=0)  # appended at 2 ms; the followers' first fetch is at 10 ms
    s.at(0.004, lambda: s.send(batch))  # attempt 2 reaches the leader at 6 ms: already in its log
    s.at(0.0075, s.node("b0").crash)  # before any follower fetched it
    s.at(0.12, lambda: s.send(batch))  # attempt 3, to the new leader
    ctx.env.run(until=0.2)
    # no answer to attempt 2 (it would have been a success for a record the election then cut); b1 leads
    # from 107.5 ms without it, attempt 3 is appended at 122 ms, b2 fetches it at 130 ms (has it at 134 ms)
    # and tells b1 with its next fetch (142 ms): committed, answered at 144 ms
    assert [(round(t, 9), rows, why) for t, rows, why in s.cut] == [(0.1075, [0], "unreplicated")]
    assert [(round(t, 9), tag, err) for t, tag, err in s.answers] == [(0.144, 1, "")]
    part = s.cluster.partitions[0]
    assert s.cluster.leader(0) == "b1" and part.hw == 1 and part.logs["b1"].log == batch.records


def test_a_retry_of_a_committed_batch_is_answered_at_once(ctx: SimContext) -> None:
    s = Setup(ctx, acks=ACKS_ALL, min_insync_replicas=2)
    batch = s.produce(first_seq=0)  # committed at 22 ms (see above)
    s.at(0.03, lambda: s.send(batch))
    ctx.env.run(until=0.1)
    assert [(round(t, 9), err) for t, _, err in s.answers] == [(0.024, ""), (0.034, "")]
    assert s.cluster.partitions[0].logs["b0"].end == 1  # appended once


def test_an_election_comes_election_delay_after_the_leaders_last_crash(ctx: SimContext) -> None:
    s = Setup(ctx, acks=1, election_delay=0.05)
    s.at(0.01, s.node("b0").crash)  # its timer would elect at 60 ms...
    s.at(0.03, s.node("b0").recover)  # ... but it is back before: it keeps leading
    s.at(0.04, s.node("b0").crash)  # this crash's timer elects at 90 ms
    elected: list[tuple[float, str | None]] = []
    for t in (0.065, 0.0899, 0.0901):
        s.at(t, lambda: elected.append((round(ctx.env.now, 9), s.cluster.leader(0))))
    ctx.env.run(until=0.2)
    assert elected == [(0.065, "b0"), (0.0899, "b0"), (0.0901, "b1")]
    assert s.cluster.statistics().elections == 1


def test_a_follower_rejoins_the_isr_under_steady_load(ctx: SimContext) -> None:
    s = Setup(ctx, acks=1, replication_factor=2, fetch_interval=0.005)

    def steady(_: object) -> None:  # 2000 records/s: several appended between two fetches
        s.produce()
        ctx.call_later(0.0005, steady)

    ctx.call_later(0.0005, steady)
    s.at(0.1, s.node("b1").crash)
    s.at(0.3, s.node("b1").recover)
    ctx.env.run(until=1.0)
    # b1 leaves the ISR at the leader's tick at 125 ms (last caught up at 92 ms); back at 300 ms, its fetch
    # sent then brings it everything, the one sent at 305 ms shows it caught up (from then on the high
    # watermark waits for it), and the one sent at 310 ms reaches the high watermark: in again at 312 ms
    part = s.cluster.partitions[0]
    assert part.isr == {"b0", "b1"}
    assert s.cluster.statistics().under_replicated_s == pytest.approx(0.312 - 0.125)


def test_a_retry_whose_head_only_reached_the_new_leader_appends_its_tail(ctx: SimContext) -> None:
    """A follower's fetch can end inside a batch (here 2 records per fetch, a batch of 5): b1 has the
    batch's first 2 records when b0 crashes and is elected; the producer's retry must append the missing 3,
    not be taken for a duplicate and acknowledged with them in no log."""
    s = Setup(ctx, acks=ACKS_ALL, replication_factor=2, max_fetch_records=2)
    batch = s.produce(records=5, first_seq=0)  # on b0 at 2 ms; b1's fetch at 10 ms takes records 0 and 1
    s.at(0.015, s.node("b0").crash)
    s.at(0.12, lambda: s.send(batch))  # attempt 2, to b1 (elected at 115 ms)
    ctx.env.run(until=0.2)
    assert [(round(t, 9), why) for t, _, why in s.cut] == [(0.115, "unreplicated")]
    part = s.cluster.partitions[0]
    assert s.cluster.leader(0) == "b1" and part.logs["b1"].log == batch.records and part.hw == 5
    assert [(round(t, 9), tag, err) for t, tag, err in s.answers] == [(0.124, 1, "")]


def test_a_dead_ex_leader_does_not_hold_the_high_watermark_after_the_election(ctx: SimContext) -> None:
    """After an election only the in-sync replicas count as caught up: the crashed ex-leader (out of the
    ISR) must not hold the high watermark for replica_lag_max (100 ms here) as a caught-up follower."""
    s = Setup(ctx, acks=ACKS_ALL, min_insync_replicas=2, replica_lag_max=0.1)
    batch = s.produce(first_seq=0)
    s.at(0.0075, s.node("b0").crash)  # before any follower fetched the batch
    s.at(0.12, lambda: s.send(batch))  # to b1, elected at 107.5 ms; b2 has it at 134 ms, b1 knows at 142 ms
    ctx.env.run(until=0.3)
    assert [(round(t, 9), tag, err) for t, tag, err in s.answers] == [(0.144, 1, "")]
