"""The run context: everything one run owns, nothing global."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL

from sim.ledger import Ledger
from sim.message import Message
from sim.rng import RngStreams

__all__ = ["Scheduled", "SimContext", "Timeouts", "TraceRecord"]

TraceRecord = tuple[float, str, int, str, str]
"""(time, event, message id, node, detail) — one hop-level event, kept only when tracing."""


class Scheduled:
    """The least a SimPy event needs to be processed by ``Environment.step``: its callbacks (a one-element
    tuple, made once per callback where it can be), its value, and ``_ok`` (always true). Service completions,
    producers' sends and timers use it instead of ``simpy.Timeout``, whose constructor and ``schedule`` call
    cost more than the work they carry; see :meth:`SimContext.call_later`. (A message in flight needs none:
    it is its own event, see :meth:`sim.network.Network.send`.)"""

    __slots__ = ("_value", "callbacks")
    _ok = True

    def __init__(self, value: Any, callbacks: tuple[Callable[[Any], None]]) -> None:
        self._value = value
        self.callbacks: tuple[Callable[[Any], None]] | None = callbacks


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
        env: simpy.Environment,
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
        deadline = env._now + self.delay
        self._due.append((deadline, value))
        if not self._armed:
            self._armed = True
            heappush(env._queue, (deadline, NORMAL, next(env._eid), Scheduled(None, self._fire_cb)))  # type: ignore[misc]

    def _fire(self, _: Any) -> None:
        env, due, callback, alive = self._env, self._due, self.callback, self._alive
        now = env._now
        while due and due[0][0] <= now:
            callback(due.popleft()[1])  # may start new timers: they are due after the ones waiting
        if alive is not None:
            while due and not alive(due[0][1]):
                due.popleft()
        if due:
            heappush(env._queue, (due[0][0], NORMAL, next(env._eid), Scheduled(None, self._fire_cb)))  # type: ignore[misc]
        else:
            self._armed = False


class SimContext:
    """One run's SimPy environment, random streams, ledger and message ids.

    Parameters
    ----------
    env : simpy.Environment
    rng : RngStreams
    ledger : Ledger
    trace : bool
        Keep hop-by-hop events in :attr:`trace` (costly; for small runs and tests).
    """

    def __init__(
        self, env: simpy.Environment, rng: RngStreams, ledger: Ledger, *, trace: bool = False
    ) -> None:
        self.env = env
        self.rng = rng
        self.ledger = ledger
        self.trace: list[TraceRecord] | None = [] if trace else None
        self.pending = 0
        """Work that still matters for accounting (unacknowledged sends); the drain waits for 0."""
        self._ids = itertools.count(1)
        self._control_ids = itertools.count(-1, -1)

    @classmethod
    def from_seed(cls, seed: int, *, trace: bool = False) -> SimContext:
        """A fresh context: new environment at time 0, streams derived from ``seed``, empty ledger."""
        return cls(simpy.Environment(), RngStreams(seed), Ledger(), trace=trace)

    @property
    def now(self) -> float:
        """Current simulated time in seconds."""
        return float(self.env.now)

    def next_id(self) -> int:
        """A new message id, unique within the run."""
        return next(self._ids)

    def call_later(self, delay: float, callback: Callable[[Any], None], value: Any = None) -> None:
        """Call ``callback(event)`` after ``delay`` seconds (``event._value`` is ``value``), in the same order
        as a ``simpy.Timeout`` made now would fire: the queue entry is exactly what ``Environment.schedule``
        writes (SimPy 4's ``_queue``, ``_now`` and ``_eid``)."""
        env = self.env
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), Scheduled(value, (callback,))))  # type: ignore[misc]

    def timeouts(
        self, delay: float, callback: Callable[[Any], None], alive: Callable[[Any], bool] | None = None
    ) -> Timeouts:
        """A new :class:`Timeouts` for ``delay`` seconds calling ``callback(value)``."""
        return Timeouts(self.env, delay, callback, alive)

    def next_control_id(self) -> int:
        """A new id for control traffic (negative), so data message ids depend on the workload only."""
        return next(self._control_ids)

    def quiet(self) -> bool:
        """True when no obligation is open and no sender waits for an acknowledgement."""
        return self.ledger.open_count == 0 and self.pending == 0

    def drop(self, msg: Message, reason: str, where: str = "") -> None:
        """Account for a dropped transmission.

        An unreliable transmission loses its obligations for ``reason``; a reliable one only notes the
        reason (its sender will retry, and gives up with that reason). Control traffic is counted.
        """
        ledger = self.ledger
        if msg.control:
            ledger.control_dropped += 1
        else:
            for row in msg.obligations():
                if msg.reliable:
                    ledger.note(row, reason)
                else:
                    ledger.lose(row, reason)
        if self.trace is not None:
            self.trace.append((self.env.now, "drop", msg.id, where, reason))

    def record(self, event: str, msg: Message, node: str, detail: Any = "") -> None:
        """Append a trace record if tracing is on."""
        if self.trace is not None:
            self.trace.append((self.env.now, event, msg.id, node, str(detail)))
