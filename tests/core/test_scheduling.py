"""The one seam to SimPy (``sim/core/scheduling.py``): no other file touches SimPy's internals, the
import-time guard refuses a SimPy that differs, its events fire in exactly the order ``env.timeout`` events
would, and the timer FIFOs: exact expiry times, start order, and dead timers skipped."""

from __future__ import annotations

import re
from collections.abc import Generator
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simpy

import sim.core.scheduling as scheduling
from sim.core.context import SimContext
from sim.core.scheduling import Scheduled, Timeouts, events_scheduled, queued, reschedule, schedule_at

ROOT = Path(__file__).resolve().parents[2]
SEAM = Path("sim/core/scheduling.py")
SCANNED = ("sim", "tests", "benchmarks", "experiments", "topologies", "docs")
# an attribute use of SimPy's private heap, event counter or clock; written in two pieces so that this
# file, which is scanned too, does not spell one
PRIVATE = re.compile(r"\." + "_(queue|eid|now)" + r"\b")


def private_uses(root: Path) -> list[str]:
    """``file:line: text`` of every use of ``PRIVATE`` in a .py or .md file under ``root``'s scanned folders
    and at its top level, except in the seam itself."""
    files = [p for p in root.glob("*") if p.suffix in (".py", ".md")]
    for folder in SCANNED:
        files += [p for p in (root / folder).rglob("*") if p.suffix in (".py", ".md")]
    hits = []
    for path in sorted(files):
        rel = path.relative_to(root)
        if rel == SEAM or "__pycache__" in rel.parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if PRIVATE.search(line):
                hits.append(f"{rel}:{number}: {line.strip()}")
    return hits


def test_no_file_but_the_seam_touches_simpys_internals() -> None:
    hits = private_uses(ROOT)
    assert not hits, "SimPy internals outside sim/core/scheduling.py:\n" + "\n".join(hits)


def test_the_scan_finds_a_use_and_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "sim" / "core").mkdir(parents=True)
    (tmp_path / "docs").mkdir()
    (tmp_path / SEAM).write_text("heap = env." + "_queue\n", encoding="utf-8")  # the seam may
    (tmp_path / "docs" / "x.md").write_text("fine: env.now\nnot: `env." + "_now`\n", encoding="utf-8")
    (tmp_path / "sim" / "y.py").write_text("n = next(env." + "_eid)\nq = self._queued\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("the heap, env." + "_queue\n", encoding="utf-8")
    assert [hit.split(": ")[0] for hit in private_uses(tmp_path)] == [
        "README.md:1",
        "docs/x.md:2",
        "sim/y.py:1",
    ]


def test_the_guard_accepts_this_simpy() -> None:
    assert simpy.__version__.startswith("4.1.")
    scheduling._check()


@pytest.mark.parametrize("version", ["4.2.0", "5.0", "3.0.13", "", "unknown"])
def test_the_guard_refuses_another_simpy_version(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setattr(simpy, "__version__", version)
    with pytest.raises(ImportError, match=r"sim needs SimPy >=4\.1,<4\.2 "):
        scheduling._check()


class _NoInternals:
    """An Environment without the private heap, counter and clock (``now`` only)."""

    now = 0.0


class _OtherCounter(simpy.Environment):
    """The heap and the clock, but event ids from something other than ``itertools.count``."""

    def __init__(self) -> None:
        super().__init__()
        setattr(self, "_" + "eid", iter(range(10**6)))


class _SkipsMinimalEvents(simpy.Environment):
    """Internals in place, but ``step`` drops what it pops instead of calling its callbacks."""

    def step(self) -> None:
        heap = getattr(self, "_" + "queue")
        if not heap:
            raise simpy.core.EmptySchedule()
        heap.pop(0)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (_NoInternals, "no longer has _queue"),
        (_OtherCounter, "no longer has _queue"),
        (_SkipsMinimalEvents, "no longer runs minimal events"),
    ],
)
def test_the_guard_refuses_a_simpy_whose_internals_differ(
    monkeypatch: pytest.MonkeyPatch, environment: type, message: str
) -> None:
    monkeypatch.setattr(scheduling, "Environment", environment)
    with pytest.raises(ImportError, match=message):
        scheduling._check()


def _plan(seed: int) -> tuple[list[float], dict[int, list[tuple[float, int]]]]:
    """Delays on a coarse binary grid (so that many events fall on the same instant): the first events'
    delays, and for each event the (delay, child) pairs it schedules when it fires (zero delays included)."""
    rng = np.random.default_rng(seed)
    first = [float(d) for d in rng.integers(0, 8, 40) / 4]
    children: dict[int, list[tuple[float, int]]] = {}
    label = count(len(first))
    for parent in range(300):
        children[parent] = [(float(rng.integers(0, 6)) / 4, next(label)) for _ in range(rng.integers(0, 3))]
    return first, children


