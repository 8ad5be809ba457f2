"""Samplers for latencies, service times and message sizes.

Each distribution is a small frozen object with ``sample(stream)``, its ``mean`` and its second
moment ``m2`` (what the Pollaczek–Khinchine formula needs). Build them from config with
:func:`from_spec`: a number or a unit string is a constant; a table names ``dist`` and its parameters.

>>> from sim.core.rng import RngStreams
>>> d = from_spec({"dist": "exponential", "mean": "2ms"}, "links.latency")
>>> d.mean
0.002
>>> from_spec("5ms", "links.latency")
Constant(value=0.005)
>>> s = RngStreams(1).stream("x")
>>> 0 <= d.sample(s) < 1
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sim.core.errors import SimError
from sim.core.rng import Stream
from sim.core.units import parse_duration, parse_rate

__all__ = [
    "Constant",
    "Distribution",
    "Empirical",
    "Exponential",
    "LogNormal",
    "Normal",
    "Pareto",
    "Uniform",
    "from_spec",
]

Parser = Callable[[object, str], float]


class Distribution(Protocol):
    """What every sampler offers."""

    @property
    def mean(self) -> float: ...

    @property
    def m2(self) -> float: ...

    def sample(self, stream: Stream) -> float: ...


@dataclass(frozen=True, slots=True)
class Constant:
    """Always ``value``."""

    value: float

    @property
    def mean(self) -> float:
        return self.value

    @property
    def m2(self) -> float:
        return self.value**2

    def sample(self, stream: Stream) -> float:
        return self.value


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniform on [low, high)."""

    low: float
    high: float

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    @property
    def m2(self) -> float:
        return (self.low**2 + self.low * self.high + self.high**2) / 3

    def sample(self, stream: Stream) -> float:
        return self.low + (self.high - self.low) * stream.random()


@dataclass(frozen=True, slots=True)
class Exponential:
    """Exponential with the given mean (rate = 1/mean)."""

    mean: float

    @property
    def m2(self) -> float:
        return 2 * self.mean**2

    def sample(self, stream: Stream) -> float:
        return stream.exponential(self.mean)


