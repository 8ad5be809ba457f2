"""Fault schedules, nemeses and their injection.

A schedule is data: :class:`FaultAction` records (time, action, targets, parameters). An action with a
duration (``for``) is followed by its inverse (``crash`` → ``recover``, ``partition`` → ``heal``, a window →
its end). A nemesis draws a random schedule from its own stream before the run starts, so the same seed
gives every pattern the same fault timeline. The :class:`FaultInjector` applies the merged schedule in
one process and keeps the fault log.

Vocabulary (after Jepsen and Maelstrom): ``crash``, ``recover``, ``pause``, ``resume`` (nodes);
``link_down``, ``link_up`` (links); ``partition`` (groups, symmetric or one-way), ``heal``; windows on
links: ``latency`` (``add`` seconds and/or ``factor``), ``loss`` (Bernoulli ``p``, or Gilbert–Elliott
``p_gb``, ``p_bg``, ``loss_good``, ``loss_bad``), ``duplicate`` (``probability``), ``reorder`` (``jitter``).
What each kind does, undoes and clashes with is declared in :mod:`sim.model.faults.kinds`; this module
only dispatches through that registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sim.core.context import SimContext
from sim.core.errors import SimError
from sim.core.rng import Stream
from sim.model.faults.kinds import DOWN, KINDS, NODES, FaultModel, condition_key, inverse
from sim.model.faults.kinds import kind as fault_kind
from sim.model.network import Network
from sim.model.node import Node

__all__ = [
    "FaultAction",
    "FaultInjector",
    "FaultRecord",
    "down_intervals",
    "expand",
    "fault_spans",
    "fault_windows",
    "nemesis_schedule",
    "validate",
]

FaultRecord = tuple[float, str, str, str]
"""(time, action, target, detail) — one line of the fault log."""


@dataclass(frozen=True, slots=True)
class FaultAction:
    """One scheduled fault. ``targets`` holds node ids, or ``(u, v)`` link pairs for link actions."""

    at: float
    action: str
    targets: tuple[Any, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    duration: float | None = None
    source: str = "schedule"

    def describe(self) -> str:
        """The targets as text: ``n1,n2`` or ``a->b``."""
        return ",".join(f"{t[0]}->{t[1]}" if isinstance(t, tuple) else str(t) for t in self.targets)


def expand(actions: Sequence[FaultAction]) -> list[FaultAction]:
    """Add the inverse of every action with a duration; sort by time (stable for equal times)."""
    out = list(actions)
    for a in actions:
        if a.duration is not None:
            out.append(FaultAction(a.at + a.duration, inverse(a.action), a.targets, a.params, None, a.source))
    return sorted(out, key=lambda a: a.at)


def validate(actions: Sequence[FaultAction], duration: float, where: str = "faults") -> None:
    """Reject schedules that contradict themselves: crashing a crashed node, recovering a live one,
    healing without a partition, overlapping windows of one kind on one link, actions after the run."""
    for i, a in enumerate(actions):
        if not 0 <= a.at < duration:
            raise SimError(f"{where}[{i}].at", a.at, f"a time in [0, duration) = [0, {duration:g}) s")
    conditions: set[tuple[str, Any]] = set()  # (condition, target): ("down", "h0"), ("latency", ("a", "b"))
    index = {id(a): i for i, a in enumerate(actions)}
    lasting = {a.source: a.duration for a in actions if a.duration is not None}
    for a in expand(actions):
        pos = index.get(id(a))
        # the end of a 'for' window is blamed on the entry that asked for it (its source, e.g. faults[2])
        value: object
        if pos is not None:
            field, value, what = f"{where}[{pos}].action", a.action, "an action"
        else:
            field, value, what = (
                f"{a.source}.for",
                lasting.get(a.source),
                f"a window whose end ({a.action}) is",
            )
        k = fault_kind(a.action)
        for t in k.each_target(a.targets):
            target = condition_key(k, t)
            if k.clashes(conditions, target):
                raise SimError(
                    field, value, f"{what} consistent with {target!r} being {k.clash} at {a.at:g} s"
                )
            k.track(conditions, target)


# -- nemeses --------------------------------------------------------------------------------------------
def nemesis_schedule(
    kind: str,
    stream: Stream,
    *,
    nodes: Sequence[str],
    links: Sequence[tuple[str, str]],
    mttf: float,
    mttr: float,
    start: float,
    stop: float,
    mode: str = "halves",
    fraction: float = 0.1,
    loss: float = 0.2,
    name: str = "nemesis",
) -> list[FaultAction]:
    """A random fault timeline drawn from ``stream``; faults begin in ``[start, stop)``.

    - ``crash``: each node in ``nodes`` alternates up (exponential, mean ``mttf``) and down (mean ``mttr``).
    - ``partition``: after an exponential wait (mean ``mttf``) the nodes are split — ``one`` isolates a
      random node, ``majority`` cuts a random minority off, ``halves`` splits them at random in two —
      and healed after an exponential time (mean ``mttr``); then again.
    - ``flaky_links``: the same rhythm, each time a random ``fraction`` of ``links`` loses ``loss``.
    """
    out: list[FaultAction] = []
    if kind == "crash":
        for node in nodes:
            t = start + stream.exponential(mttf)
            while t < stop:
                down = stream.exponential(mttr)
                out.append(FaultAction(t, "crash", (node,), {}, down, name))
                t += down + stream.exponential(mttf)
        return sorted(out, key=lambda a: a.at)
    t = start + stream.exponential(mttf)
    while t < stop:
        length = stream.exponential(mttr)
        if kind == "partition":
            order = sorted(nodes, key=lambda _: stream.random())
            size = {"one": 1, "majority": (len(order) - 1) // 2, "halves": len(order) // 2}[mode]
            groups = [
                order[: max(size, 1)]
            ]  # the rest (switches and other untargeted nodes too) is the other side
            out.append(FaultAction(t, "partition", (), {"groups": groups, "one_way": False}, length, name))
        else:
            count = max(1, round(fraction * len(links)))
            chosen = tuple(sorted(links, key=lambda _: stream.random())[:count])
            out.append(FaultAction(t, "loss", chosen, {"p": loss}, length, name))
        t += length + stream.exponential(mttf)
    return out


# -- injection --------------------------------------------------------------------------------------------
class FaultInjector:
    """Applies a fault schedule to a built model and logs what it did.

    Parameters
    ----------
    ctx : SimContext
    network : Network
    node : callable
        Node lookup (``AssembledWorld.node``): nodes are created on first use.
    actions : sequence of FaultAction
        The schedule, already expanded and merged (see :func:`expand`).
    """

    def __init__(
        self, ctx: SimContext, network: Network, node: Callable[[str], Node], actions: Sequence[FaultAction]
    ) -> None:
        self.ctx = ctx
        self.network = network
        self.node = node
        self.actions = sorted(actions, key=lambda a: a.at)
        self.log: list[FaultRecord] = []
        self.model = FaultModel(network, node)

    def start(self) -> None:
        """Schedule the injector's process."""
        for a in self.actions:  # nodes named by the schedule exist from the start (a crash needs one)
            if fault_kind(a.action).targets == NODES:
                for t in a.targets:
                    self.node(t)
        if self.actions:
            self.ctx.env.process(self._run())

    def _run(self) -> Any:
        env = self.ctx.env
        for a in self.actions:
            if a.at > env.now:
                yield env.timeout(a.at - env.now)
            self.apply(a)

    def apply(self, a: FaultAction) -> None:
        """Carry out one action now and log it."""
        k = fault_kind(a.action)
        for t in k.each_target(a.targets):
            k.apply(self.model, t, a.params)
        detail = ";".join(f"{k}={v}" for k, v in sorted(a.params.items()))
        self.log.append((self.ctx.env.now, a.action, a.describe() or "network", detail))
        if self.ctx.trace is not None:
            self.ctx.trace.append((self.ctx.env.now, "fault", 0, a.describe() or "network", a.action))