def _trace(seed: int, via: str) -> list[tuple[float, int]]:
    """(time, label) of every event of ``_plan(seed)`` as it fires, each scheduled through ``via``."""
    first, children = _plan(seed)
    env = simpy.Environment()
    fired: list[tuple[float, int]] = []

    def fire(label: int) -> None:
        fired.append((env.now, label))
        for delay, child in children.get(label, []):
            add(delay, child)

    def add(delay: float, label: int) -> None:
        if via == "timeout":
            env.timeout(delay, label).callbacks.append(lambda e: fire(e.value))
        else:
            schedule_at(env, env.now + delay, Scheduled(label, (lambda e: fire(e._value),)))

    for label, delay in enumerate(first):
        add(delay, label)
    env.run()
    return fired


@pytest.mark.parametrize("seed", range(5))
def test_schedule_at_with_minimal_events_fires_in_the_order_of_timeouts(seed: int) -> None:
    expected = _trace(seed, "timeout")
    assert len(expected) > 100 and len({t for t, _ in expected}) < len(expected) / 4  # many ties
    assert _trace(seed, "schedule_at") == expected


def _timer_trace(seed: int, via: str) -> list[tuple[float, int]]:
    """Timers of one delay (0.5 s) started at instants on a grid, several at once, some from an expiring
    timer's callback: (time, label) of each expiry, through ``Timeouts`` or one ``env.timeout`` each."""
    rng = np.random.default_rng(seed)
    starts = sorted(float(t) for t in rng.integers(0, 12, 30) / 4)
    env = simpy.Environment()
    fired: list[tuple[float, int]] = []
    label = count(len(starts))

    def expire(value: int) -> None:
        fired.append((env.now, value))
        if value % 3 == 0 and value < 200:
            start(next(label))

    timers = Timeouts(env, 0.5, expire)

    def start(value: int) -> None:
        if via == "timeout":
            env.timeout(0.5, value).callbacks.append(lambda e: expire(e.value))
        else:
            timers.start(value)

    for value, at in enumerate(starts):
        env.timeout(at, value).callbacks.append(lambda e: start(e.value))
    env.run()
    return fired


@pytest.mark.parametrize("seed", range(5))
def test_timeouts_expire_in_the_order_of_timeouts(seed: int) -> None:
    expected = _timer_trace(seed, "timeout")
    assert len(expected) > 30 and len({t for t, _ in expected}) < len(expected) / 2
    assert _timer_trace(seed, "timers") == expected


def test_queued_yields_the_events_waiting_in_the_heap_with_their_times() -> None:
    env = simpy.Environment()
    assert list(queued(env)) == []
    events = [env.timeout(d) for d in (3.0, 1.0, 2.0)]
    mine = Scheduled("x", (lambda e: None,))
    schedule_at(env, 1.5, mine)
    assert sorted((t, id(e)) for t, e in queued(env)) == sorted(
        (t, id(e)) for t, e in zip((3.0, 1.0, 2.0, 1.5), (*events, mine), strict=True)
    )
    env.step()
    env.step()  # the 1 s timeout and the minimal event have fired, the others wait
    assert env.now == 1.5
    assert {id(e) for _, e in queued(env)} == {id(events[0]), id(events[2])}


def test_reschedule_moves_events_and_keeps_the_order_of_ties() -> None:
    env = simpy.Environment()
    fired: list[str] = []
    a, b, c = (Scheduled(name, (lambda e: fired.append(e._value),)) for name in "abc")
    schedule_at(env, 5.0, a)
    schedule_at(env, 2.0, b)
    schedule_at(env, 9.0, c)
    reschedule(env, {a: 2.0, c: 1.0})  # a ties with b, scheduled before it: a fires first
    env.run()
    assert fired == ["c", "a", "b"]


def test_events_scheduled_counts_every_event_and_its_own_read() -> None:
    env = simpy.Environment()
    assert events_scheduled(env) == 0  # the read itself uses id 0 up
    for d in (1.0, 2.0, 3.0):
        env.timeout(d)
    schedule_at(env, 0.5, Scheduled(None, (lambda e: None,)))
    assert events_scheduled(env) == 1 + 4
    env.run()
    assert events_scheduled(env) == 1 + 4 + 1 + 0  # running schedules nothing new here


