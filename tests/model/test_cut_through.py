"""Cut-through: a run of plain hops in one event, with the same times, losses and accounting as hop by hop,
on until the first change of state; a trace changes no number, and a fault first acting at T leaves what
settled before T as in the fault-free run. Also the bounds on the routing state a network keeps."""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from conftest import line_graph, send, wire

from sim import RunResult, Scenario, simulate
from sim.core.context import SimContext
from sim.core.distributions import Constant
from sim.core.scheduling import events_scheduled
from sim.model.network import Network
from sim.model.node import Node


def events(ctx: SimContext) -> int:
    return events_scheduled(ctx.env)


@pytest.mark.parametrize("cut_through", [False, True])
def test_same_arrival_time_and_accounting_either_way(cut_through: bool) -> None:
    ctx = SimContext.from_seed(1)
    net, _, rec = wire(ctx, line_graph(5, latency=0.002))
    net.cut_through = cut_through
    send(ctx, net, "n0", "n4", size=100)
    ctx.env.run()
    assert [(round(t, 12), node) for t, node, _ in rec.seen] == [(0.008, "n4")]
    assert ctx.ledger.data_transmissions == 4
    assert ctx.ledger.transmissions[0] == 4
    assert ctx.ledger.bytes[0] == 400
    assert [net.link(f"n{i}", f"n{i + 1}").transmissions for i in range(4)] == [1, 1, 1, 1]
    assert events(ctx) == (1 if cut_through else 4)


def test_a_loss_on_the_way_is_charged_to_the_hops_taken() -> None:
    ctx = SimContext.from_seed(1)
    g = line_graph(4, latency=0.001)
    g.edges["n1", "n2"]["loss"] = 1.0
    net, _, rec = wire(ctx, g)
    net.cut_through = True
    msg = send(ctx, net, "n0", "n3")
    ctx.env.run()
    assert rec.seen == []
    assert ctx.ledger.outcome_of(0) == "lost" and ctx.ledger.last_reason(0) == "loss"
    assert msg.hops == 2 and ctx.ledger.transmissions[0] == 2
    assert net.link("n2", "n3").transmissions == 0


def test_cut_through_stops_before_a_link_that_serializes() -> None:
    # n0-n1-n2 plain (1 ms each), n2-n3 at 1000 B/s (100 ms for 100 B) plus 1 ms
    ctx = SimContext.from_seed(1)
    g = line_graph(4, latency=0.001)
    g.edges["n2", "n3"]["bandwidth"] = 1000.0
    net, _, rec = wire(ctx, g)
    net.cut_through = True
    send(ctx, net, "n0", "n3", size=100)
    send(ctx, net, "n0", "n3", size=100)
    ctx.env.run()
    # both reach n2 at 2 ms; the second waits for the first on the slow link
    assert [round(t, 9) for t, _, _ in rec.seen] == [0.103, 0.203]
    assert net.fast.path("n0", "n3") == (net.link("n0", "n1"), net.link("n1", "n2"))


def test_a_path_longer_than_the_hop_limit_still_drops_with_ttl() -> None:
    ctx = SimContext.from_seed(3)
    g = line_graph(6)
    net = Network.from_graph(ctx, g, max_hops=3)
    net.cut_through = True
    for n in g.nodes:
        net.attach(n, Node(ctx, n, net))
    msg = send(ctx, net, "n0", "n5")
    ctx.env.run()
    assert ctx.ledger.last_reason(0) == "ttl"
    assert msg.hops == 3


def test_any_state_change_turns_cut_through_off_for_good() -> None:
    ctx = SimContext.from_seed(1)
    net, _, _ = wire(ctx, line_graph(3))
    net.cut_through = True
    send(ctx, net, "n0", "n2")
    assert len(net.fast)
    net.set_link_up("n0", "n1", False)
    assert not net.cut_through and not len(net.fast)
    net.set_link_up("n0", "n1", True)
    assert not net.cut_through


def ring(n: int) -> nx.Graph:
    g = nx.cycle_graph([f"r{i}" for i in range(n)])
    for u, v in g.edges:
        g.edges[u, v].update(latency=Constant(0.001), loss=0.0, bandwidth=math.inf)
    return g


