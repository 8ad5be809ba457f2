"""Translate the scenario's ``[[faults]]`` and ``[[nemesis]]`` tables into one fault schedule.

Targets name nodes (an id, ``broker``, ``producers``, ``consumers``, ``hosts`` or ``role:<role>``) or links
(``"a-b"`` both directions, ``"a->b"`` one direction, ``"all"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import networkx as nx

from sim.config.scenario import FaultSettings, NemesisSettings, Scenario
from sim.core.errors import SimError
from sim.core.rng import RngStreams
from sim.model.faults.injector import FaultAction, expand, nemesis_schedule, validate
from sim.model.faults.kinds import LINKS, NODES, kind

__all__ = ["as_faults", "nemesis_draws", "plan", "resolve_links", "resolve_nodes"]


def resolve_nodes(
    spec: str | Sequence[str],
    graph: nx.Graph[str],
    where: str,
    *,
    broker: Callable[[], str],
    producers: Sequence[str],
    consumers: Sequence[str],
) -> tuple[str, ...]:
    """Node ids named by ``spec`` (ids and selectors), without repeats, in order."""
    names = [spec] if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for name in names:
        if name == "broker":
            try:
                node: str | None = broker()
            except SimError:
                node = None
            if node is None or node not in graph:  # asked for a broker the run does not have: blame it
                raise SimError(
                    where,
                    name,
                    "a selector matching some node (no broker here: no node has role 'broker' "
                    "and broker.node names no node of the topology)",
                )
            out.append(node)
        elif name == "producers":
            out.extend(producers)
        elif name == "consumers":
            out.extend(consumers)
        elif name == "hosts" or name.startswith("role:"):
            role = "host" if name == "hosts" else name[5:]
            found = [n for n, attrs in graph.nodes(data=True) if attrs["role"] == role]
            if not found:
                raise SimError(where, name, f"a selector matching some node (no node has role '{role}')")
            out.extend(found)
        elif name in graph:
            out.append(name)
        else:
            raise SimError(where, name, "a node id, broker, producers, consumers, hosts or role:<role>")
    return tuple(dict.fromkeys(out))


def resolve_links(spec: str | Sequence[str], graph: nx.Graph[str], where: str) -> tuple[tuple[str, str], ...]:
    """Directed link pairs named by ``spec``: ``"a-b"`` (both directions), ``"a->b"`` or ``"all"``."""
    names = [spec] if isinstance(spec, str) else list(spec)
    directed = graph.is_directed()
    out: list[tuple[str, str]] = []
    for name in names:
        if name == "all":
            out.extend((u, v) for u, v in graph.edges)
            if not directed:
                out.extend((v, u) for u, v in graph.edges)
            continue
        one_way = "->" in name
        u, sep, v = name.partition("->") if one_way else name.partition("-")
        if not sep or not graph.has_edge(u, v):
            raise SimError(where, name, 'a link of the topology as "a-b" (both ways), "a->b" or "all"')
        out.append((u, v))
        if not one_way and graph.has_edge(v, u):
            out.append((v, u))
    return tuple(dict.fromkeys(out))


def _action(
    i: int, f: FaultSettings, graph: nx.Graph[str], nodes: Callable[[object, str], tuple[str, ...]]
) -> FaultAction:
    where = f"faults[{i}].target"
    k = kind(f.action)
    targets: tuple[object, ...] = ()
    if k.targets == NODES:
        targets = nodes(f.target, where)
    elif k.targets == LINKS:
        targets = resolve_links(f.target or (), graph, where)
    given = f.params
    params: dict[str, object] = {}
    for p in k.params:  # declared order; a default fills in what is not given (a partition's one_way)
        value = given.get(p.name, p.default)
        if value is ...:
            continue
        if p.node_groups:
            value = [list(nodes(g, f"faults[{i}].{p.name}")) for g in value]
        params[p.name] = value
    return FaultAction(f.at, f.action, targets, params, f.for_, f"faults[{i}]")


def plan(
    scenario: Scenario,
    graph: nx.Graph[str],
    rng: RngStreams,
    *,
    broker: Callable[[], str],
    producers: Sequence[str],
    consumers: Sequence[str],
) -> list[FaultAction]:
    """The run's whole fault schedule: the explicit one (validated) and every nemesis's draws, expanded."""
    nodes = _resolver(graph, broker, producers, consumers)
    explicit = [_action(i, f, graph, nodes) for i, f in enumerate(scenario.faults)]
    validate(explicit, scenario.duration)
    drawn = nemesis_draws(scenario, graph, rng, broker=broker, producers=producers, consumers=consumers)
    return expand(explicit + drawn)


def nemesis_draws(
    scenario: Scenario,
    graph: nx.Graph[str],
    rng: RngStreams,
    *,
    broker: Callable[[], str],
    producers: Sequence[str],
    consumers: Sequence[str],
) -> list[FaultAction]:
    """What every ``[[nemesis]]`` of the scenario draws for its seed, in order (not expanded): the faults
    that :func:`as_faults` writes out as explicit ``[[faults]]`` entries."""
    nodes = _resolver(graph, broker, producers, consumers)
    drawn: list[FaultAction] = []
    for i, n in enumerate(scenario.nemesis):
        stop = scenario.duration if n.stop is None else min(n.stop, scenario.duration)
        drawn += nemesis_schedule(
            n.kind,
            rng.stream(f"nemesis:{i}"),
            nodes=_nemesis_nodes(i, n, nodes),
            links=resolve_links("all", graph, f"nemesis[{i}]") if n.kind == "flaky_links" else (),
            mttf=n.mttf,
            mttr=n.mttr,
            start=n.start,
            stop=stop,
            mode=n.mode,
            fraction=n.fraction,
            loss=n.loss,
            name=f"nemesis[{i}]",
        )
    return drawn


def as_faults(actions: Sequence[FaultAction]) -> list[dict[str, Any]]:
    """``[[faults]]`` entries that schedule exactly ``actions`` (resolved, unexpanded): node targets by id,
    links as ``"u->v"``, a duration as ``for``; the parameters as they are."""
    out: list[dict[str, Any]] = []
    for a in actions:
        targets = kind(a.action).targets
        entry: dict[str, Any] = {"at": a.at, "action": a.action}
        if targets == NODES:
            entry["target"] = list(a.targets)
        elif targets == LINKS:
            entry["target"] = [f"{u}->{v}" for u, v in a.targets]
        if a.duration is not None:
            entry["for"] = a.duration
        entry.update({k: _plain(v) for k, v in a.params.items()})
        out.append(entry)
    return out


def _plain(value: Any) -> Any:
    """Tuples (a partition's groups) as lists, as a scenario holds them."""
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value


def _resolver(
    graph: nx.Graph[str], broker: Callable[[], str], producers: Sequence[str], consumers: Sequence[str]
) -> Callable[[object, str], tuple[str, ...]]:
    def nodes(spec: object, where: str) -> tuple[str, ...]:
        return resolve_nodes(
            spec,  # type: ignore[arg-type]  # validated by the scenario: a str or a list of str
            graph,
            where,
            broker=broker,
            producers=producers,
            consumers=consumers,
        )

    return nodes


def _nemesis_nodes(
    i: int, n: NemesisSettings, nodes: Callable[[object, str], tuple[str, ...]]
) -> tuple[str, ...]:
    if n.kind == "flaky_links":
        return ()
    chosen = nodes(n.targets, f"nemesis[{i}].targets")
    if n.kind == "partition" and len(chosen) < 2:
        raise SimError(f"nemesis[{i}].targets", n.targets, "at least two nodes to partition")
    return chosen
