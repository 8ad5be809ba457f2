"""The fault-kind registry (sim/model/faults/kinds.py): each kind's inverse undoes it, the configuration
accepts exactly the parameters the kinds declare, and a kind added through :func:`register` works end to end
(config, plan, clash check, injector, fault log, windows) without a change anywhere else."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from sim.config.faults import FaultSettings, fault_actions
from sim.config.scenario import Scenario
from sim.core.context import SimContext
from sim.core.errors import SimError
from sim.model.faults import kinds
from sim.model.faults.injector import FaultAction, down_intervals, expand, fault_windows, validate
from sim.model.link import Link
from sim.run.build import AssembledWorld, build
from sim.run.fault_plan import plan
from sim.run.simulate import simulate

BASE: dict[str, Any] = {
    "pattern": "point_to_point",
    "duration": "2s",
    "drain": "1s",
    "seed": 1,
    "topology": {"name": "star", "params": {"n": 3}},
    "workload": {"producers": ["h0"], "consumers": ["h1"], "rate": "50/s", "arrivals": "constant"},
}

# a valid [[faults]] entry for every kind a schedule may name (a new kind adds its own here)
SAMPLES: dict[str, dict[str, Any]] = {
    "crash": {"target": "h0"},
    "recover": {"target": "h0"},
    "pause": {"target": "h0"},
    "resume": {"target": "h0"},
    "link_down": {"target": "h0-hub"},
    "link_up": {"target": "h0-hub"},
    "partition": {"groups": [["h0"]], "one_way": True},
    "heal": {},
    "latency": {"target": "h0-hub", "add": "5ms", "factor": 2},
    "loss": {"target": "h0-hub", "p_gb": 0.1, "p_bg": 0.3, "loss_good": 0.05, "loss_bad": 0.9},
    "duplicate": {"target": "h0-hub", "probability": 0.5},
    "reorder": {"target": "h0-hub", "jitter": "3ms"},
}
LINK_STATE = (
    "admin_down", "bad", "cut", "down_reason", "duplicate", "extra_latency", "impaired", "jitter",
    "latency_factor", "loss_model", "plain", "up",
)  # fmt: skip


def _world() -> AssembledWorld:
    return build(SimContext.from_seed(1), Scenario.from_dict(BASE))


def _state(world: AssembledWorld) -> Any:
    links = {key: tuple(getattr(link, a) for a in LINK_STATE) for key, link in world.network.links.items()}
    nodes = {n: (world.node(n).up, world.node(n).paused) for n in world.graph}
    return links, nodes, world.network.partitioned


def _action(name: str, world: AssembledWorld) -> FaultAction:
    """The sample of ``name`` as the plan makes it (targets resolved, defaults filled in)."""
    scenario = Scenario.from_dict({**BASE, "faults": [{"at": 0.5, "action": name, **SAMPLES[name]}]})
    (action,) = plan(
        scenario, world.graph, world.ctx.rng, broker=lambda: "hub", producers=("h0",), consumers=()
    )
    return action


def test_every_schedulable_kind_has_a_sample() -> None:
    assert set(SAMPLES) == set(fault_actions())


@pytest.mark.parametrize("name", [k.name for k in kinds.KINDS.values() if k.inverse is not None])
def test_every_inverse_undoes_its_kind(name: str) -> None:
    k = kinds.kind(name)
    undo = kinds.kind(kinds.inverse(name))
    assert undo.ends_a_fault and not k.ends_a_fault
    assert undo.targets == k.targets
    world = _world()
    before = _state(world)
    action = _action(name, world)
    world.faults.apply(action)  # type: ignore[union-attr]
    assert _state(world) != before, f"{name} changed nothing"
    (_, end) = expand([FaultAction(action.at, name, action.targets, action.params, 0.25)])
    assert end.action == undo.name and end.at == 0.75
    world.faults.apply(end)  # type: ignore[union-attr]
    assert _state(world) == before
    # the schedule check agrees: the kind and its inverse, in turn, twice, leave nothing open ...
    again = [FaultAction(t, name, action.targets, action.params, 0.2) for t in (0.1, 0.5)]
    validate(again, 2.0)
    with pytest.raises(SimError, match=r"faults\[1\].action"):
        validate([again[0], FaultAction(0.2, name, action.targets, action.params, 0.2)], 2.0)
    conditions: set[tuple[str, Any]] = set()
    for t in k.each_target(action.targets):
        target = kinds.condition_key(k, t)
        for _ in range(2):
            assert not k.clashes(conditions, target)
            k.track(conditions, target)
            assert k.clashes(conditions, target)  # ... and the kind may not overlap itself
            assert not undo.clashes(conditions, target)
            undo.track(conditions, target)
    assert conditions == set()


def test_the_fault_log_pairs_each_kind_with_its_inverse() -> None:
    log = [(0.1, "crash", "h0", ""), (0.2, "latency", "a->b", "add=0.1"), (0.3, "recover", "h0", "")]
    log += [(0.4, "latency_end", "a->b", "add=0.1"), (0.5, "partition", "network", "")]
    assert fault_windows(log, 1.0) == [(0.1, 0.3), (0.2, 0.4), (0.5, 1.0)]
    assert down_intervals(log, 1.0) == {"h0": [(0.1, 0.3)]}


@pytest.mark.parametrize("name", fault_actions())
def test_the_config_accepts_exactly_the_declared_parameters(name: str) -> None:
    declared = {p.name for p in kinds.kind(name).params}
    sample = {"at": 0.5, "action": name, **SAMPLES[name]}
    parsed = FaultSettings.model_validate(sample)
    assert set(parsed.params) <= declared
    for param in kinds.params().values():
        value = _valid(param.name)
        try:
            FaultSettings.model_validate({**sample, param.name: value})
        except Exception as exc:  # pydantic wraps the SimError
            refused = f"no '{param.name}' for action '{name}'" in str(exc)
        else:
            refused = False
        assert refused == (param.name not in declared), param.name
    with pytest.raises(Exception, match="a known key"):
        FaultSettings.model_validate({**sample, "bogus": 1})


def _valid(param: str) -> Any:
    for sample in SAMPLES.values():
        if param in sample:
            return sample[param]
    return {"p": 0.2}[param]


def test_the_config_names_the_registered_actions() -> None:
    assert fault_actions() == tuple(k.name for k in kinds.KINDS.values() if k.schedulable)
    with pytest.raises(SimError) as exc:
        Scenario.from_dict({**BASE, "faults": [{"at": 0.5, "action": "latency_end", "target": "all"}]})
    assert str(exc.value).endswith("'latency', 'loss', 'duplicate' or 'reorder'")


# -- a toy kind, added through the registry only ----------------------------------------------------------
def _slow(link: Link, p: Mapping[str, Any]) -> None:
    link.latency_factor = p["times"]


def _fast(link: Link) -> None:
    link.latency_factor = 1.0


@pytest.fixture
def slow() -> Iterator[tuple[kinds.FaultKind, ...]]:
    """A ``slow`` window (a new parameter ``times``) registered for one test, and removed after it."""
    before = dict(kinds.KINDS)
    added = kinds.register(*kinds.window("slow", (kinds.Param("times", kinds.factor),), _slow, _fast))
    try:
        yield added
    finally:
        kinds.unregister(*(k.name for k in added))
    assert before == kinds.KINDS


def test_a_kind_added_to_the_registry_works_end_to_end(slow: tuple[kinds.FaultKind, ...]) -> None:
    assert "slow" in fault_actions() and "slow_end" not in fault_actions()
    window = {"at": 0.5, "action": "slow", "target": "h0->hub", "times": 3, "for": "0.5s"}
    result = simulate(Scenario.from_dict({**BASE, "faults": [window]}))
    assert result.fault_log == [
        (0.5, "slow", "h0->hub", "times=3.0"),
        (1.0, "slow_end", "h0->hub", "times=3.0"),
    ]
    assert result.summary["faults"] == 1
    plain = simulate(Scenario.from_dict(BASE))
    # 1 ms per hop: 2 ms over h0 -> hub -> h1, 4 ms while h0 -> hub is three times slower
    assert plain.summary["latency_max"] == pytest.approx(0.002)
    assert result.summary["latency_max"] == pytest.approx(0.004)
    overlapping = [window, {**window, "at": 0.7}]
    with pytest.raises(SimError, match=r"faults\[1\].action = 'slow'.*inside another slow window"):
        simulate(Scenario.from_dict({**BASE, "faults": overlapping}))
    with pytest.raises(SimError, match=r"faults\[0\].times = -1: expected a finite multiplier >= 0"):
        Scenario.from_dict({**BASE, "faults": [{**window, "times": -1}]})
    with pytest.raises(SimError, match=r"no 'times' for action 'crash' \(it takes no parameters\)"):
        Scenario.from_dict({**BASE, "faults": [{"at": 0.5, "action": "crash", "target": "h0", "times": 2}]})


def test_a_removed_kind_is_refused_again() -> None:
    added = kinds.register(*kinds.window("slow", (kinds.Param("times", kinds.factor),), _slow, _fast))
    kinds.unregister(*(k.name for k in added))
    with pytest.raises(SimError, match=r"faults\[0\].action = 'slow'"):
        Scenario.from_dict({**BASE, "faults": [{"at": 0.5, "action": "slow", "target": "all", "times": 2}]})


def test_register_refuses_a_second_kind_of_one_name_or_a_parameter_that_means_two_things() -> None:
    with pytest.raises(ValueError, match="registered already"):
        kinds.register(*kinds.window("loss", (), _slow, _fast))
    with pytest.raises(ValueError, match="'p' means something else"):
        kinds.register(*kinds.window("slow", (kinds.Param("p", kinds.duration),), _slow, _fast))
    with pytest.raises(ValueError, match="registered already"):
        kinds.register(*kinds.window("slow", (), _slow, _fast), *kinds.window("slow", (), _slow, _fast))
    with pytest.raises(ValueError, match="'slow_end' is no kind"):
        kinds.register(kinds.window("slow", (), _slow, _fast)[0])
    with pytest.raises(ValueError, match="'for' means something else"):
        kinds.register(*kinds.window("slow", (kinds.Param("for", kinds.duration),), _slow, _fast))
    assert "slow" not in kinds.KINDS
