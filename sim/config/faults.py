"""The fault tables of a scenario: ``[[faults]]`` (scheduled actions) and ``[[nemesis]]`` (random faults)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from sim.config.sections import _duration, _Model
from sim.core.errors import SimError
from sim.core.units import parse_duration, parse_probability
from sim.model.faults import kinds

__all__ = ["FaultSettings", "NemesisSettings", "fault_actions"]

_FIXED = ("at", "action", "target", "for")
"""The keys every fault has; the others are the parameters the fault kinds declare."""


def fault_actions() -> tuple[str, ...]:
    """The actions ``[[faults]]`` may name: every schedulable kind of the registry, in its order."""
    return kinds.schedulable()


def _names(value: Any, field: str) -> Any:
    """A target: one name (node id, link or selector) or a list of names; ``None`` (unset) passes."""
    names = value if isinstance(value, list) else [value]
    if value is not None and not all(isinstance(n, str) for n in names):
        raise SimError(field, value, 'a node, link or selector name, or a list of names (e.g. "h0")')
    return value


def _one_of(values: tuple[str, ...]) -> str:
    """``'a', 'b' or 'c'``: the words pydantic uses for a value outside a literal's choices."""
    quoted = [repr(v) for v in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


class FaultSettings(_Model):
    """One scheduled fault: ``at`` a time, an ``action`` on ``target`` (nodes or links), optionally ``for`` a
    duration after which the inverse action follows, and the parameters of its kind.

    The actions, their parameters and how each is parsed come from the fault-kind registry
    (:mod:`sim.model.faults.kinds`); the parsed parameters are :attr:`params` (and attributes: ``f.p``).
    """

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, validate_default=False)

    at: float
    action: str
    target: str | list[str] | None = None
    for_: float | None = Field(default=None, alias="for")

    _at = _duration("at")
    _target = field_validator("target", mode="before")(lambda v: _names(v, "target"))

    @field_validator("action", mode="before")
    @classmethod
    def _action(cls, v: Any) -> Any:
        actions = fault_actions()
        if not isinstance(v, str) or v not in actions:
            raise SimError("action", v, _one_of(actions))
        return v

    @field_validator("for_", mode="before")
    @classmethod
    def _for(cls, v: Any) -> Any:
        x = parse_duration(v, "for")
        if x <= 0:
            raise SimError("for", v, "a duration > 0")
        return x

    @property
    def params(self) -> dict[str, Any]:
        """The parameters given, parsed, in the order the kinds declare them."""
        return dict(self.__pydantic_extra__ or {})

    @model_validator(mode="after")
    def _shape(self) -> FaultSettings:
        given = dict(self.__pydantic_extra__ or {})
        declared = kinds.params()
        parsed: dict[str, Any] = {}
        for name, param in declared.items():  # each value is parsed, even one the action does not take
            if name in given:
                value = param.parse(given[name], name)
                if value is not None:
                    parsed[name] = value
        for name, value in given.items():
            if name not in declared:
                raise SimError(name, value, "a known key (see docs/config.md); this one is not")
        a = self.action
        kind = kinds.kind(a)
        allowed = [p.name for p in kind.params]
        for name, value in parsed.items():
            if name not in allowed:
                raise SimError(
                    name,
                    value,
                    f"no '{name}' for action '{a}' (it takes {', '.join(allowed) or 'no parameters'})",
                )
        needs_target = kind.targets != kinds.NETWORK
        if needs_target and (self.target is None or self.target == [] or self.target == ""):
            raise SimError("target", None, f"a node or link for action '{a}'")
        if not needs_target and self.target is not None:
            raise SimError("target", self.target, f"no target for '{a}' (a partition names groups)")
        if kind.ends_a_fault and self.for_ is not None:
            raise SimError("for", self.for_, f"no duration for '{a}' (it ends a fault)")
        for p in kind.params:
            if p.required is not None and p.name not in parsed:
                raise SimError(p.name, None, p.required)
        if kind.check is not None:
            kind.check(parsed)
        object.__setattr__(self, "__pydantic_extra__", parsed)
        return self


class NemesisSettings(_Model):
    """Random faults drawn from the run's ``nemesis`` streams (the same seed, the same fault timeline)."""

    kind: Literal["crash", "partition", "flaky_links"]
    targets: str | list[str] = "hosts"
    mttf: float = 10.0
    mttr: float = 1.0
    mode: Literal["one", "majority", "halves"] = "halves"
    fraction: float = 0.1
    loss: float = 0.2
    start: float = 0.0
    stop: float | None = None

    _targets = field_validator("targets", mode="before")(lambda v: _names(v, "targets"))
    _mttf = _duration("mttf")
    _mttr = _duration("mttr")
    _start = _duration("start")
    _stop = field_validator("stop", mode="before")(lambda v: None if v is None else parse_duration(v, "stop"))
    _fraction = field_validator("fraction", mode="before")(lambda v: parse_probability(v, "fraction"))
    _loss = field_validator("loss", mode="before")(lambda v: parse_probability(v, "loss"))

    @model_validator(mode="after")
    def _positive(self) -> NemesisSettings:
        for name in ("mttf", "mttr"):
            if getattr(self, name) <= 0:
                raise SimError(name, getattr(self, name), "a duration > 0")
        if self.stop is not None and self.stop <= self.start:
            raise SimError("stop", self.stop, f"a time after start ({self.start:g} s)")
        return self
