"""The calibration campaign behind ``make calibrate``: every broker, two or three settings, fit and predict.

For each :data:`SETTINGS` entry: start the broker in a temporary folder, measure at low load with a train,
fit a profile (``profiles/<name>.toml``), then measure at fractions :data:`LOADS` of the fitted saturation
and predict each from the profile alone; then the fault runs (:mod:`sim.real.faults`). Everything is
written under one folder: ``profiles/``, ``measurements/<name>-low.parquet`` (what each profile is
fitted from) and ``measurements/fault-*.parquet``, ``comparison.csv``, ``faults.csv``, and the report
(:mod:`sim.real.report`); the measurements at every load point (tens of MB) only with ``--loads DIR``. An
optional ``notes.md`` in the folder (words on its measurements) goes at the top of the report; ``--refit``
keeps it, a new campaign removes it. Every row carries the cores other processes used during its run and
during its fit's (``others_cpu``, ``fit_others_cpu``, ``cores``; :class:`sim.real.load.CpuWatch`): the
report flags the busy ones; the load averages (``load_avg``, ``fit_load_avg``) are information only. Run
it with ``python -m sim.real.calibration --out experiments/calibration``. The seeds, file names and
order are fixed, so a rerun changes only the measured numbers.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.real.fit import calibrate
from sim.real.load import LoadSpec, Measurement
from sim.real.measure import measure
from sim.real.predict import observe, predict, side_by_side
from sim.real.servers import Server, ServerUnavailable, running

__all__ = ["LOADS", "SETTINGS", "Setting", "main", "run_campaign"]

LOADS = (0.1, 0.3, 0.5, 0.7, 0.9, 1.2)
"""Offered loads, as fractions of the saturation the low-load fit predicts (1 / mean service time)."""

LOW_RATE = 100.0
"""The low load the fit is taken at (messages per second), with a train of :data:`TRAIN` messages."""
TRAIN = 1000
DURATION = 3.0
"""Seconds of publishing per load point."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    """One broker with one group of settings (the keyword arguments of :class:`LoadSpec`)."""

    name: str
    broker: str
    label: str
    options: dict[str, Any] = field(default_factory=dict)


SETTINGS = (
    Setting("rabbitmq-plain", "rabbitmq", "queue, no confirms, auto ack", {}),
    Setting(
        "rabbitmq-reliable",
        "rabbitmq",
        "queue, confirms, durable, manual ack, prefetch 100",
        {"confirms": True, "durable": True, "manual_ack": True, "prefetch": 100},
    ),
    Setting(
        "rabbitmq-prefetch1", "rabbitmq", "queue, manual ack, prefetch 1", {"manual_ack": True, "prefetch": 1}
    ),
    Setting("mosquitto-qos0", "mosquitto", "pub/sub, QoS 0", {"pattern": "pubsub", "qos": 0}),
    Setting("mosquitto-qos1", "mosquitto", "pub/sub, QoS 1", {"pattern": "pubsub", "qos": 1}),
    Setting("mosquitto-qos2", "mosquitto", "pub/sub, QoS 2", {"pattern": "pubsub", "qos": 2}),
    Setting("nats-core", "nats", "stream, core publish, no acks", {}),
    Setting(
        "nats-acked",
        "nats",
        "stream, JetStream publish acks, explicit acks, memory",
        {"confirms": True, "manual_ack": True},
    ),
    Setting(
        "nats-file",
        "nats",
        "stream, JetStream publish acks, explicit acks, file storage",
        {"confirms": True, "manual_ack": True, "durable": True},
    ),
)


def _spec(setting: Setting, url: str, rate: float, **kw: Any) -> LoadSpec:
    return LoadSpec(setting.broker, url, rate=rate, size=1024, duration=DURATION, **(setting.options | kw))


def run_setting(setting: Setting, server: Server, out: Path, loads: Path) -> list[dict[str, Any]]:
    """Fit ``setting`` at low load, then measure and predict each of :data:`LOADS`; rows of the table. The
    measurements know ``server``, so that its CPU is not counted as another process's."""
    url, version = server.url, server.version
    low = measure(_spec(setting, url, LOW_RATE, train=TRAIN), version=version, server=server)
    low.write(out / "measurements" / f"{setting.name}-low.parquet")
    profile = calibrate([low], sources=[f"measurements/{setting.name}-low.parquet"])
    path = out / "profiles" / f"{setting.name}.toml"
    profile.write(path)
    saturation = 1.0 / profile.broker["service"]["mean"]
    log.info("%s: %s", setting.name, profile.describe())
    rows = []
    for fraction in LOADS:
        spec = _spec(setting, url, round(fraction * saturation, 1))
        m: Measurement = measure(spec, version=version, server=server)
        m.write(loads / f"{setting.name}-{round(fraction * 100)}.parquet")
        obs, pred = observe(m), predict(path, spec)
        rows.append(
            {
                "setting": setting.name,
                "broker": setting.broker,
                "label": setting.label,
                "load": fraction,
                "offered": spec.rate,
                "saturation_fit": saturation,
                **side_by_side(obs, pred),
                "lateness_p99_ms": float(m.open_loop()["lateness_s"].quantile(0.99)) * 1e3,
                "delivered": obs.delivered,
                **m.conditions(),  # the machine during the point's run
                "fit_others_cpu": low.others,  # and during the low-load run its profile is fitted from
                "fit_load_avg": low.load,
            }
        )
        log.info("  %.0f%% %s", fraction * 100, rows[-1])
    return rows


