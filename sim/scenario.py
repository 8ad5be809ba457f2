"""The validated description of one run.

Build it in Python (``Scenario(pattern="point_to_point", duration="10s", ...)``), from a dict, or from
TOML (:meth:`Scenario.from_toml`). Every value is checked before a run starts; a bad one raises
:class:`sim.errors.SimError` naming the field, the value and what is allowed. Durations, rates, sizes
and bandwidths accept unit strings ("5ms", "200/s", "1KB", "1Gbps"); validated fields hold plain
floats in seconds, per second and bytes. Distribution tables are kept as given (checked, then built
by :mod:`sim.build`). Every key is documented in ``docs/config.md``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim.distributions import from_spec
from sim.errors import SimError
from sim.patterns import PATTERNS
from sim.units import (
    parse_bandwidth,
    parse_count,
    parse_duration,
    parse_probability,
    parse_rate,
    parse_size,
)

__all__ = [
    "BrokerSettings",
    "DeliverySettings",
    "FaultSettings",
    "LinkSettings",
    "NemesisSettings",
    "NetworkSettings",
    "NodeSettings",
    "Scenario",
    "TopologySettings",
    "WorkloadSettings",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _duration(field: str, *, allow_inf: bool = False) -> Any:
    return field_validator(field, mode="before")(lambda v: parse_duration(v, field, allow_inf=allow_inf))


class TopologySettings(_Model):
    """Which graph: a builtin name, a file, or a name found in ``topologies/``."""

    name: str = "line"
    params: dict[str, Any] = Field(default_factory=dict)


class LinkSettings(_Model):
    """Defaults for every link; attributes on a topology's edges take precedence."""

    latency: Any = "1ms"
    loss: float = 0.0
    bandwidth: float = math.inf

    @field_validator("latency", mode="before")
    @classmethod
    def _latency(cls, v: Any) -> Any:
        from_spec(v, "latency")
        return v

    _loss = field_validator("loss", mode="before")(lambda v: parse_probability(v, "loss"))
    _bw = field_validator("bandwidth", mode="before")(lambda v: parse_bandwidth(v, "bandwidth"))


class NodeSettings(_Model):
    """Defaults for every node; attributes on a topology's nodes take precedence."""

    servers: int = 1
    service: Any = None

    _servers = field_validator("servers", mode="before")(lambda v: parse_count(v, "servers", minimum=1))

    @field_validator("service", mode="before")
    @classmethod
    def _service(cls, v: Any) -> Any:
        if v is not None:
            from_spec(v, "service")
        return v