def _phi(x: float) -> float:
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@dataclass(frozen=True, slots=True)
class Normal:
    """Normal(mu, sigma) truncated at 0 (negative draws are redrawn); ``mean`` is the truncated mean."""

    mu: float
    sigma: float

    @property
    def mean(self) -> float:
        if self.sigma == 0:
            return max(self.mu, 0.0)
        a = -self.mu / self.sigma
        return self.mu + self.sigma * _phi(a) / (1 - _cdf(a))

    @property
    def m2(self) -> float:
        if self.sigma == 0:
            return max(self.mu, 0.0) ** 2
        a = -self.mu / self.sigma
        z = 1 - _cdf(a)
        lam = _phi(a) / z
        var = self.sigma**2 * (1 + a * lam - lam**2)
        return var + self.mean**2

    def sample(self, stream: Stream) -> float:
        for _ in range(1000):
            x = stream.normal(self.mu, self.sigma)
            if x >= 0:
                return x
        return 0.0  # mu far below zero: the truncated mass sits at 0 to within rounding


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Lognormal with the given ``mean`` and coefficient of variation ``cv``."""

    mean: float
    cv: float

    @property
    def sigma(self) -> float:
        return math.sqrt(math.log1p(self.cv**2))

    @property
    def mu(self) -> float:
        return math.log(self.mean) - self.sigma**2 / 2 if self.mean > 0 else -math.inf

    @property
    def m2(self) -> float:
        return self.mean**2 * (1 + self.cv**2)

    def sample(self, stream: Stream) -> float:
        if self.mean == 0:
            return 0.0
        return math.exp(stream.normal(self.mu, self.sigma))


@dataclass(frozen=True, slots=True)
class Pareto:
    """Pareto (type I) with tail index ``shape`` > 1 and minimum ``scale``."""

    shape: float
    scale: float

    @property
    def mean(self) -> float:
        if self.shape <= 1:
            return math.inf
        return self.shape * self.scale / (self.shape - 1)

    @property
    def m2(self) -> float:
        if self.shape <= 2:
            return math.inf
        return self.shape * self.scale**2 / (self.shape - 2)

    def sample(self, stream: Stream) -> float:
        return float(self.scale / (1.0 - stream.random()) ** (1.0 / self.shape))


@dataclass(frozen=True, slots=True)
class Empirical:
    """Resamples the given observations uniformly."""

    samples: tuple[float, ...] = field(repr=False)

    @property
    def mean(self) -> float:
        return math.fsum(self.samples) / len(self.samples)

    @property
    def m2(self) -> float:
        return math.fsum(x * x for x in self.samples) / len(self.samples)

    def sample(self, stream: Stream) -> float:
        return self.samples[int(stream.random() * len(self.samples))]


def _param(spec: Mapping[str, object], key: str, where: str, parse: Parser) -> float:
    if key not in spec:
        raise SimError(f"{where}.{key}", None, f"a value for '{key}' (missing)")
    return parse(spec[key], f"{where}.{key}")


def _positive(x: float, where: str, raw: object) -> float:
    if not x > 0:
        raise SimError(where, raw, "a value > 0")
    return x


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise SimError(where, value, "a finite number >= 0")
    return float(value)


_PARAMS: dict[str, tuple[set[str], ...]] = {
    "constant": ({"value"},),
    "uniform": ({"low", "high"},),
    "exponential": ({"mean"}, {"rate"}),
    "normal": ({"mean", "std"},),
    "lognormal": ({"mean", "cv"},),
    "pareto": ({"shape", "scale"}, {"shape", "mean"}),
    "empirical": ({"samples"},),
}


def from_spec(spec: object, where: str, parse: Parser = parse_duration) -> Distribution:
    """Build a distribution from config.

    Parameters
    ----------
    spec : number, str or mapping
        A constant (``"5ms"``, ``0.005``) or a table with ``dist`` and parameters:
        ``constant(value)``, ``uniform(low, high)``, ``exponential(mean | rate)``, ``normal(mean, std)``
        (truncated at 0), ``lognormal(mean, cv)``, ``pareto(shape, scale | mean)``, ``empirical(samples)``.
    where : str
        The config field, for error messages.
    parse : callable
        Parses each value in its unit (durations by default; :func:`sim.core.units.parse_size` for sizes).
    """
    if not isinstance(spec, Mapping):
        return Constant(parse(spec, where))
    kind = spec.get("dist")
    if not isinstance(kind, str) or kind not in _PARAMS:
        raise SimError(f"{where}.dist", kind, "one of " + ", ".join(sorted(_PARAMS)))
    keys = set(spec) - {"dist"}
    if not any(keys == allowed for allowed in _PARAMS[kind]):
        forms = " or ".join("(" + ", ".join(sorted(a)) + ")" for a in _PARAMS[kind])
        raise SimError(f"{where}", dict(spec), f"dist = '{kind}' with parameters {forms}")
    if kind == "constant":
        return Constant(_param(spec, "value", where, parse))
    if kind == "uniform":
        low, high = (_param(spec, k, where, parse) for k in ("low", "high"))
        if high < low:
            raise SimError(f"{where}.high", spec["high"], f"a value >= low ({spec['low']!r})")
        return Uniform(low, high)
    if kind == "exponential":
        if "rate" in spec:
            return Exponential(1.0 / parse_rate(spec["rate"], f"{where}.rate"))
        return Exponential(_param(spec, "mean", where, parse))
    if kind == "normal":
        return Normal(_param(spec, "mean", where, parse), _param(spec, "std", where, parse))
    if kind == "lognormal":
        mean = _param(spec, "mean", where, parse)
        return LogNormal(mean, _number(spec["cv"], f"{where}.cv"))
    if kind == "pareto":
        shape = _number(spec["shape"], f"{where}.shape")
        if shape <= 1:  # the mean must be finite: routing and every closed form depend on it
            raise SimError(f"{where}.shape", spec["shape"], "a shape > 1 (finite mean)")
        if "mean" in spec:
            mean = _param(spec, "mean", where, parse)
            return Pareto(shape, mean * (shape - 1) / shape)
        return Pareto(shape, _param(spec, "scale", where, parse))
    samples = spec["samples"]
    if isinstance(samples, str | bytes) or not isinstance(samples, Sequence) or len(samples) == 0:
        raise SimError(f"{where}.samples", samples, "a non-empty list of values")
    return Empirical(tuple(parse(x, f"{where}.samples[{i}]") for i, x in enumerate(samples)))
