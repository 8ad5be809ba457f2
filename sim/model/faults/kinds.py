"""The fault-kind registry: what each fault does, declared in one place.

Every action a fault schedule can hold is a :class:`FaultKind` in :data:`KINDS`, and everything that
handles faults dispatches through it: the scenario's ``[[faults]]`` validation (which actions exist, which
parameters each takes and how they are parsed), target resolution (nodes, links or the whole network), the
schedule's clash check, ``for`` (the inverse), the injector (``apply``) and the fault log's windows. No
other module names a fault kind.

A kind declares

- ``name`` and ``targets`` (:data:`NODES`, :data:`LINKS` or :data:`NETWORK`);
- ``params``: each a :class:`Param` with the parser that validates it (a duration, a probability, ...);
  ``check`` adds rules between parameters (a loss window needs ``p`` or ``p_gb`` and ``p_bg``);
- ``inverse``: the kind that undoes it (``crash`` → ``recover``); ``for`` schedules it;
- its clash rule as conditions on a target: ``opens`` a condition (``down``), ``closes`` some, and the
  schedule is refused when the target is in a ``refused_in`` condition, or not in ``requires``;
- ``apply(model, target, params)``: what it does, through the existing :class:`Node`, :class:`Network` and
  :class:`Link` methods, once per target (once with ``None`` for a network kind).

A window on links is declared with :func:`window`, which registers the window and its end
(``<name>_end``) together. :func:`register` and :func:`unregister` add and remove kinds (a test's toy kind
included); docs/faults.md says how to add one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from sim.core.errors import SimError
from sim.core.units import parse_duration, parse_probability
from sim.model.link import GilbertElliott, Link
from sim.model.network import Network
from sim.model.node import Node

__all__ = [
    "DOWN",
    "KINDS",
    "LINKS",
    "NETWORK",
    "NODES",
    "THE_NETWORK",
    "FaultKind",
    "FaultModel",
    "Param",
    "Targets",
    "condition_key",
    "duration",
    "factor",
    "flag",
    "inverse",
    "kind",
    "node_groups",
    "params",
    "probability",
    "register",
    "schedulable",
    "unregister",
    "window",
]

Targets = Literal["nodes", "links", "network"]
NODES: Final = "nodes"
LINKS: Final = "links"
NETWORK: Final = "network"
DOWN: Final = "down"
"""The condition of a crashed node (:func:`sim.model.faults.injector.down_intervals` reads it)."""
THE_NETWORK: Final = "the network"
"""The one target of a network kind (a partition) in the clash check and its messages."""


# -- parameter parsers: (value, field) -> parsed value, or a SimError naming field, value and what is allowed
def duration(value: Any, field: str) -> float:
    """A duration >= 0 (``2``, ``"5ms"``)."""
    return parse_duration(value, field)


def probability(value: Any, field: str) -> float:
    """A probability in [0, 1]."""
    return parse_probability(value, field)


def factor(value: Any, field: str) -> float:
    """A finite multiplier >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise SimError(field, value, "a finite multiplier >= 0")
    return float(value)


def flag(value: Any, field: str) -> bool:
    """``true`` or ``false`` only (``"yes"`` or ``1`` is refused, not read as true)."""
    if not isinstance(value, bool):
        raise SimError(field, value, "true or false")
    return value


