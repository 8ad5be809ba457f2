"""The one seam to SimPy's scheduler: every use of SimPy's internals lives here.

SimPy's ``Environment`` keeps its future in a heap, ``_queue``, of entries ``(time, priority, eid, event)``;
``Environment.step`` pops the earliest, sets ``_now`` and calls ``event.callbacks`` with the event, then
looks at ``event._ok``. The hot path of a run leans on that contract in the ways listed below, and on nothing
else; the rest of ``sim`` uses SimPy's public API (``env.now``, ``env.schedule``, ``env.run``, events and
processes) or the names exported here. A test fails if ``_queue``, ``_eid`` or ``_now`` appears in any other
file (tests included), and :func:`_check` refuses, at import, a SimPy whose internals differ.

The tricks, who uses them, and what each is worth (``benchmarks/README.md``, "Each trick alone"):

1. **Minimal events.** :class:`Scheduled` has just what ``step`` reads (``callbacks``, ``_value``,
   ``_ok``); it replaces ``simpy.Timeout`` for service completions, producers' sends and timers
   (:meth:`sim.core.context.SimContext.call_later`). A message in flight is its own event the same way
   (:class:`sim.core.message.Message` has ``callbacks`` and ``_ok``), so a hop allocates nothing
   (:meth:`sim.model.network.Network.hop`, :meth:`sim.model.cut_through.CutThrough.send`).
2. **Heap handles.** :func:`heap` hands out the event heap and the event-id counter, so that the hottest
   call sites push an entry exactly as ``Environment.schedule`` would, without its call (a message's hop in
   :meth:`sim.model.network.Network.hop` and :meth:`sim.model.cut_through.CutThrough.send`,
   :meth:`sim.core.context.SimContext.call_later`); :func:`schedule_at` puts an event at an absolute time
   without the round trip ``now + (at - now)``, which can differ from ``at`` in the last bit
   (:class:`Timeouts`).
3. **Timer FIFOs.** :class:`Timeouts`: timers that all run for the same delay wait in a FIFO and only the
   earliest live one has an event (retransmission timeouts in :class:`sim.patterns.base.Delivery`, the
   broker's ack timeout).
4. **Looking into the future.** :func:`queued` yields the events waiting in the heap with their times, and
   :func:`reschedule` moves some of them: cut-through, when it stops, brings a message under way over
   several links back to the end of the link it is on, so that it meets the network's checks at every
   node from there (:meth:`sim.model.cut_through.CutThrough.stop`); tests count messages in flight.
5. **Counting events.** :func:`events_scheduled`: how many events a run has scheduled so far (benchmarks and
   tests of the timer FIFOs).
6. **A clock that is a plain attribute.** :class:`Scheduler`, the environment of every run
   (:meth:`sim.core.context.SimContext.from_seed`), is SimPy's ``Environment`` whose ``step`` also stores the
   time in a plain ``now`` attribute, so that reading the clock (a dozen times per message) costs an
   attribute load instead of a property call. Code written against ``simpy.Environment`` reads ``env.now``
   either way. SimPy binds its event classes (``timeout``, ``event``, ``process``, ...) to each environment
   at creation, but only those its class itself defines: ``Scheduler`` binds its base class's too, or every
   ``env.timeout`` would make a bound method.

Everything else schedules through SimPy's public API.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from heapq import heapify, heappop, heappush
from itertools import count
from types import MethodType
from typing import Any

import simpy
from simpy.core import BoundClass, EmptySchedule, Environment, StopSimulation
from simpy.events import NORMAL, EventPriority

__all__ = [
    "NORMAL",
    "SIMPY_VERSIONS",
    "Scheduled",
    "Scheduler",
    "Timeouts",
    "events_scheduled",
    "heap",
    "queued",
    "reschedule",
    "schedule_at",
]

SIMPY_VERSIONS = (">=4.1", "<4.2")
"""The SimPy releases this seam was written against (``pyproject.toml`` pins the same range)."""


class Scheduled:
    """The least a SimPy event needs to be processed by ``Environment.step``: its callbacks (a one-element
    tuple, made once per callback where it can be), its value, and ``_ok`` (always true)."""

    __slots__ = ("_value", "callbacks")
    _ok = True

    def __init__(self, value: Any, callbacks: tuple[Callable[[Any], None]]) -> None:
        self._value = value
        self.callbacks: tuple[Callable[[Any], None]] | None = callbacks


class Scheduler(Environment):
    """SimPy's ``Environment`` with the clock in a plain attribute (trick 6): ``step`` is SimPy 4.1's, plus
    one store of ``now``."""

    now: float = 0.0  # shadows the base class's property

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        self.now = initial_time
        for name, obj in Environment.__dict__.items():  # SimPy's early binding, for the base class's
            if type(obj) is BoundClass:
                setattr(self, name, MethodType(obj.cls, self))

    def step(self) -> None:
        try:
            now, _, _, event = heappop(self._queue)
        except IndexError:
            raise EmptySchedule from None
        self._now = self.now = now
        callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
        try:
            for callback in callbacks:
                callback(event)
        except StopSimulation:
            event.callbacks = callbacks[callbacks.index(callback) + 1 :]
            self.schedule(event, EventPriority(-1))  # SimPy's own: before anything else at this time
            raise
        if not event._ok and not hasattr(event, "_defused"):
            exc = type(event._value)(*event._value.args)
            exc.__cause__ = event._value
            raise exc


def heap(env: Environment) -> tuple[list[tuple[float, int, int, Any]], Iterator[int]]:
    """``env``'s event heap and event-id counter (trick 2): ``heappush(queue, (now + delay, NORMAL,
    next(ids), event))`` is exactly ``env.schedule(event, NORMAL, delay)``."""
    return env._queue, env._eid  # type: ignore[return-value]


def schedule_at(env: Environment, at: float, event: Any) -> None:
    """Schedule ``event`` (with ``callbacks`` and ``_ok``) at the absolute time ``at``, exactly as
    ``Environment.schedule`` would with the delay ``at - now`` were floating point exact."""
    heappush(env._queue, (at, NORMAL, next(env._eid), event))


def queued(env: Environment) -> Iterator[tuple[float, Any]]:
    """``(time, event)`` of the events waiting in ``env``'s heap, in no particular order."""
    for entry in env._queue:
        yield entry[0], entry[3]


