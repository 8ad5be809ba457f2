"""Faults on a real broker, and what ``sim`` predicts for the same schedule.

Each :data:`CASES` entry runs RabbitMQ under one guarantee setting with one fault: ``bounce`` (SIGKILL, then
a restart on the same data: a crash and its supervisor) or a pause (SIGSTOP, SIGCONT 0.5 s later). The
record gives, per message: sent, confirmed, delivered (how often). Counted:

- ``lost``: sent and not delivered by the end of the run; ``lost_confirmed``: of those, the ones the
  broker had confirmed (the publisher believes them safe: either lost silently, or still in a durable
  queue that no consumer drained before the end);
- ``duplicates``: deliveries beyond the first.

``sim`` runs the same load with the setting's profile (``profiles/<setting>.toml``) and a ``crash`` of the
broker node for the measured downtime (from the kill until the restarted broker answered) or a ``pause``,
with the same at-most-once client (no retries: the real publisher does not retry either). Its ``lost`` and
``duplicates`` go beside the measured ones.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.real.load import LoadSpec, Measurement
from sim.real.measure import measure
from sim.real.servers import ServerUnavailable, running

__all__ = ["CASES", "FaultCase", "counts", "predict_faults", "run_faults"]

log = logging.getLogger(__name__)

RATE = 300.0
DURATION = {"crash": 20.0, "pause": 4.0}
"""Seconds of publishing: a crashed RabbitMQ takes several seconds to restart (it recovers its message
store), and the run goes on past it."""
AT = 2.0
PAUSE = 0.5


@dataclass(frozen=True)
class FaultCase:
    """A guarantee setting (its profile's name and options) under one fault."""

    setting: str
    fault: str
    options: dict[str, Any]


_TRANSIENT: dict[str, Any] = {}
_RELIABLE: dict[str, Any] = {"confirms": True, "durable": True, "manual_ack": True, "prefetch": 100}
CASES = (
    FaultCase("rabbitmq-plain", "crash", _TRANSIENT),
    FaultCase("rabbitmq-reliable", "crash", _RELIABLE),
    FaultCase("rabbitmq-plain", "pause", _TRANSIENT),
    FaultCase("rabbitmq-reliable", "pause", _RELIABLE),
)


def counts(m: Measurement) -> dict[str, float]:
    """Sent, confirmed, delivered, lost, lost after a confirm, duplicates, publish errors of a run."""
    f = m.open_loop()
    sent = f["sent_ns"] >= 0
    delivered = f["deliveries"] > 0
    return {
        "sent": int(sent.sum()),
        "publish_errors": int(m.meta.get("publish_errors", 0)),
        "confirmed": int((f["confirmed_ns"] >= 0).sum()),
        "delivered": int(delivered.sum()),
        "lost": int((sent & ~delivered).sum()),
        "lost_confirmed": int(((f["confirmed_ns"] >= 0) & ~delivered).sum()),
        "duplicates": int((f["deliveries"] - 1).clip(lower=0).sum()),
    }


def predict_faults(profile: Path, spec: LoadSpec, fault: str, downtime: float) -> dict[str, float]:
    """``sim``'s lost and duplicates for ``spec`` with the broker crashed for ``downtime`` s or paused."""
    from sim.real.predict import scenario_for
    from sim.run.simulate import simulate

    base = scenario_for(profile, spec)
    action = {"at": AT, "action": fault, "target": "n1", "for": downtime if fault == "crash" else PAUSE}
    scenario = base.with_updates({"faults": [action], "warmup": 0.0})
    s = simulate(scenario).summary
    return {"lost_sim": float(s["lost"]), "duplicates_sim": float(s["duplicates"])}


def run_faults(out: Path, cases: tuple[FaultCase, ...] = CASES) -> pd.DataFrame:
    """Run every case on one RabbitMQ (profiles from ``out/profiles``); the table of counts."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="sim-rabbitmq-faults-") as folder:
        try:
            with running("rabbitmq", Path(folder)) as server:
                for case in cases:
                    spec = LoadSpec(
                        "rabbitmq", server.url, rate=RATE, duration=DURATION[case.fault], **case.options
                    )
                    schedule = (
                        [(AT, "bounce")] if case.fault == "crash" else [(AT, "pause"), (AT + PAUSE, "resume")]
                    )
                    m = measure(spec, version=server.version, server=server, faults=schedule)
                    m.write(out / "measurements" / f"fault-{case.setting}-{case.fault}.parquet")
                    applied = m.meta["faults_applied"]
                    downtime = applied[0][2] - applied[0][1] if case.fault == "crash" else PAUSE
                    row: dict[str, Any] = {
                        "setting": case.setting,
                        "fault": case.fault,
                        "downtime_s": downtime,
                    }
                    row |= counts(m)
                    row |= m.conditions()
                    row |= predict_faults(
                        out / "profiles" / f"{case.setting}.toml", spec, case.fault, downtime
                    )
                    rows.append(row)
                    log.info("fault %s", row)
        except ServerUnavailable as exc:
            log.warning("faults skipped: %s", exc)
    return pd.DataFrame(rows)