def fault_spans(log: Sequence[FaultRecord], end: float) -> list[tuple[float, float, str, str]]:
    """(start, end, action, target) of every fault in the log, sorted: a crash or pause until its target is
    back, a link down until up, a partition until healed, a window until its end; faults still open end at
    ``end``."""
    closing = {k.inverse: k.name for k in KINDS.values() if k.inverse is not None}
    opened: dict[tuple[str, str], float] = {}
    out: list[tuple[float, float, str, str]] = []
    for t, action, target, _ in log:
        if action in closing:
            start = opened.pop((closing[action], target), None)
            if start is not None:
                out.append((start, t, closing[action], target))
        else:
            opened.setdefault((action, target), t)
    out += [(t, end, action, target) for (action, target), t in opened.items()]
    return sorted(out)


def fault_windows(log: Sequence[FaultRecord], end: float) -> list[tuple[float, float]]:
    """(start, end) of every fault in the log (:func:`fault_spans` without action nor target)."""
    return [(start, stop) for start, stop, _, _ in fault_spans(log, end)]


def down_intervals(log: Sequence[FaultRecord], end: float) -> dict[str, list[tuple[float, float]]]:
    """Per node, the intervals it was down (crash → recover, or the end of the run): from a kind that opens
    the ``down`` condition of a node until its inverse."""
    downs = {k.name for k in KINDS.values() if k.targets == NODES and k.opens == DOWN}
    ups = {k.inverse for k in KINDS.values() if k.name in downs}
    open_at: dict[str, float] = {}
    out: dict[str, list[tuple[float, float]]] = {}
    for t, action, target, _ in log:
        for node in target.split(","):
            if action in downs and node not in open_at:
                open_at[node] = t
            elif action in ups and node in open_at:
                out.setdefault(node, []).append((open_at.pop(node), t))
    for node, t in open_at.items():
        out.setdefault(node, []).append((t, end))
    return out