def node_groups(value: Any, field: str) -> list[list[str]] | None:
    """A list of lists of node names (selectors); ``None`` stays unset. The words are those of the
    configuration's type errors (``a list``, ``a string``) and the element is named (``groups[0][1]``)."""
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise SimError(field, value, "a list")
    out: list[list[str]] = []
    for i, group in enumerate(value):
        if not isinstance(group, list | tuple):
            raise SimError(f"{field}[{i}]", group, "a list")
        for j, name in enumerate(group):
            if not isinstance(name, str):
                raise SimError(f"{field}[{i}][{j}]", name, "a string")
        out.append(list(group))
    return out


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a fault kind.

    ``parse(value, field)`` validates and converts a value as written. ``default`` is filled in when the
    parameter is not given (``...``: it stays absent). ``required``, when set, is what the error says is
    expected if the parameter is missing. ``node_groups``: the value is lists of node selectors, resolved
    like node targets when the schedule is planned.
    """

    name: str
    parse: Callable[[Any, str], Any]
    default: Any = ...
    required: str | None = None
    node_groups: bool = False


@dataclass(frozen=True, slots=True)
class FaultModel:
    """What a fault acts on: the run's network, and its nodes by id (created on first use)."""

    network: Network
    node: Callable[[str], Node]


Apply = Callable[[FaultModel, Any, Mapping[str, Any]], None]
"""``apply(model, target, params)``: a node id, a ``(u, v)`` link pair, or ``None`` for a network kind."""


@dataclass(frozen=True, slots=True)
class FaultKind:
    """One kind of fault action; see the module docstring."""

    name: str
    targets: Targets
    apply: Apply
    params: tuple[Param, ...] = ()
    check: Callable[[Mapping[str, Any]], None] | None = None
    inverse: str | None = None
    opens: str | None = None
    closes: tuple[str, ...] = ()
    refused_in: tuple[str, ...] = ()
    requires: str | None = None
    clash: str = ""
    """How the target must not be, in the clash message: ``'h0' being <clash> at 0.6 s``."""
    schedulable: bool = True
    """Whether ``[[faults]]`` may name it (a window's end comes only from ``for``)."""

    def each_target(self, targets: tuple[Any, ...]) -> tuple[Any, ...]:
        """The targets ``apply`` is called with: the action's, or ``None`` once for a network kind."""
        return (None,) if self.targets == NETWORK else targets

    def clashes(self, conditions: set[tuple[str, Any]], target: Any) -> bool:
        """Whether the action on ``target`` contradicts the schedule's ``conditions`` so far."""
        if any((c, target) in conditions for c in self.refused_in):
            return True
        return self.requires is not None and (self.requires, target) not in conditions

    def track(self, conditions: set[tuple[str, Any]], target: Any) -> None:
        """Update the schedule's ``conditions`` for the action on ``target``."""
        for c in self.closes:
            conditions.discard((c, target))
        if self.opens is not None:
            conditions.add((self.opens, target))

    @property
    def ends_a_fault(self) -> bool:
        """Whether this kind is another's inverse (``recover``, ``heal``, a window's end)."""
        return any(k.inverse == self.name for k in KINDS.values())


KINDS: dict[str, FaultKind] = {}
"""Every fault kind by name, in registration order (the order the configuration lists them in)."""


def register(*kinds: FaultKind) -> tuple[FaultKind, ...]:
    """Add fault kinds (a kind together with its inverse). A parameter name means one thing: a kind may not
    give a known name another parser."""
    known = {p.name: p for k in KINDS.values() for p in k.params}
    names = [k.name for k in kinds]
    for k in kinds:
        if k.name in KINDS or names.count(k.name) > 1:
            raise ValueError(f"fault kind {k.name!r} is registered already")
        if k.inverse is not None and k.inverse not in KINDS and k.inverse not in names:
            raise ValueError(f"fault kind {k.name!r}: its inverse {k.inverse!r} is no kind (register both)")
        for p in k.params:
            if p.name in ("at", "action", "target", "for") or known.get(p.name, p).parse is not p.parse:
                raise ValueError(f"fault kind {k.name!r}: parameter {p.name!r} means something else already")
            known[p.name] = p
    for k in kinds:
        KINDS[k.name] = k
    return kinds


def unregister(*names: str) -> None:
    """Remove fault kinds by name (a test's toy kinds)."""
    for name in names:
        del KINDS[name]


