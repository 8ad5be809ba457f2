"""The sections of a scenario: topology, links, nodes, workload, delivery, broker and network settings.

Each is a frozen pydantic model that parses unit strings into plain numbers and raises
:class:`sim.core.errors.SimError` for a bad value; :class:`sim.config.scenario.Scenario` assembles them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sim.core.distributions import from_spec
from sim.core.errors import SimError
from sim.core.units import (
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
    "LinkSettings",
    "NetworkSettings",
    "NodeSettings",
    "TopologySettings",
    "WorkloadSettings",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _optional_distribution(value: Any, field: str) -> Any:
    """Check a distribution table (or constant) and keep it as given; ``None`` means none."""
    if value is not None:
        from_spec(value, field)
    return value


def _duration(field: str, *, allow_inf: bool = False) -> Any:
    return field_validator(field, mode="before")(lambda v: parse_duration(v, field, allow_inf=allow_inf))


def strict_bool(value: Any, field: str) -> bool:
    """``true`` or ``false`` only: pydantic's lax mode would read ``"no"`` as ``False`` and ``"yes"`` or ``1``
    as ``True``, a silent wrong effect for a value the user meant as something else."""
    if not isinstance(value, bool):
        raise SimError(field, value, "true or false")
    return value


def _bool(field: str) -> Any:
    return field_validator(field, mode="before")(lambda v: strict_bool(v, field))


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

    _service = field_validator("service", mode="before")(lambda v: _optional_distribution(v, "service"))


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
            ids = [str(x) for x in v]
            twice = next((x for i, x in enumerate(ids) if x in ids[:i]), None)
            if twice is not None:  # listed twice would silently double that node's load
                raise SimError(info.field_name, v, f"distinct node ids ({twice!r} is listed twice)")
            return ids
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
    dedup: Literal["consumer", "shared"] = "consumer"
    """effectively_once's dedup memory: per consumer (volatile) or shared by the consumers of a queue."""

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
    replicas: int | list[str] = 1
    """Replicas of the broker's queues (a count: the broker node, then the topology's other nodes with role
    ``broker``; or node ids, the first leads): 1 is a single broker; N > 1 replicates quorum-queue style."""
    election_delay: float = 1.0
    """Seconds from a replicated broker's leader crash to the new leader (failure detection + election)."""
    reconnect_delay: float = 0.1
    profile: str | None = None
    """A broker profile (``sim calibrate``, docs/calibrate.md): its ``service``, ``persist`` and ``servers``
    where this table gives none."""

    @model_validator(mode="before")
    @classmethod
    def _profile(cls, data: Any) -> Any:
        from sim.config.profile import apply_profile

        return apply_profile(data)

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
    _election = _duration("election_delay")

    @field_validator("replicas", mode="before")
    @classmethod
    def _replicas(cls, v: Any) -> Any:
        if isinstance(v, list):
            if not v or not all(isinstance(x, str) for x in v) or len(set(v)) != len(v):
                raise SimError("replicas", v, "a count >= 1 or a list of distinct node ids")
            return v
        return parse_count(v, "replicas", minimum=1)

    _service = field_validator("service", mode="before")(lambda v: _optional_distribution(v, "service"))
    _durable = _bool("durable")

    @field_validator("confirms", mode="before")
    @classmethod
    def _confirms(cls, v: Any) -> Any:
        if v != "guarantee" and not isinstance(v, bool):
            raise SimError("confirms", v, 'true, false or "guarantee"')
        return v

    @model_validator(mode="after")
    def _positive(self) -> BrokerSettings:
        if self.ack_timeout <= 0:
            raise SimError("ack_timeout", self.ack_timeout, "a duration > 0")
        if self.reconnect_delay <= 0:
            raise SimError("reconnect_delay", self.reconnect_delay, "a duration > 0")
        return self


class NetworkSettings(_Model):
    """Routing settings."""

    max_hops: int = 64
    route_memory: float = 256 * 2**20

    _hops = field_validator("max_hops", mode="before")(lambda v: parse_count(v, "max_hops", minimum=1))
    _memory = field_validator("route_memory", mode="before")(lambda v: parse_size(v, "route_memory"))
