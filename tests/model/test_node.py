"""Node life cycle: servers and service time, handlers, crash / recover / pause / resume."""

from __future__ import annotations

import pytest
from conftest import line_graph, send, wire

from sim.core.context import SimContext
from sim.core.distributions import Constant


def test_service_time_and_parallel_servers(ctx: SimContext) -> None:
    # zero latency; three messages at t=0 into a node with 2 servers of 1 s each
    net, nodes, rec = wire(ctx, line_graph(2, latency=0.0), servers=2, service=Constant(1.0))
    for _ in range(3):
        send(ctx, net, "n0", "n1")
    ctx.env.run()
    assert [t for t, _, _ in rec.seen] == [1.0, 1.0, 2.0]
    stats = nodes["n1"].statistics()
    assert (stats.received, stats.processed, stats.wait_total, stats.busy_time) == (3, 3, 1.0, 3.0)


def test_handlers_by_kind_and_no_handler(ctx: SimContext) -> None:
    net, nodes, _ = wire(ctx, line_graph(2))
    seen: list[str] = []
    nodes["n1"].on("request", lambda m: seen.append(m.kind))
    from sim.core.message import Message

    row = ctx.ledger.open(99, "request", "n0", "n1", "", 0.0, 10)
    net.send(Message(99, "request", "n0", "n1", 10, 0.0, row))
    row2 = ctx.ledger.open(100, "event", "n0", "n1", "", 0.0, 10)
    net.send(Message(100, "event", "n0", "n1", 10, 0.0, row2))
    ctx.env.run()
    assert seen == ["request"]
    assert ctx.ledger.last_reason(row2) == "no_handler"


def test_crash_loses_inbox_and_work_in_service_then_recovers(ctx: SimContext) -> None:
    net, nodes, rec = wire(ctx, line_graph(2, latency=0.0), service=Constant(1.0))
    for _ in range(3):
        send(ctx, net, "n0", "n1")
    ctx.env.run(until=0.5)
    node = nodes["n1"]
    assert node.statistics().in_service == 1 and node.statistics().queued == 2
    node.crash()
    send(ctx, net, "n0", "n1")  # arrives at a down node
    ctx.env.run(until=0.6)
    node.recover()
    send(ctx, net, "n0", "n1")
    ctx.env.run()
    reasons = [ctx.ledger.last_reason(r) or ctx.ledger.outcome_of(r) for r in range(5)]
    assert reasons == ["crash_lost", "crash_lost", "crash_lost", "node_down", "delivered"]
    assert [t for t, _, _ in rec.seen] == [pytest.approx(1.6)]
    assert node.statistics().crashes == 1
    ctx.ledger.check()


def test_busy_time_done_counts_only_the_work_a_crash_did_not_cut_off(ctx: SimContext) -> None:
    # one server, 10 s services: the first is cut off by a crash at 0.5 s, a pause at 2.5 s of the second
    # (started at 2 s) keeps its remaining 9.5 s, and a crash at 3 s cuts that off too
    net, nodes, _ = wire(ctx, line_graph(2, latency=0.0), servers=1, service=Constant(10.0))
    node = nodes["n1"]
    send(ctx, net, "n0", "n1")
    ctx.env.run(until=0.5)
    node.crash()
    ctx.env.run(until=1.0)
    assert node.busy_so_far() == pytest.approx(0.5)
    assert node.utilization() == pytest.approx(0.5)
    node.recover()
    ctx.env.run(until=2.0)
    send(ctx, net, "n0", "n1")
    ctx.env.run(until=2.5)
    node.pause()
    ctx.env.run(until=3.0)
    assert node.busy_so_far() == pytest.approx(1.0)
    node.crash()
    ctx.env.run(until=4.0)
    assert node.busy_so_far() == pytest.approx(1.0)
    assert node.statistics().busy_time == 20.0  # service begun, as documented


