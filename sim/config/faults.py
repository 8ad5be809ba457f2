"""The fault tables of a scenario: ``[[faults]]`` (scheduled actions) and ``[[nemesis]]`` (random faults)."""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

from pydantic import ConfigDict, Field, field_validator, model_validator

from sim.config.sections import _bool, _duration, _Model
from sim.core.errors import SimError
from sim.core.units import parse_duration, parse_probability

__all__ = ["FAULT_ACTIONS", "FaultActionName", "FaultSettings", "NemesisSettings"]

FaultActionName = Literal[
    "crash", "recover", "pause", "resume", "link_down", "link_up", "partition", "heal",
    "latency", "loss", "duplicate", "reorder",
]  # fmt: skip
FAULT_ACTIONS: tuple[str, ...] = get_args(FaultActionName)
_FAULT_PARAMS = {
    "partition": ("groups", "one_way"),
    "latency": ("add", "factor"),
    "loss": ("p", "p_gb", "p_bg", "loss_good", "loss_bad"),
    "duplicate": ("probability",),
    "reorder": ("jitter",),
}


def _names(value: Any, field: str) -> Any:
    """A target: one name (node id, link or selector) or a list of names; ``None`` (unset) passes."""
    names = value if isinstance(value, list) else [value]
    if value is not None and not all(isinstance(n, str) for n in names):
        raise SimError(field, value, 'a node, link or selector name, or a list of names (e.g. "h0")')
    return value


class FaultSettings(_Model):
    """One scheduled fault: ``at`` a time, an ``action`` on ``target`` (nodes or links), optionally ``for`` a
    duration after which the inverse action follows."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, validate_default=False)

    at: float
    action: FaultActionName
    target: str | list[str] | None = None
    for_: float | None = Field(default=None, alias="for")
    groups: list[list[str]] | None = None
    one_way: bool | None = None
    add: float | None = None
    factor: float | None = None
    p: float | None = None
    p_gb: float | None = None
    p_bg: float | None = None
    loss_good: float | None = None
    loss_bad: float | None = None
    probability: float | None = None
    jitter: float | None = None

    _at = _duration("at")
    _add = _duration("add")
    _jitter = _duration("jitter")

    _one_way = _bool("one_way")
    _target = field_validator("target", mode="before")(lambda v: _names(v, "target"))

    @field_validator("for_", mode="before")
    @classmethod
    def _for(cls, v: Any) -> Any:
        x = parse_duration(v, "for")
        if x <= 0:
            raise SimError("for", v, "a duration > 0")
        return x

    @field_validator("p", "p_gb", "p_bg", "loss_good", "loss_bad", "probability", mode="before")
    @classmethod
    def _prob(cls, v: Any, info: Any) -> Any:
        return parse_probability(v, info.field_name)

    @field_validator("factor", mode="before")
    @classmethod
    def _factor(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < math.inf:
            raise SimError("factor", v, "a finite multiplier >= 0")
        return float(v)

    @model_validator(mode="after")
    def _shape(self) -> FaultSettings:
        a = self.action
        allowed = _FAULT_PARAMS.get(a, ())
        for name in (
            "groups",
            "one_way",
            "add",
            "factor",
            "p",
            "p_gb",
            "p_bg",
            "loss_good",
            "loss_bad",
            "probability",
            "jitter",
        ):
            if getattr(self, name) is not None and name not in allowed:
                raise SimError(
                    name,
                    getattr(self, name),
                    f"no '{name}' for action '{a}' (it takes {', '.join(allowed) or 'no parameters'})",
                )
        needs_target = a not in ("partition", "heal")
        if needs_target and (self.target is None or self.target == [] or self.target == ""):
            raise SimError("target", None, f"a node or link for action '{a}'")
        if not needs_target and self.target is not None:
            raise SimError("target", self.target, f"no target for '{a}' (a partition names groups)")
        if a == "partition":
            if not self.groups or any(not g for g in self.groups):
                raise SimError(
                    "groups", self.groups, 'a non-empty list of non-empty node groups, e.g. [["n0", "n1"]]'
                )
            seen = [n for g in self.groups for n in g]
            twice = sorted({n for n in seen if seen.count(n) > 1})
            if twice:
                raise SimError("groups", self.groups, f"each node in one group only ({twice[0]!r} is in two)")
        if a in ("recover", "resume", "link_up", "heal") and self.for_ is not None:
            raise SimError("for", self.for_, f"no duration for '{a}' (it ends a fault)")
        if a == "latency" and self.add is None and self.factor is None:
            raise SimError("add", None, "add (seconds) and/or factor for a latency window")
        if a == "loss":
            extra = [n for n in ("p_gb", "p_bg", "loss_good", "loss_bad") if getattr(self, n) is not None]
            if self.p is not None and extra:
                # beside a Gilbert–Elliott chain, p is the odd one out; beside p alone, the state losses are
                field = "p" if extra[0] in ("p_gb", "p_bg") else extra[0]
                raise SimError(
                    field,
                    getattr(self, field),
                    "either p (Bernoulli) or p_gb and p_bg "
                    "[, loss_good, loss_bad] (Gilbert–Elliott), not both",
                )
            if self.p is None and (self.p_gb is None or self.p_bg is None):
                raise SimError("p", self.p, "either p (Bernoulli) or p_gb and p_bg (Gilbert–Elliott)")
        if a == "duplicate" and self.probability is None:
            raise SimError("probability", None, "a probability for a duplicate window")
        if a == "reorder" and self.jitter is None:
            raise SimError("jitter", None, "a jitter duration for a reorder window")
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