def kind(name: str) -> FaultKind:
    """The kind named ``name`` (a ``KeyError`` for an unknown one: schedules are validated before)."""
    return KINDS[name]


def inverse(name: str) -> str:
    """The action that undoes ``name`` (``crash`` → ``recover``); a ``ValueError`` if ``name`` ends one."""
    undo = KINDS[name].inverse
    if undo is None:
        raise ValueError(f"fault kind {name!r} has no inverse (it ends a fault): it takes no duration")
    return undo


def schedulable() -> tuple[str, ...]:
    """The actions ``[[faults]]`` may name, in registration order."""
    return tuple(k.name for k in KINDS.values() if k.schedulable)


def params() -> dict[str, Param]:
    """Every parameter of every kind by name, in the order kinds declare them."""
    out: dict[str, Param] = {}
    for k in KINDS.values():
        for p in k.params:
            out.setdefault(p.name, p)
    return out


def condition_key(k: FaultKind, target: Any) -> Any:
    """The target a kind's condition is about: the target itself, or :data:`THE_NETWORK`."""
    return THE_NETWORK if k.targets == NETWORK else target


def window(
    name: str,
    params: tuple[Param, ...],
    start: Callable[[Link, Mapping[str, Any]], None],
    end: Callable[[Link], None],
    check: Callable[[Mapping[str, Any]], None] | None = None,
) -> tuple[FaultKind, FaultKind]:
    """A window on links and its end (``<name>_end``), not yet registered.

    ``start(link, params)`` sets the link's impairment, ``end(link)`` clears it; the link is refreshed after
    either. Two windows of one kind may not overlap on a link direction.
    """

    def opening(model: FaultModel, target: Any, p: Mapping[str, Any]) -> None:
        link = model.network.link(*target)
        start(link, p)
        link.refresh()

    def closing(model: FaultModel, target: Any, p: Mapping[str, Any]) -> None:
        link = model.network.link(*target)
        end(link)
        link.refresh()

    return (
        FaultKind(
            name,
            LINKS,
            opening,
            params,
            check,
            inverse=f"{name}_end",
            opens=name,
            refused_in=(name,),
            clash=f"inside another {name} window",
        ),
        FaultKind(f"{name}_end", LINKS, closing, closes=(name,), schedulable=False),
    )


# -- the kinds ----------------------------------------------------------------------------------------------
def _node(method: Callable[[Node], None]) -> Apply:
    """Call ``method`` (``Node.crash``) by name on the target node, so that an override is the one called."""
    name = method.__name__
    return lambda model, target, p: getattr(model.node(target), name)()


def _link_up(up: bool) -> Apply:
    def apply(model: FaultModel, target: Any, p: Mapping[str, Any]) -> None:
        u, v = target
        model.network.set_link_up(u, v, up, both=False)

    return apply


def _partition(model: FaultModel, target: Any, p: Mapping[str, Any]) -> None:
    model.network.partition([list(g) for g in p["groups"]], one_way=p.get("one_way", False))


def _heal(model: FaultModel, target: Any, p: Mapping[str, Any]) -> None:
    model.network.heal()


def _groups_check(p: Mapping[str, Any]) -> None:
    groups = p.get("groups")
    if not groups or any(not g for g in groups):
        raise SimError("groups", groups, 'a non-empty list of non-empty node groups, e.g. [["n0", "n1"]]')
    seen = [n for g in groups for n in g]
    twice = sorted({n for n in seen if seen.count(n) > 1})
    if twice:
        raise SimError("groups", groups, f"each node in one group only ({twice[0]!r} is in two)")


def _latency(link: Link, p: Mapping[str, Any]) -> None:
    link.extra_latency, link.latency_factor = float(p.get("add", 0.0)), float(p.get("factor", 1.0))


def _latency_end(link: Link) -> None:
    link.extra_latency, link.latency_factor = 0.0, 1.0


