"""Each speed trick of ``sim/core/scheduling.py``'s list (and the batch sizes) measured alone, in one process.

Every trick is compared with the same runs with that trick switched off (or its sizes changed), the two
variants alternating (ABBA order, so a drift of the machine's speed hits both alike); the figure is the
ratio of the medians, ``wall with the variant / wall as shipped``: above 1 the trick saves time.

- (a) cut-through: ``world.network.cut_through = False`` after ``build``, against the flag as ``build``
  sets it; point-to-point, 10^5 messages, 10,000-node Barabási–Albert graph (``bench_scale``'s scenario).
- (b) timer FIFOs (:class:`sim.core.scheduling.Timeouts`) against one event per timer, patched in where
  :meth:`sim.core.context.SimContext.timeouts` makes them; the queue pattern, at-least-once.
- (c) batch sizes: a link's outcome batches (``_COLD``, ``_FIRST_OUTCOMES``, ``_MAX_OUTCOMES`` of
  :mod:`sim.model.link`) and a stream's (``FIRST_BATCH``, ``BATCH``, ``HASHED_DRAWS`` of
  :mod:`sim.core.rng`), smaller and larger; point-to-point on the same graph.
- (d) minimal events: :meth:`sim.core.context.SimContext.call_later` with a ``simpy.Timeout`` instead of a
  :class:`sim.core.scheduling.Scheduled`; ``bench_broker``'s M/M/1 queue (sends and service completions).
- (e) the clock and the heap: reading ``env.now`` (a property) against a plain attribute of the same
  environment (what SimPy's private clock is), and ``env.schedule`` against
  :func:`sim.core.scheduling.schedule_at` (a direct heap push), as micro-benchmarks; the whole-run effect
  is estimated from the clock reads and events of (a)'s run.

Every variant must give the ledger of the shipped code, bit for bit (the benchmark fails otherwise), except
where noted: ``HASHED_DRAWS`` decides which generator gives a draw, so changing it changes the numbers; and
hop-by-hop delivery makes a link's draws in another order than cut-through (at each hop instead of at the
send), so a run with cut-through off from its start is another sample of the same model (``sim`` never
mixes the two before a change of state). Those rows say "ledger differs". Only ``run_world`` is timed.

Verdict: a trick pays when the variant without it is slower by more than 3 % plus the noise of the shipped
code's repeats (a robust relative spread: 1.4826 × median absolute deviation / median, so one run slowed by
another engineer's job does not hide a difference); it costs when the variant is faster by as much. The
process's CPU time is shown beside the wall time: on a shared machine it moves less.
Usage: ``python benchmarks/bench_tricks.py [--repeats 5] [--messages 100000] [--only a b c d e]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import itertools
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from heapq import heappush
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_scale
import numpy as np
import simpy
from simpy.core import Environment

import sim.core.context
import sim.core.rng
import sim.model.link
from sim import Scenario
from sim.core.context import SimContext
from sim.core.scheduling import NORMAL, Scheduled, events_scheduled, schedule_at
from sim.run.build import AssembledWorld, build
from sim.run.simulate import run_world

MARGIN = 0.03  # a trick pays when switching it off costs more than this, beyond the noise


@dataclass
class Variant:
    """One way to run: ``patch`` is in force around build and run; ``prepare`` edits the built world."""

    name: str
    patch: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
    prepare: Callable[[AssembledWorld], None] | None = None
    same_numbers: bool = True
    """The ledger must equal the shipped code's (checked); False: it may differ (reported)."""


@dataclass
class Row:
    trick: str
    variant: str
    wall: float
    ratio: float
    cpu_ratio: float
    verdict: str
    note: str = ""


@dataclass
class Measured:
    walls: dict[str, list[float]] = field(default_factory=dict)
    cpus: dict[str, list[float]] = field(default_factory=dict)
    digests: dict[str, set[str]] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)


@contextlib.contextmanager
def patched(target: Any, **values: Any) -> Iterator[None]:
    """Set attributes of ``target`` (a module or class) for the duration, then put the old ones back."""
    old = {name: getattr(target, name) for name in values}
    for name, value in values.items():
        setattr(target, name, value)
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(target, name, value)


def digest(ctx: SimContext) -> str:
    """A hash of the run's ledger (every column) and counters."""
    h = hashlib.sha256()
    for name, column in sorted(ctx.ledger.columns().items()):
        h.update(name.encode())
        h.update(column.tobytes() if column.dtype != object else repr(column.tolist()).encode())
    h.update(repr(sorted(ctx.ledger.counters.items())).encode())
    return h.hexdigest()[:16]


