"""A replicated broker, message by message: a publish's replication and commit, an election, a reconnect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sim import Scenario, SimError
from sim.core.context import SimContext
from sim.model.broker.replication import ReplicatedBroker
from sim.run.build import AssembledWorld, build, topology_search_path
from sim.run.simulate import run_world

MS = 0.001


def scenario(**broker: Any) -> Scenario:
    """Brokers n0 (leader), n1, n2; producer n3, consumer n4; every link 1 ms; appends cost 1 ms."""
    settings = {"node": "n0", "replicas": ["n0", "n1", "n2"], "durable": True, "persist": "1ms"}
    return Scenario(
        pattern="queue",
        duration=1.0,
        warmup=0.0,
        drain=5.0,
        seed=1,
        topology={"name": "full_mesh", "params": {"n": 5}},
        links={"latency": "1ms"},
        workload={"producers": ["n3"], "consumers": ["n4"], "rate": 1, "arrivals": "constant"},
        delivery={"guarantee": "at_least_once", "ack_timeout": "50ms", "max_attempts": "inf"},
        broker={**settings, **broker},
    )


def spy(world: AssembledWorld) -> list[tuple[float, str, str, str]]:
    """Every message a node handles, as (time, node, kind, sender), in order."""
    seen: list[tuple[float, str, str, str]] = []
    for node in world.nodes.values():
        for kind, handler in list(node.handlers.items()):

            def wrapped(msg: Any, node: Any = node, handler: Any = handler) -> None:
                seen.append((world.ctx.env.now, node.id, msg.kind, msg.src))
                handler(msg)

            node.handlers[kind] = wrapped
    return seen


def built(sc: Scenario) -> tuple[SimContext, AssembledWorld, ReplicatedBroker]:
    ctx = SimContext.from_seed(sc.seed)
    world = build(ctx, sc)
    broker = world.broker()
    assert isinstance(broker, ReplicatedBroker)
    return ctx, world, broker


def relative(seen: list[tuple[float, str, str, str]], t0: float) -> list[tuple[float, str, str, str]]:
    return [(round((t - t0) / MS, 6), node, kind, src) for t, node, kind, src in seen if t >= t0]


def test_a_publish_is_replicated_then_committed_at_the_majority_then_confirmed_and_delivered() -> None:
    ctx, world, broker = built(scenario())
    seen = spy(world)
    run_world(ctx, world)
    t0 = next(t for t, node, kind, _ in seen if kind == "data" and node == "n0") - 2 * MS  # sent 1 ms + 1 ms
    trace = [r for r in relative(seen, t0) if r[0] < 10]
    assert trace == [
        (2.0, "n0", "data", "n3"),  # the leader appends after its 1 ms: replicate goes to both followers
        (3.0, "n1", "replicate", "n0"),
        (3.0, "n2", "replicate", "n0"),
        (5.0, "n0", "replicated", "n1"),  # appended (1 ms) and answered (1 ms): the majority, committed
        (5.0, "n0", "replicated", "n2"),  # the third copy changes nothing
        (6.0, "n4", "data", "n0"),  # committed: delivered (enqueued, dispatched) ...
        (6.0, "n3", "ack", "n0"),  # ... and confirmed to the publisher
        (7.0, "n0", "ack", "n4"),  # the consumer's ack, replicated as a settle
        (8.0, "n1", "settle", "n0"),
        (8.0, "n2", "settle", "n0"),
    ]
    assert broker.commit_latency == [pytest.approx(3 * MS)] * len(broker.commit_latency)
    assert broker.replication_messages == 6 * len(
        broker.commit_latency
    )  # 2 replicate, 2 replicated, 2 settle
    assert not broker.pending and not broker.settling


def test_no_commit_without_a_majority_and_the_confirm_waits_for_it() -> None:
    sc = scenario(replicas=["n0", "n1", "n2"])
    ctx, world, broker = built(sc)
    world.node("n1").crash()
    world.node("n2").crash()
    ctx.env.run(until=1.5)
    assert broker.pending and not broker.commit_latency  # appended by the leader alone
    assert ctx.pending == 1  # the publisher still waits for its confirm
    world.node("n1").recover()  # caught up by the leader, its copy makes the majority
    ctx.env.run(until=1.6)
    assert not broker.pending and len(broker.commit_latency) == 1
    assert ctx.pending == 0


def test_the_leader_crash_is_noticed_after_election_delay_and_the_first_in_sync_replica_leads() -> None:
    sc = scenario(election_delay="200ms")
    ctx, world, broker = built(sc)
    ctx.env.run(until=0.5)
    world.node("n0").crash()
    ctx.env.run(until=0.5 + 0.2 - 1e-9)
    assert broker.leader is None and broker.id == "n0"
    ctx.env.run(until=0.5 + 0.2 + 1e-9)
    assert broker.leader is not None and broker.id == "n1" and broker.elections == 1
    assert broker.replication_figures()["unavailable"] == pytest.approx(0.2)


def test_the_most_up_to_date_replica_wins_the_election() -> None:
    sc = scenario(election_delay="200ms", replicas=["n0", "n1", "n2"])
    ctx, world, broker = built(sc)
    broker.replicas["n2"].last_seq = 5  # n2 has appended more than n1
    world.node("n0").crash()
    ctx.env.run(until=0.3)
    assert broker.id == "n2"


def test_clients_reconnect_to_the_new_leader_after_reconnect_delay_and_register_again() -> None:
    sc = scenario(election_delay="200ms", reconnect_delay="100ms")
    ctx, world, broker = built(sc)
    seen = spy(world)
    ctx.env.run(until=0.5)
    world.node("n0").crash()
    t0 = 0.5 + 0.2  # the election
    ctx.env.run(until=t0 + 0.1 - 1e-9)
    consumer = broker.clients[0] if broker.clients[0].node.id == "n4" else broker.clients[1]
    assert consumer.leader == "n0"
    ctx.env.run(until=t0 + 0.1 + 0.01)
    assert {c.leader for c in broker.clients} == {"n1"}
    registered = [(round(t - t0, 9), node) for t, node, kind, _ in seen if kind == "consume" and t > 0.5]
    assert registered == [(round(0.1 + MS, 9), "n1")]  # sent at the reconnect, 1 ms on the way
    assert broker.queues["work"].consumers == ["n4"]


def test_a_publish_sent_to_the_old_leader_is_retried_at_the_new_one_and_delivered_once() -> None:
    sc = scenario(election_delay="200ms", reconnect_delay="100ms")
    ctx, world, broker = built(sc)
    world.ctx.env.run(until=0.0001)
    world.node("n0").crash()  # before the first publish: it and its retries go nowhere until the reconnect
    run_world(ctx, world)
    s = ctx.ledger.counts()
    assert s["lost"] == 0 and s["in_flight"] == 0 and s["delivered"] == len(ctx.ledger)
    assert int(sum(ctx.ledger.duplicates)) == 0
    assert broker.id == "n1" and broker.elections == 1


def test_an_old_leader_back_before_the_election_serves_no_one_until_it_wins_it() -> None:
    # an ack timeout fires while the old leader is up again and there is no leader: nothing is delivered;
    # durable, it missed nothing (nothing commits without a leader) and has the most appends: it leads again
    sc = scenario(election_delay="200ms", ack_timeout="150ms")
    sc = sc.with_updates({"workload.rate": 10, "nodes": {"service": "80ms"}})
    ctx, world, broker = built(sc)
    q = broker.queues["work"]
    ctx.env.run(until=0.45)
    while not q.unacked:  # crash with a delivery not yet acknowledged
        ctx.env.step()
    crashed = ctx.env.now
    world.node("n0").crash()
    delivered = q.delivered
    ctx.env.run(until=crashed + 0.05)
    world.node("n0").recover()
    ctx.env.run(until=crashed + 0.2 - 1e-9)
    assert broker.leader is None and q.redelivered == 1  # requeued by its ack timeout ...
    assert q.delivered == delivered  # ... and not delivered
    run_world(ctx, world)
    assert broker.id == "n0" and broker.elections == 1
    s = ctx.ledger.counts()
    assert s["lost"] == 0 and s["in_flight"] == 0


def test_a_publish_only_the_crashed_leader_had_is_lost_without_confirms() -> None:
    sc = scenario(election_delay="200ms", confirms=False)
    ctx, world, broker = built(sc)
    for follower in ("n1", "n2"):
        world.node(follower).crash()
    while not broker.pending:  # the leader appends a publish the followers cannot get
        ctx.env.step()
    (rec,) = broker.pending.values()
    assert rec.stored == {"n0"} and not rec.msg.reliable
    for follower in ("n1", "n2"):
        world.node(follower).recover()  # their catch-up is on its way ...
    world.node("n0").crash()  # ... when the leader crashes
    ctx.env.run(until=ctx.env.now + 0.2 + 1e-9)
    assert broker.id == "n1" and not broker.pending
    assert ctx.ledger.outcome_of(rec.msg.ob) == "lost" and ctx.ledger.last_reason(rec.msg.ob) == "crash_lost"


def test_a_count_takes_the_broker_node_then_the_topology_s_other_broker_nodes() -> None:
    path = Path(__file__).resolve().parents[3] / "experiments" / "scenarios" / "queue_replicated.toml"
    sc = Scenario.from_toml(path)
    world = build(SimContext.from_seed(1), sc, search=topology_search_path())
    broker = world.broker()
    assert isinstance(broker, ReplicatedBroker) and list(broker.replicas) == [
        "broker",
        "broker-1",
        "broker-2",
    ]
    assert broker.majority == 2
    one = sc.with_updates({"topology.params": {**sc.topology.params, "brokers": 1}})
    with pytest.raises(SimError, match="from 1 to 1"):
        build(SimContext.from_seed(1), one, search=topology_search_path())


def test_replicas_must_start_with_the_broker_node() -> None:
    with pytest.raises(SimError, match=r"broker\.replicas"):
        built(scenario(replicas=["n1", "n0"]))
    with pytest.raises(SimError, match="replicas"):
        scenario(replicas=["n0", "n0"])


def record_commits(broker: ReplicatedBroker) -> list[tuple[int, float, float]]:
    """(log index, append time, commit time) of each publish as it commits, in commit order."""
    seen: list[tuple[int, float, float]] = []
    commit = broker._commit

    def wrapped(rec: Any) -> None:
        seen.append((rec.seq, rec.appended, broker.ctx.env.now))
        commit(rec)

    broker._commit = wrapped  # type: ignore[method-assign]
    return seen


def test_a_later_publish_with_its_majority_first_waits_for_the_earlier_one() -> None:
    # n2 is down, so a publish commits when n1 has it. n1 never gets the first publish's replicate (lost on
    # its link): the first commits only at its resend, election_delay (50 ms) after its append, while the
    # next four (every 10 ms) have their majority at once. They wait for it and commit after it, in order
    # (Raft's commit index only moves forward), and the consumer gets them in the order they were published.
    sc = scenario(election_delay="50ms").with_updates({"workload.rate": 100, "duration": 0.06})
    ctx, world, broker = built(sc)
    world.node("n2").crash()
    n1, n4 = world.node("n1"), world.node("n4")
    append, consume = n1.handlers["replicate"], n4.handlers["data"]
    lost: list[int] = []
    consumed: list[int] = []

    def lose_the_first(msg: Any) -> None:
        if not lost:
            lost.append(msg.payload[1])
        else:
            append(msg)

    def spy_consumer(msg: Any) -> None:
        consumed.append(msg.id)
        consume(msg)

    n1.handlers["replicate"], n4.handlers["data"] = lose_the_first, spy_consumer
    commits = record_commits(broker)
    run_world(ctx, world)
    assert lost == [1]
    seqs = [seq for seq, _, _ in commits]
    assert len(seqs) == 6 and seqs == sorted(seqs)
    (_, appended, first), *rest = commits
    assert first - appended > 0.05  # the first waited for its resend ...
    assert [t for _, _, t in rest[:4]] == [first] * 4  # ... the next four, with their majority long
    assert all(a + 0.005 < first for _, a, _ in rest[:4])  # before (an answer takes 3 ms), commit with it
    assert consumed == sorted(consumed) and len(consumed) == 6
    assert ctx.ledger.counts()["lost"] == 0


def test_commit_order_is_append_order_through_a_leader_crash() -> None:
    # the example at 1 s: 750 publishes/s, random service times and link delays on three replicas, the
    # leader crashing at 0.6 s (the new leader commits what the live replicas had) and back at 0.95 s
    path = Path(__file__).resolve().parents[3] / "experiments" / "scenarios" / "queue_replicated.toml"
    sc = Scenario.from_toml(path).with_updates({"duration": 1.0, "drain": 2.0})
    ctx = SimContext.from_seed(sc.seed)
    world = build(ctx, sc, search=topology_search_path())
    broker = world.broker()
    assert isinstance(broker, ReplicatedBroker)
    commits = record_commits(broker)
    run_world(ctx, world)
    seqs = [seq for seq, _, _ in commits]
    assert broker.elections == 1 and len(seqs) > 700
    assert seqs == sorted(seqs)


@pytest.mark.parametrize(("first_on", "wait"), [(("n1",), 3 * MS), (("n1", "n2", "n3"), 0.0)])
def test_a_new_leader_commits_from_the_front_of_the_log(first_on: tuple[str, ...], wait: float) -> None:
    # five replicas (majority 3). The leader n0 has appended two publishes and heard from no follower: the
    # second is on n1, n2, n3 as well. n0 crashes and n1 (the most up to date) takes over: the second has
    # its majority at once. The first, on n1 only, is replicated again (3 ms) and the second waits for it;
    # on n1, n2, n3 too, both commit at the takeover.
    ids = [f"n{i}" for i in range(5)]
    sc = scenario(election_delay="50ms", replicas=ids).with_updates(
        {
            "topology": {"name": "full_mesh", "params": {"n": 7}},
            "workload": {"producers": ["n5"], "consumers": ["n6"], "rate": 100, "arrivals": "constant"},
        }
    )
    ctx, world, broker = built(sc)
    deaf = True
    for f in ids[1:]:
        node = world.node(f)

        def append(msg: Any, handler: Any = node.handlers["replicate"]) -> None:
            if not deaf:
                handler(msg)

        node.handlers["replicate"] = append
    while len(broker.pending) < 2:
        ctx.env.step()
    first, second = broker.pending.values()
    first.stored |= set(first_on)
    second.stored |= {"n1", "n2", "n3"}
    for f in ("n1", "n2", "n3"):
        broker.replicas[f].last_seq = second.seq
    deaf = False
    commits = record_commits(broker)
    world.node("n0").crash()
    crashed = ctx.env.now
    ctx.env.run(until=crashed + 0.05 + 0.01)
    assert broker.id == "n1"
    assert [seq for seq, _, _ in commits] == [first.seq, second.seq]
    assert [t for _, _, t in commits] == [pytest.approx(crashed + 0.05 + wait)] * 2