def run_campaign(
    out: Path, settings: tuple[Setting, ...] = SETTINGS, faults: bool = True, loads: Path | None = None
) -> pd.DataFrame:
    """Run every setting (one server per broker) and the fault runs; write the folder and the report.
    The measurements at each load point go to ``loads`` (default: a temporary folder, deleted)."""
    from sim.real.report import machine_state, write_report
    from sim.sweep.store import atomic_write

    rows: list[dict[str, Any]] = []
    versions: dict[str, str] = {}
    scratch = tempfile.TemporaryDirectory(prefix="sim-calibration-loads-")
    loads = loads or Path(scratch.name)
    for broker in dict.fromkeys(s.broker for s in settings):
        with tempfile.TemporaryDirectory(prefix=f"sim-{broker}-") as folder:
            try:
                with running(broker, Path(folder)) as server:
                    versions[broker] = server.version
                    for setting in (s for s in settings if s.broker == broker):
                        rows += run_setting(setting, server, out, loads)
            except ServerUnavailable as exc:
                log.warning("%s skipped: %s", broker, exc)
    scratch.cleanup()
    (out / "notes.md").unlink(missing_ok=True)  # what it said was about the measurements replaced here
    table = pd.DataFrame(rows)
    table["machine"] = machine_state(table)  # quiet, busy or unknown: for readers of the table alone
    atomic_write(out / "comparison.csv", table.to_csv(index=False, float_format="%.6g"))
    fault_table = None
    if faults:
        from sim.real.faults import run_faults

        fault_table = run_faults(out)
        atomic_write(out / "faults.csv", fault_table.to_csv(index=False, float_format="%.6g"))
    write_report(out, table, fault_table, versions)
    return table


def refit(out: Path) -> pd.DataFrame:
    """Fit the profiles again from the folder's low-load measurements and predict every row of its
    ``comparison.csv`` and ``faults.csv`` again, without a broker: what a change of the fit or of the model
    does to the committed report. The measured columns stay as they are."""
    from sim.real.faults import predict_faults
    from sim.real.load import read
    from sim.real.report import machine_state, write_report
    from sim.sweep.store import atomic_write

    table = pd.read_csv(out / "comparison.csv")
    versions: dict[str, str] = {}
    by_name = {s.name: s for s in SETTINGS}
    for name in dict.fromkeys(table["setting"]):
        low = read(out / "measurements" / f"{name}-low.parquet")
        versions.setdefault(low.spec.broker, low.meta.get("broker_version", "unknown"))
        fit = [low.others, low.load, low.cores]
        table.loc[table["setting"] == name, ["fit_others_cpu", "fit_load_avg", "cores"]] = fit
        calibrate([low], sources=[f"measurements/{name}-low.parquet"]).write(
            out / "profiles" / f"{name}.toml"
        )
    for i, row in table.iterrows():
        spec = _spec(by_name[row["setting"]], "amqp://127.0.0.1:1", float(row["offered"]))
        pred = predict(out / "profiles" / f"{row['setting']}.toml", spec)
        table.loc[i, ["p50_sim_ms", "p99_sim_ms", "throughput_sim"]] = [
            pred.p50 * 1e3,
            pred.p99 * 1e3,
            pred.throughput,
        ]
    table["machine"] = machine_state(table)
    atomic_write(out / "comparison.csv", table.to_csv(index=False, float_format="%.6g"))
    faults = pd.read_csv(out / "faults.csv") if (out / "faults.csv").is_file() else None
    if faults is not None:
        for i, row in faults.iterrows():
            m = read(out / "measurements" / f"fault-{row['setting']}-{row['fault']}.parquet")
            again = predict_faults(
                out / "profiles" / f"{row['setting']}.toml", m.spec, row["fault"], row["downtime_s"]
            )
            faults.loc[i, ["lost_sim", "duplicates_sim"]] = [again["lost_sim"], again["duplicates_sim"]]
            state = m.conditions()
            faults.loc[i, list(state)] = list(state.values())
        atomic_write(out / "faults.csv", faults.to_csv(index=False, float_format="%.6g"))
    notes = out / "notes.md"
    write_report(out, table, faults, versions, notes.read_text().splitlines() if notes.is_file() else [])
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="experiments/calibration", help="the folder to (re)write")
    parser.add_argument("--only", action="append", help="setting names (default: all)")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument(
        "--refit", action="store_true", help="fit and predict again from the folder's measurements"
    )
    parser.add_argument(
        "--loads", help="keep the measurements at each load point in this folder (tens of MB)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("aio_pika", "aiormq", "nats"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)  # reconnection chatter during the faults
    if args.refit:
        refit(Path(args.out))
        return 0
    chosen = tuple(s for s in SETTINGS if not args.only or s.name in args.only)
    run_campaign(
        Path(args.out), chosen, faults=not args.no_faults, loads=Path(args.loads) if args.loads else None
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
