"""The process-style application API (sim/patterns/process.py): exact small traces on a line of nodes with
1 ms links, crash and recovery, request timeouts, broker clients, operations, and a point-to-point written
as processes that gives the built-in's ledger exactly, with and without faults.

Patterns are registered for a test by ``monkeypatch.setitem(PATTERNS, ...)``; each keeps what it saw in a
class-level list made inside the test.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, ClassVar

import numpy as np
import pytest
import simpy

from sim import Scenario, simulate
from sim.core.errors import SimError
from sim.patterns import PATTERNS
from sim.patterns.base import Measure, Operation
from sim.patterns.process import CRASH, TIMEOUT, App, NodeHandle, ProcessPattern
from sim.run.simulate import RunResult

Proc = Generator[simpy.Event, Any, None]


def run(monkeypatch: pytest.MonkeyPatch, cls: type[ProcessPattern], n: int = 3, **over: Any) -> RunResult:
    """``cls`` on a line n0 - ... - n{n-1} of 1 ms links (no loss, no serialization), no workload."""
    monkeypatch.setitem(PATTERNS, cls.name, cls)
    settings: dict[str, Any] = {
        "pattern": cls.name,
        "duration": "1s",
        "drain": "1s",
        "seed": 5,
        "topology": {"name": "line", "params": {"n": n}},
        "links": {"latency": "1ms", "loss": 0.0, "bandwidth": "inf"},
        "workload": {"producers": ["n0"], "consumers": [f"n{n - 1}"], "rate": "1/s"},
        "delivery": {"guarantee": "at_most_once"},
    }
    settings.update(over)
    return simulate(Scenario(**settings))


def test_receive_compute_send_chain_has_hand_computed_times(monkeypatch: pytest.MonkeyPatch) -> None:
    class Chain(ProcessPattern):
        name = "test_chain"
        seen: ClassVar[list[tuple[str, float, Any]]] = []

        def start(self, app: App) -> None:
            app.spawn("n0", self.source)
            app.spawn("n1", self.worker, "w1")
            app.spawn("n1", self.worker, "w2")
            app.spawn("n2", self.sink)

        def source(self, node: NodeHandle) -> Proc:
            yield node.sleep(0.010)
            node.send("n1", "a", size=100)
            node.send("n1", "b", size=100)

        def worker(self, node: NodeHandle, who: str) -> Proc:
            while True:
                msg = yield node.receive("data")
                self.seen.append((who + " got " + msg.payload, node.now, msg.src))
                yield node.compute(0.005)  # one worker: the second compute waits for the first
                node.send("n2", msg.payload.upper(), size=msg.size)

        def sink(self, node: NodeHandle) -> Proc:
            while True:
                msg = yield node.receive()
                self.seen.append(("n2 got " + msg.payload, node.now, msg.src))

    result = run(monkeypatch, Chain)
    expected = [
        ("w1 got a", 0.011, "n0"),  # 10 ms asleep + one 1 ms link
        ("w2 got b", 0.011, "n0"),
        ("n2 got A", 0.017, "n1"),  # + 5 ms of compute + 1 ms
        ("n2 got B", 0.022, "n1"),  # its compute waited 5 ms for the node's only worker
    ]
    assert [(w, pytest.approx(t, abs=1e-12), s) for w, t, s in Chain.seen] == expected
    cols = result.columns
    assert cols["outcome"].tolist() == ["delivered"] * 4
    assert cols["delivered_at"].tolist() == pytest.approx([0.011, 0.011, 0.017, 0.022], abs=1e-12)
    assert result.summary["op_completed"] == 4 and result.summary["op_offered"] == 4


def test_two_workers_compute_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    class Pair(ProcessPattern):
        name = "test_pair"
        done: ClassVar[list[float]] = []

        def start(self, app: App) -> None:
            for _ in range(3):
                app.spawn("n1", self.work)

        def work(self, node: NodeHandle) -> Proc:
            yield node.compute(0.004)
            self.done.append(node.now)

    run(monkeypatch, Pair, nodes={"servers": 2})
    assert Pair.done == pytest.approx([0.004, 0.004, 0.008], abs=1e-12)


def test_crash_interrupts_processes_and_recovery_restarts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    class Life(ProcessPattern):
        name = "test_life"
        log: ClassVar[list[tuple[str, float, Any]]] = []

        def start(self, app: App) -> None:
            app.spawn("n1", self.service)
            app.spawn("n0", self.pinger)

        def service(self, node: NodeHandle) -> Proc:
            node.disk["boots"] = node.disk.get("boots", 0) + 1
            self.log.append(("boot", node.now, (node.disk["boots"], dict(node.memory))))
            node.memory["seen"] = 0
            try:
                while True:
                    msg = yield node.receive()
                    node.memory["seen"] += 1
                    self.log.append(("got", node.now, msg.payload))
            except simpy.Interrupt as stop:
                self.log.append(("interrupted", node.now, stop.cause))
                raise

        def pinger(self, node: NodeHandle) -> Proc:
            for i in range(5):
                node.send("n1", i, size=10)
                yield node.sleep(0.1)

    result = run(
        monkeypatch,
        Life,
        faults=[{"at": "0.15s", "for": "0.1s", "action": "crash", "target": "n1"}],
    )
    log = [(what, round(t, 9), detail) for what, t, detail in Life.log]
    assert log == [
        ("boot", 0.0, (1, {})),
        ("got", 0.001, 0),
        ("got", 0.101, 1),
        ("interrupted", 0.15, CRASH),
        ("boot", 0.25, (2, {})),  # the disk survived the crash, the memory did not
        ("got", 0.301, 3),
        ("got", 0.401, 4),
    ]
    cols = result.columns
    assert cols["outcome"].tolist() == ["delivered", "delivered", "lost", "delivered", "delivered"]
    assert cols["reason"][2] == "node_down"
    assert result.check() == []  # nothing delivered while n1 was down


def test_a_process_that_swallows_the_crash_takes_nothing_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stubborn(ProcessPattern):
        name = "test_stubborn"
        got: ClassVar[list[tuple[int, Any]]] = []

        def start(self, app: App) -> None:
            app.spawn("n1", self.service)
            app.spawn("n0", self.pinger)

        def service(self, node: NodeHandle) -> Proc:
            boot = node.disk["boots"] = node.disk.get("boots", 0) + 1
            while True:
                try:
                    msg = yield node.receive()
                    self.got.append((boot, msg.payload))
                except simpy.Interrupt:
                    continue  # a ghost: the node's next life must still get every message

        def pinger(self, node: NodeHandle) -> Proc:
            for i in range(4):
                node.send("n1", i, size=10)
                yield node.sleep(0.1)

    run(monkeypatch, Stubborn, faults=[{"at": "0.15s", "for": "0.1s", "action": "crash", "target": "n1"}])
    assert Stubborn.got == [(1, 0), (1, 1), (2, 3)]  # 2 arrived while n1 was down


def test_a_crash_while_computing_loses_the_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    class Slow(ProcessPattern):
        name = "test_slow"
        log: ClassVar[list[tuple[str, float]]] = []

        def start(self, app: App) -> None:
            app.spawn("n1", self.work)

        def work(self, node: NodeHandle) -> Proc:
            self.log.append(("start", node.now))
            yield node.compute(0.5)
            self.log.append(("done", node.now))

    run(monkeypatch, Slow, faults=[{"at": "0.2s", "for": "0.1s", "action": "crash", "target": "n1"}])
    assert [(w, round(t, 9)) for w, t in Slow.log] == [("start", 0.0), ("start", 0.3), ("done", 0.8)]


def test_request_reply_and_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    class Calls(ProcessPattern):
        name = "test_calls"
        got: ClassVar[list[tuple[float, Any]]] = []

        def start(self, app: App) -> None:
            app.spawn("n0", self.client)
            app.spawn("n2", self.server)

        def client(self, node: NodeHandle) -> Proc:
            for work in (0.003, 0.020):
                reply = yield node.request("n2", work, timeout=0.010, size=50)
                self.got.append((node.now, reply if reply is TIMEOUT else reply.payload))

        def server(self, node: NodeHandle) -> Proc:
            while True:
                req = yield node.receive("request")
                yield node.compute(req.payload)
                node.reply(req, f"done in {req.payload}", size=20)

    result = run(monkeypatch, Calls)
    # 2 ms there, 3 ms of work, 2 ms back; then a request at 7 ms whose work (20 ms) outlasts the timeout
    assert [(round(t, 9), v) for t, v in Calls.got] == [(0.007, "done in 0.003"), (0.017, TIMEOUT)]
    cols = result.columns
    assert cols["kind"].tolist() == ["request", "reply", "request", "reply"]
    # the late reply (7 + 2 + 20 + 2 = 31 ms) is delivered: it reached its node, though nobody waited
    assert cols["delivered_at"].tolist() == pytest.approx([0.002, 0.007, 0.009, 0.031], abs=1e-12)
    ops = result.operations
    assert ops["outcome"].tolist() == ["completed", "failed"]  # the second call timed out
    assert ops["reason"].tolist() == ["", "timeout"]  # its request was delivered: no loss reason noted
    s = result.summary
    assert s["op_offered"] == 2 and s["op_latency_max"] == pytest.approx(0.007, abs=1e-12)


def test_a_timed_out_request_that_was_lost_fails_its_call(monkeypatch: pytest.MonkeyPatch) -> None:
    class Lost(ProcessPattern):
        name = "test_lost"
        got: ClassVar[list[Any]] = []

        def start(self, app: App) -> None:
            app.spawn("n0", self.client)

        def client(self, node: NodeHandle) -> Proc:
            self.got.append((yield node.request("n2", None, timeout=0.05)))

    result = run(monkeypatch, Lost, faults=[{"at": "0s", "for": "0.5s", "action": "crash", "target": "n2"}])
    assert Lost.got == [TIMEOUT]
    assert result.columns["outcome"].tolist() == ["lost"]
    assert result.columns["reason"].tolist() == ["node_down"]
    assert result.operations["outcome"].tolist() == ["failed"]
    assert result.operations["attempts"].tolist() == [1]


def test_operations_begun_grouped_and_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    class Ops(ProcessPattern):
        name = "test_ops"
        operation = Operation("a test operation")
        measures = (Measure("begun", "count", "ops", "operations begun"),)

        def start(self, app: App) -> None:
            self.app = app
            app.spawn("n0", self.boss)
            app.spawn("n1", self.sink)
            app.spawn("n2", self.sink)

        def boss(self, node: NodeHandle) -> Proc:
            together = node.group()
            node.send("n1", size=10, op=together)
            node.send("n2", size=10, op=together)  # completes when both are delivered (2 ms)
            mine = node.begin()
            self.app.count("begun")
            node.send("n2", size=10, op=mine)
            yield node.sleep(0.030)
            node.complete(mine)  # completes when the process says so
            failed = node.begin()
            self.app.count("begun")
            node.send("n1", size=10, op=failed)
            yield node.sleep(0.010)
            node.fail(failed, "timeout", 2)

        def sink(self, node: NodeHandle) -> Proc:
            while True:
                yield node.receive()

    result = run(monkeypatch, Ops)
    ops = result.operations
    assert ops["outcome"].tolist() == ["completed", "completed", "failed"]
    assert ops["completed_at"][:2].tolist() == pytest.approx([0.002, 0.030], abs=1e-12)
    assert ops["rows"].tolist() == [2, 1, 1] and ops["attempts"].tolist() == [0, 0, 2]
    s = result.summary
    assert s["begun"] == 2 and s["op_failed"] == 1 and s["op_failed_timeout"] == 1


def test_broker_queue_with_manual_acks_and_a_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    class Brokered(ProcessPattern):
        name = "test_brokered"
        got: ClassVar[list[tuple[str, float, str, Any]]] = []

        def start(self, app: App) -> None:
            app.spawn("n0", self.publisher)
            app.spawn("n2", self.worker)
            app.spawn("n3", self.listener)
            app.spawn("n2", self.listener)

        def publisher(self, node: NodeHandle) -> Proc:
            yield node.sleep(0.010)
            yield node.publish("work", "job", size=100)
            yield node.publish("news", "hello", size=100)

        def worker(self, node: NodeHandle) -> Proc:
            while True:
                msg = yield node.consume("work", manual_ack=True)
                self.got.append((node.id, node.now, msg.topic, msg.payload))
                node.ack(msg)

        def listener(self, node: NodeHandle) -> Proc:
            while True:
                msg = yield node.subscribe("news")
                self.got.append((node.id, node.now, msg.topic, msg.payload))

    result = run(
        monkeypatch,
        Brokered,
        n=4,
        broker={"node": "n1"},
        delivery={"guarantee": "at_least_once"},
        workload={"producers": ["n0"], "consumers": ["n3"], "rate": "1/s"},
    )
    got = sorted((who, round(t, 9), topic, p) for who, t, topic, p in Brokered.got)
    # n0 -> n1 (the broker, no service time) -> n2 is 2 ms; n3 is one more hop
    assert got == [
        ("n2", 0.012, "news", "hello"),
        ("n2", 0.012, "work", "job"),
        ("n3", 0.013, "news", "hello"),
    ]
    cols = result.columns
    assert cols["outcome"].tolist() == ["delivered"] * 3
    assert sorted(cols["topic"].tolist()) == ["news", "news", "work"]
    assert result.check() == [] and result.summary["redeliveries"] == 0  # the manual ack reached the broker


def test_publish_waits_while_the_broker_blocks_its_publisher(monkeypatch: pytest.MonkeyPatch) -> None:
    class Flood(ProcessPattern):
        name = "test_flood"
        log: ClassVar[list[tuple[str, Any, float, bool]]] = []

        def start(self, app: App) -> None:
            app.spawn("n0", self.publisher)
            app.spawn("n2", self.slow)

        def publisher(self, node: NodeHandle) -> Proc:
            for i in range(5):
                wait = node.publish("work", i, size=10)
                self.log.append(("publish", i, node.now, wait.triggered))
                yield wait
                yield node.sleep(0.005)

        def slow(self, node: NodeHandle) -> Proc:
            yield node.sleep(0.05)
            while True:
                msg = yield node.consume("work")
                self.log.append(("got", msg.payload, node.now, True))
                yield node.compute(0.02)

    result = run(
        monkeypatch,
        Flood,
        broker={"node": "n1", "capacity": 2, "overflow": "block", "prefetch": 1},
        delivery={"guarantee": "at_least_once"},
    )
    log = [(what, i, round(t, 9), ready) for what, i, t, ready in Flood.log]
    # the third message fills the queue (capacity 2, no consumer yet): the broker's `block` reaches n0 at
    # 12 ms, so the publish at 15 ms waits; the consumer takes message 0 at 52 ms and acknowledges it, the
    # broker hands it message 1 and says `unblock`, which reaches n0 at 54 ms: the next publish is at 59 ms
    assert log[:6] == [
        ("publish", 0, 0.0, True),
        ("publish", 1, 0.005, True),
        ("publish", 2, 0.01, True),
        ("publish", 3, 0.015, False),
        ("got", 0, 0.052, True),
        ("publish", 4, 0.059, True),
    ]
    assert result.summary["delivered"] == 5 and result.check() == []


def test_point_to_point_as_processes_gives_the_built_in_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    class P2P(ProcessPattern):
        name = "test_p2p"

        def producer(self, node: NodeHandle) -> Proc:
            while True:
                job = yield node.arrival()
                node.send(job.consumer, size=job.size, created_at=job.at)

        def consumer(self, node: NodeHandle) -> Proc:
            while True:
                yield node.receive("data")

    monkeypatch.setitem(PATTERNS, P2P.name, P2P)
    base = Scenario.from_toml("experiments/scenarios/point_to_point.toml").with_updates(
        {"duration": "2s", "warmup": "0.5s"}
    )
    faults = [
        [],
        [{"at": "0.7s", "for": "0.3s", "action": "crash", "target": "consumers"}],
        [{"at": "0.7s", "for": "0.3s", "action": "pause", "target": "producers"}],
    ]
    for schedule in faults:
        scenario = base.with_updates({"faults": schedule})
        built_in = simulate(scenario)
        mine = simulate(scenario.with_updates({"pattern": P2P.name}))
        assert built_in.summary["offered"] > 500
        for name, column in built_in.columns.items():
            np.testing.assert_array_equal(column, mine.columns[name], err_msg=f"{schedule} {name}")
        for name in ("op_offered", "op_completed", "op_latency_p99", "msgs_per_delivery"):
            assert mine.summary[name] == built_in.summary[name]


def test_plug_in_mistakes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class Opts(ProcessPattern):
        name = "test_opts"
        tag: ClassVar[str] = "not an option"
        fanout: int = 3

        def validate(self) -> None:
            if not isinstance(self.fanout, int) or self.fanout < 1:
                raise SimError("fanout", self.fanout, "a whole number >= 1")

    class More(Opts):
        name = "test_more"
        names: list[str] = []  # noqa: RUF012  # copied per instance

    assert Opts.option_defaults() == {"fanout": 3}
    assert Opts.from_options({}).fanout == 3 and Opts.from_options({"fanout": 5}).fanout == 5
    more = More.from_options({"fanout": 2})
    assert (more.fanout, more.names) == (2, []) and more.names is not More.names
    with pytest.raises(SimError, match="tag"):
        Opts.from_options({"tag": "x"})
    with pytest.raises(SimError, match="fanoot"):
        Opts.from_options({"fanoot": 2})
    with pytest.raises(SimError, match="fanout"):
        Opts.from_options({"fanout": 0})

    class NoYield(ProcessPattern):
        name = "test_no_yield"

        def start(self, app: App) -> None:
            app.spawn("n1", self.oops)

        def oops(self, node: NodeHandle) -> None:
            node.send("n2")

    with pytest.raises(SimError, match="generator function"):
        run(monkeypatch, NoYield)

    class NoService(ProcessPattern):
        name = "test_no_service"

        def start(self, app: App) -> None:
            app.spawn("n1", self.work)

        def work(self, node: NodeHandle) -> Proc:
            yield node.compute()

    with pytest.raises(ValueError, match="no service time"):
        run(monkeypatch, NoService)
