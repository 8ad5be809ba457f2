"""Predict a measured run with ``sim``: the same load through the fitted broker model, and the error.

:func:`scenario_for` turns a measurement's settings and a profile into a scenario: a line ``n0 - n1 - n2``
(producer, broker, consumer), both links with the profile's client latency, the broker on ``n1`` with the
profile (``broker.profile``), and the measured run's rate, arrivals, size, confirms, durability, acks and
prefetch. :func:`predict` simulates it; :func:`compare` sets prediction beside measurement, load by load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.core.errors import SimError
from sim.real.load import LoadSpec, Measurement

__all__ = ["SIM_PATTERN", "Observed", "compare", "observe", "predict", "scenario_for", "side_by_side"]

SIM_PATTERN = {"queue": "queue", "pubsub": "pubsub"}
"""The measured patterns sim predicts, and the pattern that models each (request/reply has no broker path
in sim's ``request_reply``: it is measured, not predicted)."""


@dataclass(frozen=True)
class Observed:
    """The figures compared: latency percentiles (s, from the due time) and throughput (deliveries / s)."""

    offered: float
    p50: float
    p99: float
    throughput: float
    delivered: float


def observe(m: Measurement) -> Observed:
    """The compared figures of a measurement (its open-loop part; throughput over the publishing time)."""
    f = m.open_loop()
    lat = f["latency_s"].dropna()
    spec = m.spec
    done = f["delivered_ns"][f["delivered_ns"] >= 0]
    span = max(spec.duration, (float(done.max()) / 1e9) if len(done) else spec.duration)
    return Observed(
        offered=len(f) / spec.duration,
        p50=float(lat.median()) if len(lat) else math.nan,
        p99=float(lat.quantile(0.99)) if len(lat) else math.nan,
        throughput=float((f["deliveries"] > 0).sum()) / span,
        delivered=float((f["deliveries"] > 0).mean()),
    )


def scenario_for(profile: str | Path, spec: LoadSpec, *, duration: float | None = None, seed: int = 1) -> Any:
    """The scenario that models ``spec`` with the broker profile at ``profile``."""
    from sim.config.scenario import Scenario
    from sim.real.fit import Profile

    pattern = SIM_PATTERN.get(spec.pattern)
    if pattern is None:
        raise SimError("pattern", spec.pattern, "queue or pubsub (the patterns sim predicts)")
    client = Profile.read(profile).client_latency
    run = duration or spec.duration
    data: dict[str, Any] = {
        "pattern": pattern,
        "duration": run,
        "warmup": min(0.5, run / 10),
        "drain": 30.0,
        "seed": seed,
        "topology": {"name": "line", "params": {"n": 3}},
        "links": {"latency": client},
        "workload": {
            "producers": ["n0"],
            "consumers": ["n2"],
            "rate": spec.rate,
            "size": spec.size,
            "arrivals": spec.arrivals,
        },
        "delivery": {"max_attempts": 1},  # the real clients never publish a message twice
        "broker": {
            "node": "n1",
            "profile": str(Path(profile).absolute()),
            "durable": spec.durable,
            "confirms": spec.confirms or spec.qos > 0,
            "consumer_ack": "manual" if spec.manual_ack or spec.qos > 0 else "auto",
            "prefetch": spec.prefetch,
        },
    }
    return Scenario.from_dict(data)


def predict(profile: str | Path, spec: LoadSpec, *, duration: float | None = None) -> Observed:
    """What the model predicts for ``spec`` (simulated once, with the profile)."""
    from sim.run.simulate import simulate

    s = simulate(scenario_for(profile, spec, duration=duration)).summary
    return Observed(
        offered=spec.rate,
        p50=float(s["latency_p50"]),
        p99=float(s["latency_p99"]),
        throughput=float(s["throughput"]),
        delivered=float(s["delivery_ratio"]),
    )


def side_by_side(measured: Observed, predicted: Observed) -> dict[str, float]:
    """One load point's figures, measured beside predicted: p50 and p99 (ms), throughput (/s)."""
    return {
        "p50_ms": measured.p50 * 1e3,
        "p50_sim_ms": predicted.p50 * 1e3,
        "p99_ms": measured.p99 * 1e3,
        "p99_sim_ms": predicted.p99 * 1e3,
        "throughput": measured.throughput,
        "throughput_sim": predicted.throughput,
    }


def compare(profile: str | Path, measurements: list[Measurement]) -> pd.DataFrame:
    """One row per measurement: the offered load, measured and predicted p50, p99, throughput, errors."""
    rows = []
    for m in measurements:
        spec = m.spec
        if spec.pattern not in SIM_PATTERN:
            continue
        obs, pred = observe(m), predict(profile, spec)
        rows.append(
            {
                "broker": spec.broker,
                "offered": spec.rate,
                **side_by_side(obs, pred),
                "p50_error": _error(pred.p50, obs.p50),
                "p99_error": _error(pred.p99, obs.p99),
                "throughput_error": _error(pred.throughput, obs.throughput),
            }
        )
    return pd.DataFrame(rows)


def _error(predicted: float, measured: float) -> float:
    """Relative error of a prediction: (predicted - measured) / measured."""
    if not np.isfinite(measured) or measured == 0:
        return math.nan
    return (predicted - measured) / measured