def reschedule(env: Environment, moves: Mapping[Any, float]) -> None:
    """Move each waiting event of ``moves`` to its new time (keeping its priority and id, so that ties keep
    their order); one pass over the heap."""
    queue = env._queue
    for i, (at, priority, eid, event) in enumerate(queue):
        new = moves.get(event)
        if new is not None and new != at:
            queue[i] = (new, priority, eid, event)
    heapify(queue)


def events_scheduled(env: Environment) -> int:
    """How many events ``env`` has scheduled so far (the next event id; reading it uses one id up, which
    only shifts the ids of later events, never their order)."""
    return next(env._eid)


class Timeouts:
    """Timers that all run for the same ``delay``: ``start(value)`` calls ``callback(value)`` ``delay``
    seconds later, unless ``alive(value)`` says by then that the timer no longer matters.

    Timers started at ``now + delay`` expire in the order they were started, so they wait in a FIFO and
    only the earliest live one has an event in SimPy's queue: the heap stays small, and a timer that
    stopped mattering (an acknowledged send) costs a deque entry instead of an event. ``alive`` must
    stay false once it is false (it is asked when the timer would next get an event). Each timer
    expires at exactly its start time + ``delay``; timers due at the same instant run in start order.
    """

    __slots__ = ("_alive", "_armed", "_due", "_env", "_fire_cb", "callback", "delay")

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
        self._alive = alive
        self._due: deque[tuple[float, Any]] = deque()
        self._armed = False
        self._fire_cb: tuple[Callable[[Any], None]] = (self._fire,)

    def __len__(self) -> int:
        """Timers started and not yet expired or found dead."""
        return len(self._due)

    def start(self, value: Any = None) -> None:
        env = self._env
        deadline = env.now + self.delay
        self._due.append((deadline, value))
        if not self._armed:
            self._armed = True
            schedule_at(env, deadline, Scheduled(None, self._fire_cb))

    def _fire(self, _: Any) -> None:
        env, due, callback, alive = self._env, self._due, self.callback, self._alive
        now = env.now
        while due and due[0][0] <= now:
            callback(due.popleft()[1])  # may start new timers: they are due after the ones waiting
        if alive is not None:
            while due and not alive(due[0][1]):
                due.popleft()
        if due:
            schedule_at(env, due[0][0], Scheduled(None, self._fire_cb))
        else:
            self._armed = False


def _check() -> None:
    """Refuse a SimPy whose scheduler differs from what the tricks above rely on."""
    version = getattr(simpy, "__version__", "")
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        major = minor = -1
    if (major, minor) != (4, 1):
        raise ImportError(
            f"sim needs SimPy {','.join(SIMPY_VERSIONS)} (its scheduler internals are used in "
            f"sim/core/scheduling.py); this is SimPy {version or 'of unknown version'}"
        )
    env = Environment()
    if not (
        isinstance(getattr(env, "_queue", None), list)
        and isinstance(getattr(env, "_eid", None), count)
        and getattr(env, "_now", None) == 0
    ):
        raise ImportError("sim: SimPy's Environment no longer has _queue (a list), _eid (a counter) and _now")
    seen: list[float] = []
    env.schedule(Scheduled(None, (lambda _: seen.append(env.now),)), NORMAL, 2.0)  # type: ignore[arg-type]
    schedule_at(env, 1.0, Scheduled(None, (lambda _: seen.append(env.now),)))
    env.run()
    if seen != [1.0, 2.0]:
        raise ImportError("sim: SimPy's Environment.step no longer runs minimal events (callbacks and _ok)")
    steps = getattr(Environment.step, "__code__", None)
    if steps is None or steps.co_names != _SIMPY_STEP_NAMES:
        raise ImportError("sim: SimPy's Environment.step changed; sim.core.scheduling.Scheduler copies it")


_SIMPY_STEP_NAMES = (
    "heappop", "_queue", "_now", "IndexError", "EmptySchedule", "callbacks", "StopSimulation", "index",
    "schedule", "EventPriority", "_ok", "hasattr", "type", "_value", "args", "__cause__",
)  # fmt: skip
"""The names SimPy 4.1's ``Environment.step`` uses, in order: the import check compares them."""


_check()