def test_crash_interrupts_waiting_workers_without_ghost_getters(ctx: SimContext) -> None:
    # a worker waiting on an empty inbox must not survive the crash and steal a message later
    net, nodes, rec = wire(ctx, line_graph(2, latency=0.0), servers=1, service=Constant(1.0))
    ctx.env.run(until=1.0)
    nodes["n1"].crash()
    nodes["n1"].recover()
    ctx.env.run(until=2.0)
    send(ctx, net, "n0", "n1")
    send(ctx, net, "n0", "n1")
    ctx.env.run()
    # one server: the two messages are served one after the other, not in parallel by a ghost
    assert [t for t, _, _ in rec.seen] == [3.0, 4.0]


def test_crash_and_recover_in_the_same_instant_as_start(ctx: SimContext) -> None:
    net, nodes, rec = wire(ctx, line_graph(2, latency=0.0), servers=2, service=Constant(1.0))
    node = nodes["n1"]
    node.crash()
    node.recover()
    node.pause()
    node.resume()
    send(ctx, net, "n0", "n1")
    ctx.env.run()
    assert [t for t, _, _ in rec.seen] == [1.0]


def test_pause_keeps_state_and_resumes_remaining_service(ctx: SimContext) -> None:
    net, nodes, rec = wire(ctx, line_graph(2, latency=0.0), service=Constant(1.0))
    send(ctx, net, "n0", "n1")
    ctx.env.run(until=0.25)
    nodes["n1"].pause()
    send(ctx, net, "n0", "n1")  # queues while paused
    ctx.env.run(until=2.25)
    assert rec.seen == []
    nodes["n1"].resume()
    ctx.env.run()
    # 0.75 s of the first message remained; the second follows it
    assert [t for t, _, _ in rec.seen] == [pytest.approx(3.0), pytest.approx(4.0)]


def test_pause_without_service_time_holds_arrivals(ctx: SimContext) -> None:
    net, nodes, rec = wire(ctx, line_graph(2, latency=0.1))
    nodes["n1"].pause()
    send(ctx, net, "n0", "n1")
    ctx.env.run(until=1.0)
    assert rec.seen == [] and nodes["n1"].statistics().queued == 1
    nodes["n1"].resume()
    ctx.env.run()
    assert [t for t, _, _ in rec.seen] == [1.0]


def test_down_node_sends_nothing(ctx: SimContext) -> None:
    _, nodes, rec = wire(ctx, line_graph(2))
    nodes["n0"].crash()
    from sim.core.message import Message

    row = ctx.ledger.open(1, "data", "n0", "n1", "", 0.0, 10)
    nodes["n0"].send(Message(1, "data", "n0", "n1", 10, 0.0, row))
    ctx.env.run()
    assert rec.seen == [] and ctx.ledger.last_reason(row) == "node_down"


def test_crash_clears_volatile_state_and_runs_recover_callbacks(ctx: SimContext) -> None:
    _, nodes, _ = wire(ctx, line_graph(2))
    node = nodes["n1"]
    node.volatile["seen"] = {1, 2}
    calls: list[float] = []
    node.on_recover.append(lambda: calls.append(ctx.env.now))
    node.crash()
    assert node.volatile == {}
    ctx.env.run(until=3.0)
    node.recover()
    assert calls == [3.0]


def test_control_traffic_skips_the_workers_and_waits_out_a_pause(ctx: SimContext) -> None:
    from sim.core.message import Message

    net, nodes, _ = wire(ctx, line_graph(2, latency=0.0), service=Constant(1.0))
    acks: list[float] = []
    nodes["n1"].on("ack", lambda m: acks.append(ctx.env.now))
    net.send(Message(-1, "ack", "n0", "n1", 64, 0.0))
    ctx.env.run(until=0.5)
    assert acks == [0.0]  # handled on arrival, no service time
    nodes["n1"].pause()
    net.send(Message(-2, "ack", "n0", "n1", 64, 0.5))
    ctx.env.run(until=2.0)
    assert acks == [0.0]  # a stopped process handles nothing
    nodes["n1"].resume()
    assert acks == [0.0, 2.0]  # at once on resume, still without a service time