def test_route_tables_are_bounded_and_stay_correct_after_eviction() -> None:
    g = ring(40)
    net = Network.from_graph(SimContext.from_seed(1), g, route_memory=1)
    assert net.routing.max_trees == 16
    for _ in range(2):  # the second round recomputes evicted destinations
        for i in range(40):
            dst = f"r{i}"
            route = net.route("r0", dst)
            assert len(route) - 1 == nx.shortest_path_length(g, "r0", dst)
            assert (
                len(net.routing.tables) <= net.routing.max_trees
                and len(net.routing._preds) <= net.routing.max_trees
            )
    assert set(net.routing.tables) == set(net.routing._preds)


def test_the_path_cache_starts_over_when_full() -> None:
    ctx = SimContext.from_seed(1)
    g = nx.star_graph(1100)
    g = nx.relabel_nodes(g, {i: f"s{i}" for i in g.nodes})
    for u, v in g.edges:
        g.edges[u, v].update(latency=Constant(0.001), loss=0.0, bandwidth=math.inf)
    net = Network.from_graph(ctx, g, route_memory=1)
    net.cut_through = True
    for n in g.nodes:
        net.attach(n, Node(ctx, n, net))
    sizes = []
    for i in range(2, 1101):
        send(ctx, net, "s1", f"s{i}")
        sizes.append(len(net.fast))
    assert max(sizes) == net.fast.max_paths == 1024 and sizes[-1] < 100
    ctx.env.run()
    # every message arrived after two hops (at a node without a handler)
    assert ctx.ledger.data_transmissions == 2 * 1099
    assert ctx.ledger.lost_count == 1099 and set(ctx.ledger.reason[: len(ctx.ledger)]) == {12}


def test_default_route_memory_keeps_hundreds_of_destinations_on_ten_thousand_nodes() -> None:
    net = Network.from_graph(SimContext.from_seed(1), ring(10_000))
    assert net.routing.max_trees >= 200
    assert net.routing.max_trees * 104 * 10_000 <= 256 * 2**20


def test_route_memory_is_a_scenario_setting() -> None:
    from sim import Scenario
    from sim.run.build import build

    def world(**network: object):  # type: ignore[no-untyped-def]
        scenario = Scenario(
            pattern="point_to_point",
            topology={"name": "ring", "params": {"n": 5000}},
            network=network,
            duration="10ms",
        )
        return build(SimContext.from_seed(1), scenario)

    assert world().network.routing.max_trees == 256 * 2**20 // (104 * 5000)
    assert world(route_memory="52MB").network.routing.max_trees == 100
    assert world(route_memory=0).network.routing.max_trees == 16


@pytest.mark.parametrize("bad", ["lots", -1, "1 parsec"])
def test_a_bad_route_memory_names_the_field(bad: object) -> None:
    from sim import Scenario
    from sim.core.errors import SimError

    with pytest.raises(SimError, match="route_memory"):
        Scenario(pattern="point_to_point", network={"route_memory": bad})


@pytest.mark.parametrize("when", [0.004, 0.007])  # on its first link, on its last
def test_a_state_change_restores_the_arrival_checks_for_messages_under_way(when: float) -> None:
    # sent with cut-through, the message would go straight to n2's handler; the link n1 -> n2 goes down while
    # it is under way, so it must be dropped exactly as hop by hop: at n1 (no route) if it has not got there
    # yet, at n2 (link down) if it was already on that link
    outcomes = []
    for cut_through in (False, True):
        ctx = SimContext.from_seed(1)
        net, _, rec = wire(ctx, line_graph(3, latency=0.005))
        net.cut_through = cut_through
        send(ctx, net, "n0", "n2")
        ctx.env.run(until=when)
        net.set_link_up("n1", "n2", False)
        ctx.env.run()
        assert rec.seen == []
        outcomes.append((ctx.ledger.outcome_of(0), ctx.ledger.last_reason(0), ctx.ledger.data_transmissions))
    assert outcomes[0] == outcomes[1] == [("lost", "unroutable", 1), ("lost", "link_down", 2)][when > 0.005]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda net: net.set_node_up("n1", False), "node_down"),  # the router ahead of it crashes
        (lambda net: net.set_link_up("n0", "n1", False), "link_down"),  # the link it is on is cut
    ],
    ids=["node ahead", "link under it"],
)
def test_a_state_change_stops_a_message_under_way_where_hop_by_hop_would(change: object, reason: str) -> None:
    # n0 -> n1 -> n2, 5 ms a hop, one event with cut-through; at 4 ms it is still on its first link
    for cut_through in (False, True):
        ctx = SimContext.from_seed(1)
        net, _, rec = wire(ctx, line_graph(3, latency=0.005))
        net.cut_through = cut_through
        send(ctx, net, "n0", "n2")
        ctx.env.run(until=0.004)
        change(net)  # type: ignore[operator]
        ctx.env.run()
        assert rec.seen == [], cut_through
        assert ctx.ledger.outcome_of(0) == "lost" and ctx.ledger.last_reason(0) == reason, cut_through
        assert ctx.ledger.data_transmissions == 1 and net.link("n1", "n2").transmissions == 0, cut_through


