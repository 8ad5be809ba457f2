"""Fit ``sim``'s broker model to low-load measurements of a real broker: a broker profile.

The model (sim/model/broker) gives every publish one service time on the broker's servers, plus
``persist`` when the queue is durable; the clients reach it over links. From measurements at low load with a
train (``sim measure --train N``) the fit takes:

- **service time** (``[broker].service``, lognormal): its *mean* from the train's dispersion, the span of
  the train's deliveries over its length (``(t_last - t_first) / (N - 1)``): back to back, the bottleneck
  never idles, so its departures are spaced by its service times (the packet-train method of network
  measurement). Deliveries reach the client in bursts (several per socket read), so single gaps mean
  nothing; the *variance* comes from sums of 50 consecutive gaps (batch means: var(S) = var(sum) / 50), so
  bursts inside a block cancel out; capped at 3, since what varies more than that from block to block is
  stalls of the machine or the client (a collector, a busy neighbour), not the cost of a message. The
  bottleneck is whatever is slowest on the path: the broker's queue
  process, or the Python client itself; the profile describes the pair, and says so.
- **persistence** (``[broker].persist``): given a transient and a durable measurement of the same broker,
  the difference of their mean service times (never below 0); given one, 0 (the service time holds it).
- **client latency** (``[profile].client_latency``, one way, for each of the two links of the
  calibration topology): a lognormal per link such that link + service + link has the 10th, 50th and
  90th percentiles (the median weighted most) of the open-loop latencies L (from the due time, so the
  publisher's timer lateness is part of it); started from a maximum-likelihood fit of L minus the mean
  service time (``scipy.stats.lognorm.fit``), then moved by Nelder-Mead (``scipy.optimize.minimize``)
  on fixed random draws (:func:`client_latency`).
- **confirm round trip** (``[profile].confirm_p50``, measured, for reference: the model's confirm costs
  the same service and links and nothing more).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.core.errors import SimError
from sim.real.load import Measurement

__all__ = ["BATCH", "Profile", "calibrate", "client_latency", "service_time"]

BATCH = 50
"""Gaps summed per block for the service time's variance."""