class WorkloadSettings(_Model):
    """The shared workload: who sends, how often, how much, to whom."""

    producers: int | list[str] = 1
    consumers: int | list[str] = 1
    rate: float = 100.0
    size: Any = 1000.0
    arrivals: Literal["poisson", "constant", "onoff"] = "poisson"
    on: float = 1.0
    off: float = 1.0
    destinations: Literal["fixed", "uniform", "zipf", "hotspot"] = "uniform"
    zipf_s: float = 1.0
    hotspot_fraction: float = 0.5

    _rate = field_validator("rate", mode="before")(lambda v: parse_rate(v, "rate"))
    _on = _duration("on")
    _off = _duration("off")

    @model_validator(mode="after")
    def _periods(self) -> WorkloadSettings:
        for name in ("on", "off"):
            if getattr(self, name) <= 0:
                raise SimError(name, getattr(self, name), "a duration > 0 (mean length of on/off periods)")
        return self

    _hot = field_validator("hotspot_fraction", mode="before")(
        lambda v: parse_probability(v, "hotspot_fraction")
    )

    @field_validator("producers", "consumers", mode="before")
    @classmethod
    def _who(cls, v: Any, info: Any) -> Any:
        if isinstance(v, list):
            if not v or not all(isinstance(x, str | int) and not isinstance(x, bool) for x in v):
                raise SimError(info.field_name, v, "a count >= 1 or a non-empty list of node ids")
            return [str(x) for x in v]
        return parse_count(v, info.field_name, minimum=1)

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        d = from_spec(v, "size", parse_size)
        return d.mean if not isinstance(v, Mapping) else v

    @field_validator("zipf_s", mode="before")
    @classmethod
    def _zipf(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
            raise SimError("zipf_s", v, "an exponent > 0")
        return float(v)


class DeliverySettings(_Model):
    """Delivery guarantee and its retransmission settings."""

    guarantee: Literal["at_most_once", "at_least_once", "effectively_once"] = "at_most_once"
    ordering: Literal["none", "per_key"] = "none"
    ack_timeout: float = 0.05
    backoff: float = 2.0
    max_timeout: float = math.inf
    max_attempts: float = 5
    ack_size: float = 64.0

    _ack = _duration("ack_timeout")
    _maxt = _duration("max_timeout", allow_inf=True)
    _acks = field_validator("ack_size", mode="before")(lambda v: parse_size(v, "ack_size"))
    _att = field_validator("max_attempts", mode="before")(
        lambda v: parse_count(v, "max_attempts", minimum=1, allow_inf=True)
    )

    @field_validator("backoff", mode="before")
    @classmethod
    def _backoff(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 1:
            raise SimError("backoff", v, "a multiplier >= 1 (1 keeps the timeout fixed)")
        return float(v)

    @model_validator(mode="after")
    def _positive_timeout(self) -> DeliverySettings:
        if self.guarantee != "at_most_once" and self.ack_timeout <= 0:
            raise SimError("ack_timeout", self.ack_timeout, "a duration > 0 for acknowledged delivery")
        if self.max_timeout < self.ack_timeout:
            raise SimError(
                "max_timeout", self.max_timeout, f"a duration >= ack_timeout ({self.ack_timeout:g} s)"
            )
        return self


class BrokerSettings(_Model):
    """Where the broker runs and how it behaves (brokered patterns only)."""

    node: str = "auto"
    servers: int = 1
    service: Any = None
    durable: bool = False
    persist: float = 0.0
    capacity: float = math.inf
    overflow: Literal["reject", "drop_oldest", "drop_new", "block"] = "reject"
    confirms: bool | Literal["guarantee"] = "guarantee"
    consumer_ack: Literal["auto", "manual", "guarantee"] = "guarantee"
    ack_timeout: float = 30.0
    max_redeliveries: float = math.inf
    prefetch: int = 0
    session_timeout: float = 0.0
    reconnect_delay: float = 0.1

    _servers = field_validator("servers", mode="before")(lambda v: parse_count(v, "servers", minimum=1))
    _persist = _duration("persist")
    _ack = _duration("ack_timeout")
    _session = _duration("session_timeout")
    _reconnect = _duration("reconnect_delay")
    _capacity = field_validator("capacity", mode="before")(
        lambda v: parse_count(v, "capacity", minimum=0, allow_inf=True)
    )
    _redeliveries = field_validator("max_redeliveries", mode="before")(
        lambda v: parse_count(v, "max_redeliveries", minimum=0, allow_inf=True)
    )
    _prefetch = field_validator("prefetch", mode="before")(lambda v: parse_count(v, "prefetch", minimum=0))

    @field_validator("service", mode="before")
    @classmethod
    def _service(cls, v: Any) -> Any:
        if v is not None:
            from_spec(v, "service")
        return v

    @model_validator(mode="after")
    def _positive(self) -> BrokerSettings:
        if self.ack_timeout <= 0:
            raise SimError("ack_timeout", self.ack_timeout, "a duration > 0")
        if self.reconnect_delay <= 0:
            raise SimError("reconnect_delay", self.reconnect_delay, "a duration > 0")
        return self


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


class NetworkSettings(_Model):
    """Routing settings."""

    max_hops: int = 64

    _hops = field_validator("max_hops", mode="before")(lambda v: parse_count(v, "max_hops", minimum=1))


class Scenario(_Model):
    """One run: pattern, timing, seed, topology, links, nodes, workload and delivery guarantee.

    Examples
    --------
    >>> s = Scenario(duration="2s", warmup="500ms", links={"loss": 0.01})
    >>> s.duration, s.warmup, s.links.loss
    (2.0, 0.5, 0.01)
    >>> s.with_updates({"links.loss": 0.05}).links.loss
    0.05
    """

    pattern: str = "point_to_point"
    duration: float = 10.0
    warmup: float = 0.0
    drain: float = 60.0
    seed: int = 0
    trace: bool = False
    topology: TopologySettings = Field(default_factory=TopologySettings)
    links: LinkSettings = Field(default_factory=LinkSettings)
    nodes: NodeSettings = Field(default_factory=NodeSettings)
    workload: WorkloadSettings = Field(default_factory=WorkloadSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    faults: list[FaultSettings] = Field(default_factory=list)
    nemesis: list[NemesisSettings] = Field(default_factory=list)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Pattern tables (``[queue]``, ``[request_reply]`` ...), keyed by pattern name; each validated by its
    pattern. Written at the top level in TOML and in :meth:`to_dict`."""

    _dur = _duration("duration")
    _warm = _duration("warmup")
    _drain = _duration("drain")

    @field_validator("pattern", mode="before")
    @classmethod
    def _pattern(cls, v: Any) -> Any:
        if not isinstance(v, str) or v not in PATTERNS:
            raise SimError("pattern", v, "one of " + ", ".join(sorted(PATTERNS)))
        return v

    @field_validator("seed", mode="before")
    @classmethod
    def _seed(cls, v: Any) -> Any:
        seed = parse_count(v, "seed", minimum=0)
        if seed >= 2**63:
            raise SimError("seed", v, "a whole number in [0, 2**63)")
        return seed

    @model_validator(mode="before")
    @classmethod
    def _gather_options(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = dict(data)
            options = dict(data.pop("options", None) or {})
            for name in PATTERNS:
                if name in data:
                    options[name] = data.pop(name)
            data["options"] = options
        return data

    @model_validator(mode="after")
    def _pattern_options(self) -> Scenario:
        for name, table in self.options.items():
            if name not in PATTERNS:
                raise SimError(name, table, "a table named after a pattern: " + ", ".join(sorted(PATTERNS)))
            if not isinstance(table, Mapping):
                raise SimError(name, table, "a table of settings")
            try:
                PATTERNS[name].from_options(table)
            except SimError as exc:
                raise exc.at(name) from None
        return self

    @model_validator(mode="after")
    def _times(self) -> Scenario:
        if self.duration <= 0:
            raise SimError("duration", self.duration, "a duration > 0")
        if self.warmup >= self.duration:
            raise SimError("warmup", self.warmup, f"a duration shorter than duration ({self.duration:g} s)")
        for i, f in enumerate(self.faults):
            if f.at >= self.duration:
                raise SimError(
                    f"faults[{i}].at", f.at, f"a time before the end of the run ({self.duration:g} s)"
                )
        return self

    # -- construction ----------------------------------------------------------------------------
    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _sim_error(exc) from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Validate a plain mapping (as parsed from TOML or JSON)."""
        if not isinstance(data, Mapping):
            raise SimError("scenario", data, "a table of settings")
        return cls(**dict(data))

    @classmethod
    def from_toml(cls, path: str | Path) -> Scenario:
        """Read and validate a TOML scenario file."""
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise SimError("scenario file", str(path), "an existing TOML file") from None
        except OSError as exc:
            raise SimError("scenario file", str(path), f"a readable file ({exc.strerror})") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SimError("scenario file", str(path), f"valid TOML ({exc})") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, suitable for JSON and hashing (``inf`` as a float); pattern tables at top level."""
        data = self.model_dump(mode="python", by_alias=True)
        for name in ("faults", "nemesis"):  # unset parameters of a fault stay unset
            data[name] = [{k: v for k, v in entry.items() if v is not None} for entry in data[name]]
        data.update(data.pop("options"))
        return data

    def with_updates(self, updates: Mapping[str, Any]) -> Scenario:
        """A new scenario with dotted keys replaced (``{"links.loss": 0.05}``)."""
        data = self.to_dict()
        for key, value in updates.items():
            _set_dotted(data, key, value)
        return Scenario.from_dict(data)


_OPEN_TABLES = {"params", *PATTERNS}  # tables whose keys their owner (the topology, a pattern) checks


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    where: dict[str, Any] = data
    for i, part in enumerate(parts[:-1]):
        sub = where.get(part)
        if sub is None and i == 0 and part in PATTERNS:
            sub = where[part] = {}
        if not isinstance(sub, dict):
            raise SimError(key, value, f"a known setting ('{'.'.join(parts[: i + 1])}' is not a table)")
        where = sub
    last = parts[-1]
    if last not in where and not (len(parts) > 1 and parts[-2] in _OPEN_TABLES) and last not in PATTERNS:
        known = ", ".join(sorted(where))
        raise SimError(key, value, f"a known setting; '{'.'.join(parts[:-1]) or 'top level'}' has {known}")
    where[last] = value


_TYPE_TAGS = {"bool", "int", "float", "str", "list", "dict", "none", "function-after", "function-before"}


def _sim_error(exc: ValidationError) -> SimError:
    err = exc.errors()[0]
    loc: list[str] = []
    for part in err["loc"]:  # faults.0.at -> faults[0].at; union branches (bool, literal[...]) dropped
        if isinstance(part, str) and (part in _TYPE_TAGS or "[" in part):
            continue
        if isinstance(part, int) and loc:
            loc[-1] += f"[{part}]"
        else:
            loc.append(str(part))
    field = ".".join(loc) or "scenario"
    inner = (err.get("ctx") or {}).get("error")
    if isinstance(inner, SimError):
        # the validator names the field relative to its model; put the model's path in front
        head = loc[:-1] if loc and inner.field.split(".")[0] == loc[-1].split("[")[0] else loc
        return inner.at(".".join(head))
    kind = err["type"]
    if kind == "extra_forbidden":
        return SimError(field, err["input"], "a known key (see docs/config.md); this one is not")
    if kind == "literal_error":
        return SimError(field, err["input"], (err.get("ctx") or {}).get("expected", "a listed value"))
    if kind == "missing":
        return SimError(field, None, "a value (required)")
    return SimError(field, err.get("input"), err["msg"].removeprefix("Value error, ").lower())