def test_each_timer_expires_exactly_delay_after_its_start() -> None:
    ctx = SimContext.from_seed(1)
    fired: list[tuple[float, Any]] = []
    timers = ctx.timeouts(0.3, lambda v: fired.append((ctx.env.now, v)))
    for t, v in [(0.0, "a"), (0.1, "b"), (0.1, "c"), (0.25, "d")]:
        ctx.call_later(t, lambda e: timers.start(e._value), v)
    ctx.env.run()
    assert fired == [(0.3, "a"), (0.1 + 0.3, "b"), (0.1 + 0.3, "c"), (0.25 + 0.3, "d")]
    assert len(timers) == 0


def test_timers_interleave_with_other_events_in_time_order() -> None:
    ctx = SimContext.from_seed(1)
    log: list[tuple[float, str]] = []
    timers = ctx.timeouts(1.0, lambda v: log.append((ctx.env.now, v)))
    timers.start("t0")
    ctx.call_later(0.5, lambda e: log.append((ctx.env.now, "event")))
    ctx.call_later(0.7, lambda e: timers.start("t1"))
    ctx.call_later(1.2, lambda e: log.append((ctx.env.now, "event")))
    ctx.env.run()
    assert log == [(0.5, "event"), (1.0, "t0"), (1.2, "event"), (1.7, "t1")]


def test_a_callback_may_start_the_next_timer() -> None:
    ctx = SimContext.from_seed(1)
    fired: list[float] = []

    def again(n: int) -> None:
        fired.append(ctx.env.now)
        if n:
            timers.start(n - 1)

    timers = ctx.timeouts(0.5, again)
    timers.start(3)
    ctx.env.run()
    assert fired == [0.5, 1.0, 1.5, 2.0]


def test_dead_timers_are_skipped_without_an_event() -> None:
    ctx = SimContext.from_seed(1)
    live = {0, 5, 9}
    fired: list[int] = []
    timers = ctx.timeouts(1.0, fired.append, lambda v: v in live)
    for i in range(10):
        ctx.call_later(i * 0.01, lambda e: timers.start(e._value), i)
    ctx.env.run()
    # timer 0 had its event before anything was known about it; after it only live ones get one
    assert fired == [0, 5, 9]
    assert ctx.env.now == pytest.approx(1.09)
    events = events_scheduled(ctx.env)
    assert events == 10 + 3  # ten starts, three expiries: the seven dead timers cost no event


@pytest.mark.parametrize("delay", [-1.0, float("nan")])
def test_a_negative_or_nan_delay_is_refused(delay: float) -> None:
    with pytest.raises(ValueError, match="delay"):
        SimContext.from_seed(1).timeouts(delay, print)


def test_the_guard_refuses_a_simpy_whose_step_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    original = scheduling.Environment.step

    def step(self: simpy.Environment) -> None:  # works, but is not the code Scheduler.step copies
        original(self)

    monkeypatch.setattr(scheduling.Environment, "step", step)
    with pytest.raises(ImportError, match="step changed"):
        scheduling._check()


def _clock_trace(env: simpy.Environment, seed: int) -> list[tuple[float, str]]:
    rng = np.random.default_rng(seed)
    seen: list[tuple[float, str]] = []

    def worker(name: str) -> Generator[simpy.Event, None, None]:
        for _ in range(5):
            yield env.timeout([0.0, 0.5, 1.0, rng.random()][rng.integers(4)])
            seen.append((env.now, name))

    for name in "abc":
        env.process(worker(name))
    for i in range(20):
        schedule_at(
            env,
            [1.0, 2.0, rng.random() * 3][rng.integers(3)],
            Scheduled(i, (lambda e: seen.append((env.now, str(e._value))),)),
        )
    env.run(until=1.5)
    seen.append((env.now, "until"))
    env.run()
    return seen


@pytest.mark.parametrize("seed", range(5))
def test_the_scheduler_runs_exactly_as_simpy_and_its_clock_is_a_plain_attribute(seed: int) -> None:
    env = scheduling.Scheduler()
    assert _clock_trace(env, seed) == _clock_trace(simpy.Environment(), seed)
    assert "now" in vars(env) and env.now == simpy.Environment.now.fget(env)  # type: ignore[attr-defined]


def test_the_scheduler_binds_simpys_event_classes_once_as_simpy_does_for_its_own_class() -> None:
    # SimPy binds ``timeout``, ``event``, ``process``, ... to each Environment at creation; a subclass must
    # do it for the base class's, or every ``env.timeout`` makes a new bound method
    env = scheduling.Scheduler()
    for name in ("timeout", "event", "process", "all_of", "any_of"):
        assert getattr(env, name) is getattr(env, name), name
    fired: list[float] = []
    env.timeout(2.0).callbacks.append(lambda _: fired.append(env.now))
    env.run()
    assert fired == [2.0] and isinstance(env.event(), simpy.Event)