def run_once(scenario: Scenario, variant: Variant) -> tuple[float, float, str, int]:
    """Build and run ``scenario`` under ``variant``: (wall and CPU seconds of the run, ledger digest,
    events)."""
    with variant.patch():
        ctx = SimContext.from_seed(scenario.seed)
        world = build(ctx, scenario)
        if variant.prepare is not None:
            variant.prepare(world)
        gc.collect()
        start, cpu = time.perf_counter(), time.process_time()
        run_world(ctx, world)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        ctx.ledger.check()
        return wall, cpu, digest(ctx), events_scheduled(ctx.env)


def measure(scenario: Scenario, variants: list[Variant], repeats: int) -> Measured:
    """Run every variant ``repeats`` times, alternating (the order reverses each round)."""
    m = Measured()
    for r in range(repeats):
        for v in variants if r % 2 == 0 else variants[::-1]:
            wall, cpu, dig, events = run_once(scenario, v)
            m.walls.setdefault(v.name, []).append(wall)
            m.cpus.setdefault(v.name, []).append(cpu)
            m.digests.setdefault(v.name, set()).add(dig)
            m.events[v.name] = events
    return m


def noise(walls: list[float]) -> float:
    """The relative spread of repeats: 1.4826 × median absolute deviation / median (a standard deviation
    for normal noise, and one outlier cannot inflate it)."""
    mid = statistics.median(walls)
    return 1.4826 * statistics.median(abs(w - mid) for w in walls) / mid


def verdict(ratio: float, threshold: float) -> str:
    if ratio > 1 + threshold:
        return "pays"
    if ratio < 1 - threshold:
        return "costs"
    return "does not pay"


def rows_for(trick: str, variants: list[Variant], m: Measured) -> tuple[list[Row], float]:
    """Table rows for one trick (the first variant is the code as shipped), and the noise."""
    shipped = variants[0].name
    ref_digest = m.digests[shipped]
    base, cpu_base = statistics.median(m.walls[shipped]), statistics.median(m.cpus[shipped])
    spread = noise(m.walls[shipped])
    threshold = MARGIN + spread
    note = f"noise ±{spread:.1%} (CPU ±{noise(m.cpus[shipped]):.1%}); {m.events[shipped]:,} events"
    rows = [Row(trick, shipped, base, 1.0, 1.0, "reference", note)]
    for v in variants[1:]:
        assert len(m.digests[v.name]) == 1, f"{trick} / {v.name}: repeats gave different ledgers"
        same = m.digests[v.name] == ref_digest
        if v.same_numbers:
            assert same, f"{trick} / {v.name}: the ledger differs from the shipped code's"
        wall, cpu = statistics.median(m.walls[v.name]), statistics.median(m.cpus[v.name])
        note = f"{m.events[v.name]:,} events" + ("" if same else "; ledger differs")
        ratio = wall / base
        rows.append(Row(trick, v.name, wall, ratio, cpu / cpu_base, verdict(ratio, threshold), note))
    assert len(ref_digest) == 1, f"{trick}: repeats of the shipped code gave different ledgers"
    return rows, spread


# -- (a) cut-through ---------------------------------------------------------------------------------------


def cut_through_off(world: AssembledWorld) -> None:
    world.network.cut_through = False


# -- (b) timer FIFOs ---------------------------------------------------------------------------------------


class TimerPerEvent:
    """:class:`sim.core.scheduling.Timeouts`' interface with one event per timer: ``start(value)`` schedules
    ``callback(value)`` at exactly now + ``delay``; ``alive`` is not needed (callbacks ignore dead timers)."""

    __slots__ = ("_cb", "_env", "_pending", "callback", "delay")

    def __init__(
        self,
        env: Environment,
        delay: float,
        callback: Callable[[Any], None],
        alive: Callable[[Any], bool] | None = None,
    ) -> None:
        if not delay >= 0:
            raise ValueError(f"a timeout needs a delay >= 0, got {delay}")
        self._env = env
        self.delay = delay
        self.callback = callback
        self._pending = 0
        self._cb: tuple[Callable[[Any], None]] = (self._fire,)

    def __len__(self) -> int:
        return self._pending

    def start(self, value: Any = None) -> None:
        self._pending += 1
        schedule_at(self._env, self._env.now + self.delay, Scheduled(value, self._cb))

    def _fire(self, event: Scheduled) -> None:
        self._pending -= 1
        self.callback(event._value)


