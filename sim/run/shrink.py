"""Shrink a failing run: the smallest scenario found that still breaks the same rule.

A run *fails* when :meth:`sim.run.simulate.RunResult.check` finds a violation. :func:`shrink` reduces,
in this order and by delta debugging (ddmin, Zeller and Hildebrandt 2002), keeping a candidate only when
its run still breaks the **same rule** (a violation whose ``rule`` is the same name, e.g. ``no_loss``;
which obligation breaks it may change):

1. **Nemeses made explicit.** Each ``[[nemesis]]`` is replaced by the faults it drew for the seed, as
   ``[[faults]]`` entries (:func:`sim.run.fault_plan.nemesis_draws`), so that removing one keeps the
   others exactly. The schedule is compared with the original one: the run is the same.
2. **The fault schedule.** ddmin over the ``[[faults]]`` entries; a fault given as two entries (a crash
   and the recover that ends it, a partition and its heal) is removed as one. The result is 1-minimal:
   removing any one fault left makes the rule hold. Then each fault left with a duration (``for``) is
   tried shorter, once, at 1/8, 1/4, 1/2 and 3/4 of it.
3. **The workload and the duration.** Producers and consumers (ddmin over a list of node ids, or a
   smaller count), then the rate and the duration, each tried at 1/8, 1/4, 1/2 and 3/4 of its value
   (the smallest that still fails is kept; a duration never ends before a fault starts).

Phases 2 and 3 repeat until a whole round changes nothing. Every run counts towards ``max_runs``; when
the bound is reached the best scenario so far is returned with ``bounded=True``. Candidates already
tried are not run again, and the search uses no randomness: the same input gives the same result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.config.scenario import Scenario
from sim.core.context import SimContext
from sim.core.errors import SimError
from sim.core.rng import RngStreams
from sim.model.faults.injector import FaultAction
from sim.model.faults.kinds import kind
from sim.run.build import build
from sim.run.checks import RULES, Violation
from sim.run.fault_plan import as_faults, nemesis_draws, plan
from sim.run.simulate import RunResult, simulate

__all__ = ["MAX_RUNS", "ShrinkResult", "Step", "shrink"]

MAX_RUNS = 200
"""The default bound on the number of runs a shrink may make (the first run included)."""

_FRACTIONS = (1 / 8, 1 / 4, 1 / 2, 3 / 4)


def _smaller(value: float, fraction: float) -> float:
    """``value * fraction`` to three significant digits (0.225 rather than 0.22499999999999998)."""
    return float(f"{value * fraction:.3g}")


@dataclass(frozen=True, slots=True)
class Step:
    """One accepted reduction: the phase (``nemesis``, ``faults``, ``producers``, ``consumers``, ``rate``,
    ``duration``), what changed, in words, and how many runs had been made when it was accepted."""

    phase: str
    change: str
    runs: int


@dataclass
class ShrinkResult:
    """What :func:`shrink` found.

    Attributes
    ----------
    scenario : the smallest failing scenario found (``trace`` as in the original).
    original : the scenario given.
    rule : the rule every kept candidate broke.
    violations : the minimal run's violations of ``rule`` (``violations[0]`` is shown first).
    result : the minimal scenario's run.
    runs : runs made, the first included.
    max_runs : the bound.
    bounded : whether the bound stopped the search before it was done.
    steps : the accepted reductions, in order.
    """

    scenario: Scenario
    original: Scenario
    rule: str
    violations: list[Violation]
    result: RunResult = field(repr=False)
    runs: int
    max_runs: int
    bounded: bool
    steps: list[Step]

    @property
    def violation(self) -> Violation:
        """The first violation of the rule in the minimal run."""
        return self.violations[0]


class _Bounded(Exception):
    """The run budget is spent."""


class _Search:
    """Runs candidates (each once), counts the runs and remembers the smallest failing one."""

    def __init__(
        self, rule: str, max_runs: int, search: Sequence[Path], progress: Callable[[Step], None] | None
    ) -> None:
        self.rule, self.max_runs, self.search, self.progress = rule, max_runs, search, progress
        self.runs = 0
        self.seen: dict[str, tuple[Scenario, RunResult, list[Violation]] | None] = {}
        self.steps: list[Step] = []
        self.shortened: set[str] = set()  # faults whose duration has been tried shorter
        self.best: tuple[Scenario, RunResult, list[Violation]] | None = None

    def breaks(self, data: dict[str, Any]) -> bool:
        """Whether the scenario ``data`` is valid and its run breaks the rule (then it becomes the best)."""
        key = json.dumps(data, sort_keys=True, default=repr)
        if key not in self.seen:
            self.seen[key] = self._run(data)
        outcome = self.seen[key]
        if outcome is not None:
            self.best = outcome
        return outcome is not None

    def _run(self, data: dict[str, Any]) -> tuple[Scenario, RunResult, list[Violation]] | None:
        try:
            scenario = Scenario.from_dict(data)
        except SimError:  # e.g. a recover left without its crash, a duration before a fault
            return None
        if self.runs >= self.max_runs:
            raise _Bounded
        self.runs += 1
        try:
            result = simulate(scenario, search=self.search)
        except SimError:  # valid alone, but not buildable (a fault names a node no longer there)
            return None
        found = [v for v in result.check() if v.rule == self.rule]
        return (scenario, result, found) if found else None

    def data(self) -> dict[str, Any]:
        """The smallest failing scenario so far, as plain values."""
        assert self.best is not None
        return self.best[0].to_dict()

    def accept(self, phase: str, change: str) -> None:
        step = Step(phase, change, self.runs)
        self.steps.append(step)
        if self.progress is not None:
            self.progress(step)


def shrink(
    scenario: Scenario,
    *,
    rule: str | None = None,
    max_runs: int = MAX_RUNS,
    search: Sequence[Path] = (),
    progress: Callable[[Step], None] | None = None,
) -> ShrinkResult:
    """The smallest scenario found whose run still breaks ``rule``.

    Parameters
    ----------
    scenario : a scenario whose run fails its check.
    rule : the rule to keep broken (one of :data:`sim.run.checks.RULES`); default: the rule of the run's
        first violation (rules in the order of ``RULES``).
    max_runs : at most this many runs, the first included (>= 1).
    search : folders searched for topologies given by name (as :func:`sim.run.simulate.simulate`).
    progress : called with each accepted :class:`Step`.

    Raises
    ------
    SimError
        When the run does not fail its check, breaks no ``rule``, or ``rule`` or ``max_runs`` is not
        allowed.
    """
    if rule is not None and rule not in RULES:
        raise SimError("rule", rule, "one of " + ", ".join(RULES))
    if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
        raise SimError("max_runs", max_runs, "a whole number >= 1")
    first = simulate(scenario, search=search)
    violations = first.check()
    if not violations:
        raise SimError(
            "scenario",
            _name(scenario),
            f"a run that fails its check (every {scenario.delivery.guarantee} promise held: "
            "nothing to shrink)",
        )
    broken = sorted({v.rule for v in violations}, key=RULES.index)
    if rule is None:
        rule = broken[0]
    elif rule not in broken:
        raise SimError("rule", rule, "a rule the run breaks: " + ", ".join(broken))
    s = _Search(rule, max_runs, search, progress)
    s.runs = 1
    s.best = (scenario, first, [v for v in violations if v.rule == rule])
    bounded = False
    try:
        _explicit(s, scenario, search)
        changed = True
        while changed:  # each phase starts from the smallest failing scenario so far
            changed = _faults(s)
            changed = _windows(s) or changed
            changed = _workload(s) or changed
            changed = _duration(s) or changed
    except _Bounded:
        bounded = True
    best, result, found = s.best
    return ShrinkResult(best, scenario, rule, found, result, s.runs, max_runs, bounded, s.steps)


def _name(scenario: Scenario) -> str:
    return f"{scenario.pattern}, seed {scenario.seed}"


# -- 1. nemeses as explicit faults ----------------------------------------------------------------------
def _explicit(s: _Search, scenario: Scenario, search: Sequence[Path]) -> None:
    """Replace every nemesis by its draws, when that schedules exactly the same faults (the same run)."""
    if not scenario.nemesis:
        return
    data = scenario.to_dict()
    world = build(SimContext.from_seed(scenario.seed), scenario, search=search)  # nothing runs
    assert world.faults is not None  # build gives every world its injector

    def schedule(sc: Scenario, *, drawn: bool = False) -> list[FaultAction]:
        how = nemesis_draws if drawn else plan
        return how(  # fresh streams: the world's have made their draws already
            sc,
            world.graph,
            RngStreams(sc.seed),
            broker=world.default_broker,
            producers=world.workload.producers,
            consumers=world.workload.consumers,
        )

    drawn = schedule(scenario, drawn=True)
    before = _schedule(world.faults.actions)  # the schedule the run follows, in time order
    candidate = {**data, "faults": [*data["faults"], *as_faults(drawn)], "nemesis": []}
    try:
        explicit = Scenario.from_dict(candidate)
        after = _schedule(sorted(schedule(explicit), key=lambda a: a.at))  # ordered as the injector does
    except SimError as exc:  # the draws clash with the scheduled faults (a crash of a node already down)
        s.accept("nemesis", f"kept the nemeses as they are: their draws are no valid schedule ({exc})")
        return
    if after != before:  # cannot happen unless a target does not resolve to itself; keep what is exact
        s.accept("nemesis", "kept the nemeses as they are: their draws do not resolve to the same faults")
        return
    assert s.best is not None
    s.best = (explicit, s.best[1], s.best[2])
    n = len(scenario.nemesis)
    s.accept(
        "nemesis", f"{n} {'nemesis' if n == 1 else 'nemeses'} made explicit: {len(drawn)} fault(s) drawn"
    )


def _schedule(actions: Sequence[FaultAction]) -> list[tuple[Any, ...]]:
    """The schedule without the names of the entries the actions came from."""
    return [(a.at, a.action, a.targets, dict(a.params), a.duration) for a in actions]


# -- 2. the fault schedule ---------------------------------------------------------------------------------
def _faults(s: _Search) -> bool:
    data = s.data()
    faults: list[dict[str, Any]] = data["faults"]
    units = _units(faults)
    if not units:
        return False

    def breaks(kept: list[list[int]]) -> bool:
        chosen = sorted(i for unit in kept for i in unit)
        return s.breaks({**data, "faults": [faults[i] for i in chosen]})

    kept = _ddmin(units, breaks)
    if len(kept) == len(units):
        return False
    left = {i for unit in kept for i in unit}
    removed = [_describe(faults[i]) for i in range(len(faults)) if i not in left]
    s.accept(
        "faults",
        f"{len(left)} of {len(faults)} fault entries kept; removed: " + "; ".join(removed),
    )
    return True


def _windows(s: _Search) -> bool:
    """Each fault with a duration (``for``) as short as it still fails: 1/8, 1/4, 1/2 or 3/4 of it. Once
    per fault: a crash of any length can lose what its node held, and would shrink towards nothing."""
    changed = False
    for i in range(len(s.data()["faults"])):
        data = s.data()
        faults: list[dict[str, Any]] = data["faults"]
        key = json.dumps([faults[i]["at"], faults[i]["action"], faults[i].get("target")])
        length = faults[i].get("for")
        if length is None or key in s.shortened:
            continue
        s.shortened.add(key)
        for fraction in _FRACTIONS:
            shorter = _smaller(length, fraction)
            entry = {**faults[i], "for": shorter}
            if 0 < shorter < length and s.breaks({**data, "faults": [*faults[:i], entry, *faults[i + 1 :]]}):
                s.accept("faults", f"{_describe(faults[i])} -> for {shorter:g} s")
                changed = True
                break
    return changed


def _units(faults: Sequence[dict[str, Any]]) -> list[list[int]]:
    """Fault entries grouped into faults: an entry that opens a fault without ``for`` goes with the first
    later entry that ends it on the same target (a crash with its recover, a partition with its heal)."""
    order = sorted(range(len(faults)), key=lambda i: faults[i]["at"])
    paired: set[int] = set()
    units: dict[int, list[int]] = {}
    for i in order:
        if i in paired:
            continue
        f = faults[i]
        units[i] = [i]
        undo = kind(f["action"]).inverse
        if undo is None or "for" in f:
            continue
        for j in order:
            g = faults[j]
            free = j not in paired and j not in units
            if free and g["action"] == undo and g["at"] >= f["at"] and _targets(g) == _targets(f):
                units[i].append(j)
                paired.add(j)
                break
    return [sorted(u) for _, u in sorted(units.items())]


def _targets(f: dict[str, Any]) -> list[str]:
    target = f.get("target")
    return [] if target is None else [target] if isinstance(target, str) else list(target)


def _describe(f: dict[str, Any]) -> str:
    target = ",".join(_targets(f)) or "network"
    span = f" for {f['for']:g} s" if "for" in f else ""
    return f"{f['action']} {target} at {f['at']:g} s{span}"


def _ddmin(units: list[Any], breaks: Callable[[list[Any]], bool]) -> list[Any]:
    """A 1-minimal sublist of ``units`` (order kept) for which ``breaks`` holds; ``breaks(units)`` is
    assumed. The empty list is tried first."""
    if breaks([]):
        return []
    n = 2
    while len(units) >= 2:
        size = len(units) / n
        chunks = [units[round(k * size) : round((k + 1) * size)] for k in range(n)]
        for chunk in chunks:
            if chunk and len(chunk) < len(units) and breaks(chunk):
                units, n = chunk, 2
                break
        else:
            for k in range(n):
                rest = [u for c, chunk in enumerate(chunks) if c != k for u in chunk]
                if len(rest) < len(units) and breaks(rest):
                    units, n = rest, max(n - 1, 2)
                    break
            else:
                if n >= len(units):
                    break
                n = min(len(units), 2 * n)
    return units


# -- 3. the workload and the duration --------------------------------------------------------------------
def _workload(s: _Search) -> bool:
    changed = False
    for who in ("producers", "consumers"):
        data = s.data()
        value = data["workload"][who]

        def breaks(v: Any, who: str = who, data: dict[str, Any] = data) -> bool:
            return s.breaks({**data, "workload": {**data["workload"], who: v}})

        if isinstance(value, list):
            kept = _ddmin_nonempty(value, breaks)
            if len(kept) < len(value):
                dropped = [n for n in value if n not in kept]
                s.accept(who, f"{who} {', '.join(value)} -> {', '.join(kept)} (removed {', '.join(dropped)})")
                changed = True
        else:
            for count in sorted({1, value // 4, value // 2, value - 1} - {0}):
                if count < value and breaks(count):
                    s.accept(who, f"{who} {value} -> {count}")
                    changed = True
                    break
    data = s.data()
    rate = data["workload"]["rate"]
    for fraction in _FRACTIONS:
        smaller = _smaller(rate, fraction)
        if smaller < rate and s.breaks({**data, "workload": {**data["workload"], "rate": smaller}}):
            s.accept("rate", f"rate {rate:g}/s -> {smaller:g}/s per producer")
            return True
    return changed


def _ddmin_nonempty(value: list[str], breaks: Callable[[list[str]], bool]) -> list[str]:
    """ddmin over a list that must keep one element (a workload's producers or consumers)."""
    if len(value) < 2:
        return value
    kept = _ddmin(value, lambda sub: bool(sub) and breaks(sub))
    return kept or value


def _duration(s: _Search) -> bool:
    data = s.data()
    duration = data["duration"]
    for fraction in _FRACTIONS:  # a candidate ending before a fault or the warm-up is invalid, not run
        smaller = _smaller(duration, fraction)
        if smaller < duration and s.breaks({**data, "duration": smaller}):
            s.accept("duration", f"duration {duration:g} s -> {smaller:g} s")
            return True
    return False