@dataclass(frozen=True)
class Profile:
    """A fitted broker profile: the ``[broker]`` settings and what they were fitted from."""

    broker: dict[str, Any]
    client_latency: dict[str, Any]
    about: dict[str, Any] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        """Write the profile as TOML (atomically)."""
        from sim.sweep.store import atomic_write

        lines = ["# A broker profile for sim, fitted by `sim calibrate` (docs/calibrate.md).", "[profile]"]
        lines += [f"{k} = {_toml(v)}" for k, v in self.about.items()]
        lines.append(f"client_latency = {_toml(self.client_latency)}")
        lines += ["", "[broker]"]
        lines += [f"{k} = {_toml(v)}" for k, v in self.broker.items()]
        atomic_write(Path(path), "\n".join(lines) + "\n")

    def describe(self) -> str:
        s, c = self.broker["service"], self.client_latency
        return (
            f"{self.about.get('broker', '?')}: service mean {s['mean'] * 1e6:.1f} us (cv {s['cv']:.2f}, "
            f"saturation ~{1 / s['mean']:.0f}/s per server), persist {self.broker['persist'] * 1e6:.1f} us, "
            f"client latency {c['mean'] * 1e6:.1f} us per link (cv {c['cv']:.2f})"
        )

    @classmethod
    def read(cls, path: str | Path) -> Profile:
        import tomllib

        from sim.config.profile import load_profile

        broker = load_profile(path)
        about = dict(tomllib.loads(Path(path).read_text(encoding="utf-8")).get("profile", {}))
        client = about.pop("client_latency", None)
        if not isinstance(client, dict) or set(client) != {"dist", "mean", "cv"}:
            raise SimError("profile.client_latency", client, "a lognormal table (written by sim calibrate)")
        return cls(broker, client, about)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def service_time(m: Measurement) -> tuple[float, float]:
    """Mean service time (s) and its coefficient of variation, from the measurement's train."""
    train = m.frame[m.frame["phase"] == "train"]
    t = np.sort(train.loc[train["delivered_ns"] >= 0, "delivered_ns"].to_numpy()) / 1e9
    if len(t) < 2 * BATCH + 1:
        raise SimError(
            "measurement",
            m.meta["spec"]["url"],
            f"a train of at least {2 * BATCH + 1} delivered messages (--train)",
        )
    gaps = np.diff(t)
    mean = float((t[-1] - t[0]) / (len(t) - 1))
    blocks = gaps[: len(gaps) // BATCH * BATCH].reshape(-1, BATCH).sum(axis=1)
    var = float(np.var(blocks, ddof=1)) / BATCH if len(blocks) > 1 else 0.0
    cv = min(3.0, max(0.05, math.sqrt(var) / mean)) if mean > 0 else 0.05
    return mean, cv


QUANTILES = (0.1, 0.5, 0.9)
"""The latency quantiles the client latency is fitted to, and their weights (the median first)."""
WEIGHTS = np.array([1.0, 10.0, 1.0])


def _lognormal(z: np.ndarray, mean: float, cv: float) -> np.ndarray:
    sigma = math.sqrt(math.log1p(cv * cv))
    return np.asarray(np.exp(math.log(mean) - sigma * sigma / 2 + sigma * z))


def client_latency(m: Measurement, service_mean: float, service_cv: float = 1.0) -> tuple[float, float]:
    """Mean and cv of one link's latency (lognormal, the same on both links).

    Start: (L - mean service) fitted lognormal by maximum likelihood (``scipy.stats.lognorm.fit``, loc 0),
    split over two links. Then the two parameters are moved (Nelder-Mead, ``scipy.optimize.minimize``) until
    link + service + link, drawn with fixed normal variates, has the measured 10th, 50th and 90th
    percentiles of L (weighted least squares on their logarithms, the median ten times the others: two
    parameters cannot always meet all three): the model's low-load latency is that sum.
    """
    from scipy import optimize, stats

    lat = m.open_loop()["latency_s"].dropna().to_numpy()
    rest = lat - service_mean
    rest = rest[rest > 0]
    if len(rest) < 20:
        raise SimError("measurement", m.meta["spec"]["url"], "at least 20 delivered open-loop messages")
    shape, _, scale = stats.lognorm.fit(rest, floc=0)
    mean = float(scale * math.exp(shape**2 / 2)) / 2
    cv = float(math.sqrt(math.exp(shape**2) - 1)) * math.sqrt(2)
    z = np.random.default_rng(0).standard_normal((3, 20_000))  # fixed draws: the fit is deterministic
    service = _lognormal(z[2], service_mean, service_cv)
    target = np.log(np.quantile(lat, QUANTILES))

    def loss(x: np.ndarray) -> float:
        link_mean, link_cv = math.exp(x[0]), math.exp(x[1])
        total = _lognormal(z[0], link_mean, link_cv) + _lognormal(z[1], link_mean, link_cv) + service
        return float((WEIGHTS * (np.log(np.quantile(total, QUANTILES)) - target) ** 2).sum())

    best = optimize.minimize(loss, [math.log(mean), math.log(cv)], method="Nelder-Mead")
    if not best.success or loss(best.x) > loss(np.array([math.log(mean), math.log(cv)])):
        return mean, cv
    return math.exp(best.x[0]), math.exp(best.x[1])


def _confirm_p50(m: Measurement) -> float | None:
    f = m.open_loop()
    ok = f[(f["confirmed_ns"] >= 0) & (f["sent_ns"] >= 0)]
    return float(((ok["confirmed_ns"] - ok["sent_ns"]) / 1e9).median()) if len(ok) else None


def calibrate(measurements: list[Measurement], sources: list[str] | None = None) -> Profile:
    """A :class:`Profile` from one measurement, or a transient and a durable one of the same broker."""
    if not measurements:
        raise SimError("measurement", [], "at least one measurement")
    brokers = {m.meta["spec"]["broker"] for m in measurements}
    if len(brokers) > 1:
        raise SimError("measurement", sorted(brokers), "measurements of one broker")
    transient = [m for m in measurements if not m.meta["spec"]["durable"]]
    durable = [m for m in measurements if m.meta["spec"]["durable"]]
    base = (transient or durable)[0]
    mean, cv = service_time(base)
    persist = 0.0
    if transient and durable:
        persist = max(0.0, service_time(durable[0])[0] - mean)
    link_mean, link_cv = client_latency(base, mean, cv)
    spec = base.meta["spec"]
    machine = base.meta["machine"]
    about: dict[str, Any] = {
        "broker": spec["broker"],
        "broker_version": base.meta.get("broker_version", "unknown"),
        "settings": _settings(spec),
        "machine": f"{machine['platform']}; {machine['processor']}; {machine['cores']} cores",
        "method": "service: train dispersion (mean) and batch means of 50 gaps (cv, at most 3); "
        "client latency: lognormal per link, link + service + link matched to the 10/50/90th "
        "percentiles of the latency (scipy.optimize.minimize, Nelder-Mead, from scipy.stats.lognorm.fit)",
        "sources": [Path(s).name for s in (sources or [])],
    }
    c = _confirm_p50(base)
    if c is not None:
        about["confirm_p50"] = c
    return Profile(
        broker={"service": {"dist": "lognormal", "mean": mean, "cv": cv}, "persist": persist, "servers": 1},
        client_latency={"dist": "lognormal", "mean": link_mean, "cv": link_cv},
        about=about,
    )


def _settings(spec: dict[str, Any]) -> str:
    parts = [spec["pattern"], f"{spec['size']} B", f"low load {spec['rate']:g}/s"]
    for key in ("confirms", "durable", "manual_ack"):
        if spec[key]:
            parts.append(key.replace("_", "-"))
    if spec["prefetch"]:
        parts.append(f"prefetch {spec['prefetch']}")
    if spec["broker"] == "mosquitto":
        parts.append(f"QoS {spec['qos']}")
    return ", ".join(parts)
