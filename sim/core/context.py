"""The run context: everything one run owns, nothing global."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy

from sim.core.ledger import Ledger
from sim.core.message import Message
from sim.core.rng import RngStreams
from sim.core.scheduling import NORMAL, Scheduled, Scheduler, Timeouts, heap

__all__ = ["SimContext", "TraceRecord"]

TraceRecord = tuple[float, str, int, str, str]
"""(time, event, message id, node, detail) — one hop-level event, kept only when tracing."""


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
        self._heap, self._ids_of_events = heap(env)  # trick 2 of sim.core.scheduling
        self._ids = itertools.count(1)
        self._control_ids = itertools.count(-1, -1)

    @classmethod
    def from_seed(cls, seed: int, *, trace: bool = False) -> SimContext:
        """A fresh context: new environment at time 0, streams derived from ``seed``, empty ledger."""
        return cls(Scheduler(), RngStreams(seed), Ledger(), trace=trace)

    def next_id(self) -> int:
        """A new message id, unique within the run."""
        return next(self._ids)

    def call_later(self, delay: float, callback: Callable[[Any], None], value: Any = None) -> None:
        """Call ``callback(event)`` after ``delay`` seconds (``event._value`` is ``value``), in the same order
        as a ``simpy.Timeout`` made now would fire, with a minimal event (trick 1 of
        :mod:`sim.core.scheduling`)."""
        heappush(
            self._heap,
            (self.env.now + delay, NORMAL, next(self._ids_of_events), Scheduled(value, (callback,))),
        )

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

    def drop(self, msg: Message, reason: str, where: str = "", at: float | None = None) -> None:
        """A transmission of ``msg`` was dropped at ``where`` for ``reason`` (:meth:`Ledger.drop`: the
        one drop rule), traced at ``at`` (default: now; cut-through drops a message when it is sent)."""
        self.ledger.drop(msg, reason)
        if self.trace is not None:
            self.trace.append((self.env.now if at is None else at, "drop", msg.id, where, reason))

    def record(self, event: str, msg: Message, node: str, detail: Any = "") -> None:
        """Append a trace record if tracing is on."""
        if self.trace is not None:
            self.trace.append((self.env.now, event, msg.id, node, str(detail)))