def test_a_message_brought_back_from_cut_through_goes_on_hop_by_hop_and_is_counted_once() -> None:
    ctx = SimContext.from_seed(1, trace=True)
    net, _, rec = wire(ctx, line_graph(4, latency=0.005))
    net.cut_through = True
    msg = send(ctx, net, "n0", "n3")
    ctx.env.run(until=0.007)  # on its second link
    net.link("n0", "n1").extra_latency = 0.001  # a state change elsewhere: cut-through stops
    net.link("n0", "n1").refresh()
    ctx.env.run()
    assert [round(t, 9) for t, _, _ in rec.seen] == [0.015]
    assert msg.hops == 3 and ctx.ledger.data_transmissions == 3
    assert [net.link(f"n{i}", f"n{i + 1}").transmissions for i in range(3)] == [1, 1, 1]
    assert ctx.trace is not None
    hops = [(round(t, 9), node, nxt) for t, event, _, node, nxt in ctx.trace if event == "hop"]
    assert hops == [(0.0, "n0", "n1"), (0.005, "n1", "n2"), (0.01, "n2", "n3")]  # each once


def test_with_nothing_changing_the_message_goes_straight_to_the_handler() -> None:
    ctx = SimContext.from_seed(1)
    net, nodes, rec = wire(ctx, line_graph(3, latency=0.005))
    net.cut_through = True
    msg = send(ctx, net, "n0", "n2")
    assert msg.callbacks == (nodes["n2"].receive,)
    ctx.env.run()
    assert [(round(t, 9), node) for t, node, _ in rec.seen] == [(0.01, "n2")]


def test_an_impairment_starting_stops_cut_through_and_applies_to_the_next_message() -> None:
    ctx = SimContext.from_seed(1)
    net, _, rec = wire(ctx, line_graph(3, latency=0.005))
    net.cut_through = True
    send(ctx, net, "n0", "n2")  # caches the run n0 -> n1 -> n2
    ctx.env.run()
    link = net.link("n1", "n2")
    link.extra_latency = 0.002  # a latency window, as the fault injector opens it
    link.refresh()
    assert not net.cut_through
    send(ctx, net, "n0", "n2")
    ctx.env.run()
    assert [round(t, 9) for t, _, _ in rec.seen] == [0.01, 0.022]


# -- whole runs: tracing and faults change nothing before they act ------------------------------------------

SCENARIOS = Path(__file__).resolve().parents[2] / "experiments" / "scenarios"
PATTERNS = ("point_to_point", "queue", "pubsub", "request_reply", "event_driven")
# random delays and losses on links without serialization, so that cut-through takes multi-hop runs and the
# order in which a link's draws are used matters
LINKS = {"latency": {"dist": "exponential", "mean": "1ms"}, "loss": 0.01, "bandwidth": "inf"}