# -- (d) minimal events ------------------------------------------------------------------------------------


def call_later_with_timeout(
    self: SimContext, delay: float, callback: Callable[[Any], None], value: Any = None
) -> None:
    """``SimContext.call_later`` as it was before minimal events: a ``simpy.Timeout`` per call."""
    self.env.timeout(delay, value).callbacks.append(callback)


def mm1(messages: int) -> Scenario:
    """``bench_broker``'s M/M/1 queue (λ = 0.9, μ = 1, zero latency, one consumer, manual acks)."""
    return Scenario(
        pattern="queue",
        duration=messages / 0.9,
        drain=0,
        seed=1,
        topology={"name": "star", "params": {"n": 2}},
        links={"latency": 0},
        nodes={"service": {"dist": "exponential", "mean": 1.0}},
        workload={"producers": 1, "consumers": 1, "rate": 0.9},
        delivery={"guarantee": "at_most_once"},
        broker={"node": "hub", "consumer_ack": "manual", "prefetch": 1},
    )


# -- (e) the clock and the heap ----------------------------------------------------------------------------

READS = 10  # clock reads per loop iteration (unrolled, so the loop's own cost is small beside them)


def read_property(env: Environment, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        t = env.now
        t = env.now
        t = env.now
        t = env.now
        t = env.now
        t = env.now
        t = env.now
        t = env.now
        t = env.now
        t = env.now
    del t
    return (time.perf_counter() - start) / (n * READS)


def read_attribute(env: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        t = env.clock
        t = env.clock
        t = env.clock
        t = env.clock
        t = env.clock
        t = env.clock
        t = env.clock
        t = env.clock
        t = env.clock
        t = env.clock
    del t
    return (time.perf_counter() - start) / (n * READS)


def push_schedule(delays: list[float]) -> float:
    env = Environment()
    events = [Scheduled(None, (print,)) for _ in delays]
    schedule = env.schedule
    with no_gc():
        start = time.perf_counter()
        for d, ev in zip(delays, events, strict=True):
            schedule(ev, NORMAL, d)  # type: ignore[arg-type]
        return (time.perf_counter() - start) / len(delays)


def push_at(delays: list[float]) -> float:
    env = Environment()  # at time 0, so the absolute time is the delay
    events = [Scheduled(None, (print,)) for _ in delays]
    with no_gc():
        start = time.perf_counter()
        for d, ev in zip(delays, events, strict=True):
            schedule_at(env, d, ev)
        return (time.perf_counter() - start) / len(delays)


def push_inline(delays: list[float]) -> float:
    """The push the pre-move code wrote inline at each call site (heap entry, event id, ``heappush``), on a
    list and counter of its own: the same operations without a function call."""
    heap: list[tuple[float, int, int, Scheduled]] = []
    eid = itertools.count()
    now = 0.0
    events = [Scheduled(None, (print,)) for _ in delays]
    with no_gc():
        start = time.perf_counter()
        for d, ev in zip(delays, events, strict=True):
            heappush(heap, (now + d, NORMAL, next(eid), ev))
        return (time.perf_counter() - start) / len(delays)


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """The collector off: a collection in the middle of 10^5 pushes would cost more than the pushes."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def alternate(repeats: int, *measures: Callable[[], float]) -> list[list[float]]:
    """Each measure ``repeats`` times, in turn (the order reverses each round)."""
    out: list[list[float]] = [[] for _ in measures]
    for r in range(repeats):
        order = list(range(len(measures)))
        for k in order if r % 2 == 0 else order[::-1]:
            out[k].append(measures[k]())
    return out


def clock_reads(scenario: Scenario) -> tuple[int, int]:
    """(reads of ``env.now``, events scheduled) in one run of ``scenario`` as shipped."""
    reads = [0]
    now = Environment.now

    def counted(env: Environment) -> Any:
        reads[0] += 1
        return now.fget(env)  # type: ignore[attr-defined]

    with patched(Environment, now=property(counted)):
        ctx = SimContext.from_seed(scenario.seed)
        world = build(ctx, scenario)
        reads[0] = 0
        run_world(ctx, world)
    return reads[0], events_scheduled(ctx.env)


def micro(scenario: Scenario, run_wall: float, repeats: int) -> tuple[list[Row], list[str]]:
    env = simpy.Environment()
    env.clock = 0.0  # type: ignore[attr-defined]  # a plain instance attribute, as SimPy's own clock is
    n = 200_000
    prop, attr = alternate(2 * repeats + 1, lambda: read_property(env, n), lambda: read_attribute(env, n))
    delays = np.random.default_rng(1).random(100_000).tolist()
    sched, at, inline = alternate(
        2 * repeats + 1, lambda: push_schedule(delays), lambda: push_at(delays), lambda: push_inline(delays)
    )
    reads, events = clock_reads(scenario)
    p, a = statistics.median(prop), statistics.median(attr)
    s, d, i = statistics.median(sched), statistics.median(at), statistics.median(inline)
    clock_saving = reads * (p - a)
    push_saving = events * (s - d)
    inline_saving = events * (s - i)
    lines = [
        f"clock: env.now {p * 1e9:.1f} ns a read, plain attribute {a * 1e9:.1f} ns (noise ±"
        f"{max(noise(prop), noise(attr)):.0%}); {reads:,} reads in the run of (a) -> "
        f"{clock_saving:+.3f} s of {run_wall:.2f} s",
        f"heap: env.schedule {s * 1e9:.1f} ns a push, schedule_at {d * 1e9:.1f} ns (noise ±"
        f"{max(noise(sched), noise(at)):.0%}); {events:,} events in the run of (a) -> "
        f"{push_saving:+.3f} s of {run_wall:.2f} s",
        f"heap: an inline push (pre-move style, on a list of its own) {i * 1e9:.1f} ns (noise "
        f"±{noise(inline):.0%}) -> {inline_saving:+.3f} s of {run_wall:.2f} s",
    ]
    # the shipped code reads env.now and schedules with env.schedule; the tricks were the private ways, so the
    # ratio is the shipped run's wall over the estimated wall with the trick (above 1: the trick would pay)
    rows = [Row("(e) clock", "env.now (as shipped)", run_wall, 1.0, math.nan, "reference", "the run of (a)")]
    rows.append(_estimate("(e) clock", "private attribute, estimated", run_wall, clock_saving))
    rows.append(
        Row("(e) heap", "env.schedule (as shipped)", run_wall, 1.0, math.nan, "reference", "the run of (a)")
    )
    rows.append(_estimate("(e) heap", "schedule_at, estimated", run_wall, push_saving))
    rows.append(_estimate("(e) heap", "inline push, estimated", run_wall, inline_saving))
    return rows, lines


def _estimate(trick: str, variant: str, run_wall: float, saving: float) -> Row:
    ratio = run_wall / (run_wall - saving)
    note = f"saves {saving:+.3f} s"
    return Row(trick, variant, run_wall - saving, ratio, math.nan, verdict(ratio, MARGIN), note)


# ----------------------------------------------------------------------------------------------------------


def link_sizes(cold: int, first: int, most: int) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    return lambda: patched(sim.model.link, _COLD=cold, _FIRST_OUTCOMES=first, _MAX_OUTCOMES=most)


def stream_sizes(**values: int) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    return lambda: patched(sim.core.rng, **values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each variant (default 5)")
    parser.add_argument("--messages", type=int, default=100_000, help="messages of (a)'s run")
    parser.add_argument("--small", type=int, default=50_000, help="messages of (b), (c) and (d)'s runs")
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--only", nargs="+", default=list("abcde"), choices=list("abcde"))
    args = parser.parse_args()
    link, rng = sim.model.link, sim.core.rng
    shipped_link = f"{link._COLD}/{link._FIRST_OUTCOMES}/{link._MAX_OUTCOMES}"
    shipped_rng = f"{rng.FIRST_BATCH}/{rng.BATCH}/{rng.HASHED_DRAWS}"
    p2p = bench_scale.scenario("point_to_point", args.messages, args.nodes)
    small_p2p = bench_scale.scenario("point_to_point", args.small, args.nodes)
    queue = bench_scale.scenario("queue", args.small, args.nodes)
    plans: dict[str, tuple[str, str, Scenario, list[Variant]]] = {
        "a": (
            "(a) cut-through",
            f"point-to-point, {args.messages:,} messages, BA graph of {args.nodes:,} nodes",
            p2p,
            [
                Variant("cut-through on (as shipped)"),
                Variant("off", prepare=cut_through_off, same_numbers=False),
            ],
        ),
        "b": (
            "(b) timer FIFOs",
            f"queue, at-least-once, {args.small:,} messages, BA graph of {args.nodes:,} nodes",
            queue,
            [
                Variant("FIFO per delay (as shipped)"),
                Variant("one event per timer", lambda: patched(sim.core.context, Timeouts=TimerPerEvent)),
            ],
        ),
        "c": (
            "(c) batch sizes",
            f"point-to-point, {args.small:,} messages, BA graph of {args.nodes:,} nodes; link "
            f"_COLD/_FIRST_OUTCOMES/_MAX_OUTCOMES = {shipped_link}, stream FIRST_BATCH/BATCH/HASHED_DRAWS = "
            f"{shipped_rng}",
            small_p2p,
            [
                Variant(f"link {shipped_link}, stream {shipped_rng} (as shipped)"),
                Variant("link 8/8/128", link_sizes(8, 8, 128)),
                Variant("link 256/256/8192", link_sizes(256, 256, 8192)),
                Variant("link 0/64/1024 (no cold phase)", link_sizes(0, 64, 1024)),
                Variant("link all cold (8 at a time)", link_sizes(2**62, 64, 1024)),
                Variant("stream FIRST_BATCH 8", stream_sizes(FIRST_BATCH=8)),
                Variant("stream FIRST_BATCH 1024", stream_sizes(FIRST_BATCH=1024)),
                Variant("stream BATCH 256", stream_sizes(BATCH=256)),
                Variant("stream BATCH 65536", stream_sizes(BATCH=65536)),
                Variant("stream HASHED_DRAWS 0", stream_sizes(HASHED_DRAWS=0), same_numbers=False),
                Variant("stream HASHED_DRAWS 512", stream_sizes(HASHED_DRAWS=512), same_numbers=False),
            ],
        ),
        "d": (
            "(d) minimal events",
            f"M/M/1 queue (bench_broker's), {2 * args.small:,} messages",
            mm1(2 * args.small),
            [
                Variant("Scheduled (as shipped)"),
                Variant("simpy.Timeout", lambda: patched(SimContext, call_later=call_later_with_timeout)),
            ],
        ),
    }
    table: list[Row] = []
    notes: list[str] = []
    reference_wall = None
    for key in "abcd":
        if key not in args.only:
            continue
        trick, workload, scenario, variants = plans[key]
        print(f"{trick}: {workload} ...", flush=True)
        m = measure(scenario, variants, args.repeats)
        rows, _ = rows_for(trick, variants, m)
        for v in variants:  # every run, so a reader can judge the spread
            walls = " ".join(f"{w:.2f}" for w in m.walls[v.name])
            cpus = " ".join(f"{c:.2f}" for c in m.cpus[v.name])
            print(f"  {v.name}: wall {walls} s; CPU {cpus} s", flush=True)
        table += rows
        if key == "a":
            reference_wall = rows[0].wall
    if "e" in args.only:
        print("(e) clock and heap micro-benchmarks ...", flush=True)
        if reference_wall is None:
            reference_wall = run_once(p2p, Variant("as shipped"))[0]
        rows, notes = micro(p2p, reference_wall, args.repeats)
        for line in notes:
            print("  " + line, flush=True)
        table += rows
    print()
    print(
        f"repeats: {args.repeats} per variant, alternating; ratio = median of the variant / median as shipped"
    )
    print("(wall; 'CPU' the same with the process's CPU time). Verdict: 'pays' when the ratio exceeds")
    print(f"1 + {MARGIN:.0%} + noise (1.4826 x MAD / median of the shipped code's walls), 'costs' when below")
    print(f"1 - that, else 'does not pay'; (e) from micro-benchmarks, against 1 + {MARGIN:.0%}.")
    print()
    width = max(len(r.variant) for r in table)
    print(f"{'trick':<20} {'variant':<{width}} {'wall s':>8} {'ratio':>6} {'CPU':>6}  verdict")
    for r in table:
        cpu = "" if math.isnan(r.cpu_ratio) else f"{r.cpu_ratio:.3f}"
        print(
            f"{r.trick:<20} {r.variant:<{width}} {r.wall:8.3f} {r.ratio:6.3f} {cpu:>6}  {r.verdict}  {r.note}"
        )


if __name__ == "__main__":
    main()