def _latency_check(p: Mapping[str, Any]) -> None:
    if "add" not in p and "factor" not in p:
        raise SimError("add", None, "add (seconds) and/or factor for a latency window")


def _loss(link: Link, p: Mapping[str, Any]) -> None:
    link.bad = False
    if "p_gb" in p:
        link.loss_model = GilbertElliott(
            p["p_gb"], p["p_bg"], p.get("loss_good", 0.0), p.get("loss_bad", 1.0)
        )
    else:
        link.loss_model = float(p["p"])


def _loss_end(link: Link) -> None:
    link.loss_model = None


def _loss_check(p: Mapping[str, Any]) -> None:
    extra = [n for n in ("p_gb", "p_bg", "loss_good", "loss_bad") if n in p]
    if "p" in p and extra:
        # beside a Gilbert–Elliott chain, p is the odd one out; beside p alone, the state losses are
        field = "p" if extra[0] in ("p_gb", "p_bg") else extra[0]
        raise SimError(
            field,
            p[field],
            "either p (Bernoulli) or p_gb and p_bg [, loss_good, loss_bad] (Gilbert–Elliott), not both",
        )
    if "p" not in p and ("p_gb" not in p or "p_bg" not in p):
        raise SimError("p", None, "either p (Bernoulli) or p_gb and p_bg (Gilbert–Elliott)")


def _duplicate(link: Link, p: Mapping[str, Any]) -> None:
    link.duplicate = float(p["probability"])


def _duplicate_end(link: Link) -> None:
    link.duplicate = 0.0


def _reorder(link: Link, p: Mapping[str, Any]) -> None:
    link.jitter = float(p["jitter"])


def _reorder_end(link: Link) -> None:
    link.jitter = 0.0


def _builtin() -> Iterable[FaultKind]:
    down, paused, link_down, partitioned = DOWN, "paused", "link_down", "partition"
    yield FaultKind(
        "crash",
        NODES,
        _node(Node.crash),
        inverse="recover",
        opens=down,
        closes=(paused,),
        refused_in=(down,),
        clash="down already",
    )
    yield FaultKind("recover", NODES, _node(Node.recover), closes=(down,), requires=down, clash="up")
    yield FaultKind(
        "pause",
        NODES,
        _node(Node.pause),
        inverse="resume",
        opens=paused,
        refused_in=(down, paused),
        clash="down or paused already",
    )
    yield FaultKind(
        "resume", NODES, _node(Node.resume), closes=(paused,), requires=paused, clash="not paused"
    )
    yield FaultKind(
        "link_down",
        LINKS,
        _link_up(False),
        inverse="link_up",
        opens=link_down,
        refused_in=(link_down,),
        clash="down already",
    )
    yield FaultKind("link_up", LINKS, _link_up(True), closes=(link_down,), requires=link_down, clash="up")
    yield FaultKind(
        "partition",
        NETWORK,
        _partition,
        (Param("groups", node_groups, node_groups=True), Param("one_way", flag, default=False)),
        _groups_check,
        inverse="heal",
        opens=partitioned,
        refused_in=(partitioned,),
        clash="partitioned already (heal first)",
    )
    yield FaultKind(
        "heal", NETWORK, _heal, closes=(partitioned,), requires=partitioned, clash="not partitioned"
    )
    yield from window(
        "latency", (Param("add", duration), Param("factor", factor)), _latency, _latency_end, _latency_check
    )
    loss = ("p", "p_gb", "p_bg", "loss_good", "loss_bad")
    yield from window("loss", tuple(Param(n, probability) for n in loss), _loss, _loss_end, _loss_check)
    yield from window(
        "duplicate",
        (Param("probability", probability, required="a probability for a duplicate window"),),
        _duplicate,
        _duplicate_end,
    )
    yield from window(
        "reorder",
        (Param("jitter", duration, required="a jitter duration for a reorder window"),),
        _reorder,
        _reorder_end,
    )


register(*_builtin())