def run(pattern: str, seed: int, **updates: object) -> RunResult:
    data = Scenario.from_toml(SCENARIOS / f"{pattern}.toml").model_dump(by_alias=True)
    data.update(duration=1.5, warmup=0.1, drain=5.0, seed=seed, faults=[], nemesis=[])
    data["links"] = {**data["links"], **LINKS}
    data.update(updates)
    return simulate(Scenario.from_dict(data))


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray], rows: object = slice(None)) -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name][rows], b[name][rows], err_msg=name)  # type: ignore[index]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_trace_changes_no_number(pattern: str, seed: int) -> None:
    plain, traced = run(pattern, seed), run(pattern, seed, trace=True)
    assert plain.trace is None and traced.trace
    assert_same(plain.columns, traced.columns)
    assert plain.summary.keys() == traced.summary.keys()
    for key, value in plain.summary.items():
        assert value == traced.summary[key] or (math.isnan(value) and math.isnan(traced.summary[key])), key
    times = [record[0] for record in traced.trace]
    assert times == sorted(times)


def test_a_trace_records_each_hop_of_a_cut_through_run_at_its_own_time() -> None:
    traced = run("point_to_point", 1, trace=True)
    assert traced.trace is not None
    hops: dict[int, list[tuple[float, str, str]]] = {}
    arrivals: dict[int, int] = {}
    for t, event, msg_id, node, detail in traced.trace:
        if event == "hop":
            hops.setdefault(msg_id, []).append((t, node, detail))
        elif event in ("arrive", "drop"):
            arrivals[msg_id] = arrivals.get(msg_id, 0) + (1 if event == "arrive" else 2)
    # messages sent once and arrived once, over host -> leaf -> spine -> leaf -> host on a leaf-spine
    multi = [h for m, h in hops.items() if arrivals.get(m) == 1 and len(h) >= 3]
    assert len(multi) > 100
    for h in multi:
        assert all(a[2] == b[1] for a, b in pairwise(h))  # each hop starts where the last one ended ...
        assert all(a[0] < b[0] for a, b in pairwise(h))  # ... and later (random delays > 0)


T = 0.8
FAULTS = {
    "crash": {"action": "crash", "target": "consumers"},
    "link_down": {"action": "link_down", "target": "all"},
    "partition": {"action": "partition", "groups": [["producers"]]},
    "latency": {"action": "latency", "target": "all", "add": "2ms"},
    "loss": {"action": "loss", "target": "all", "p": 0.3},
}


@pytest.mark.parametrize("kind", FAULTS)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_fault_first_acting_at_t_leaves_what_settled_before_t_as_without_it(
    pattern: str, kind: str
) -> None:
    base = run(pattern, 3)
    hit = run(pattern, 3, faults=[{"at": T, "for": "200ms", **FAULTS[kind]}])
    assert hit.fault_log and hit.fault_log[0][0] == T
    a, b = base.columns, hit.columns
    before = a["delivered_at"] < T  # NaN (not delivered) compares False
    assert before.sum() > 100
    n = len(before)
    assert np.array_equal(before, b["delivered_at"][:n] < T)  # the same rows delivered before T ...
    settled = ("msg_id", "kind", "src", "dst", "created_at", "delivered_at", "receiver", "size", "op")
    assert_same({k: a[k] for k in settled}, {k: b[k][:n] for k in settled}, before)  # ... the same way
    assert any(not np.array_equal(a[k], b[k]) for k in a if a[k].dtype != object)  # and the fault did act


def test_a_planned_crash_stops_a_message_already_on_a_multi_link_run() -> None:
    # n0 -> n4 over a line, 5 ms a link: message 10 leaves n0 at 0.4817 s, and is on the link n1 -> n2 when n2
    # crashes at 0.49 s. With a fault planned, build has cut-through remember each run's arrival times, so the
    # message goes back to the end of that link and is lost at n2, as hop by hop; not delivered at 0.5017 s
    scenario = Scenario(
        pattern="point_to_point",
        duration="1s",
        seed=1,
        topology={"name": "line", "params": {"n": 5}},
        links={"latency": "5ms", "loss": 0.0},
        workload={"producers": 1, "consumers": 1, "rate": "20/s", "arrivals": "constant"},
        delivery={"guarantee": "at_most_once"},
        faults=[{"at": "0.49s", "for": "100ms", "action": "crash", "target": "n2"}],
    )
    ledger = simulate(scenario).ledger.set_index("msg_id")
    assert ledger.loc[10, "created_at"] == pytest.approx(0.481714, abs=1e-6)
    assert (ledger.loc[10, "outcome"], ledger.loc[10, "reason"]) == ("lost", "node_down")
