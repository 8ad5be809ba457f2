"""The open-loop schedule, the recorder's table and file, and the fit, without a broker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.cli.main import main
from sim.core.errors import SimError
from sim.real.fit import calibrate, service_time
from sim.real.load import COLUMNS, LoadSpec, Measurement, Recorder, read, schedule


def _spec(**kw: object) -> LoadSpec:
    return LoadSpec("rabbitmq", "amqp://127.0.0.1:1", **({"rate": 1000.0, "duration": 2.0} | kw))  # type: ignore[arg-type]


def test_poisson_schedule_has_the_rate_and_is_repeatable() -> None:
    due = schedule(_spec(rate=5000.0))
    assert abs(len(due) - 10_000) < 400 and (np.diff(due) >= 0).all() and due[-1] < 2.0
    gaps = np.diff(due)
    assert abs(gaps.std() / gaps.mean() - 1) < 0.05  # exponential gaps: cv 1
    assert (schedule(_spec(rate=5000.0)) == due).all()
    assert not np.array_equal(schedule(_spec(rate=5000.0, seed=2))[:50], due[:50])


def test_constant_schedule_and_train() -> None:
    due = schedule(_spec(arrivals="constant", rate=100.0, train=20))
    assert np.allclose(np.diff(due[:200]), 0.01)
    assert (due[200:] == due[200]).all() and len(due) == 220 and due[200] > due[199]


@pytest.mark.parametrize(("key", "value"), [("rate", 0), ("size", 8), ("qos", 3), ("arrivals", "onoff")])
def test_bad_settings_are_one_error(key: str, value: object) -> None:
    with pytest.raises(SimError, match=key):
        _spec(**{key: value})


def _measurement(service: float, n_train: int = 400, seed: int = 0) -> Measurement:
    """A synthetic record: open-loop messages with 1 ms latency, then a train served every ``service`` s
    (exponential), delivered in bursts of 8 as a socket read would."""
    rng = np.random.default_rng(seed)
    spec = _spec(rate=100.0, duration=1.0, train=n_train)
    due = schedule(spec)
    rec = Recorder(len(due), len(due) - n_train)
    rec.due_ns[:] = rec.sent_ns[:] = (due * 1e9).astype(np.int64)
    lat = rng.lognormal(np.log(0.001), 0.3, len(due))
    rec.delivered_ns[: rec.open_loop] = rec.due_ns[: rec.open_loop] + (lat[: rec.open_loop] * 1e9).astype(
        np.int64
    )
    done = due[-1] + 0.001 + np.cumsum(rng.exponential(service, n_train))
    bursts = np.maximum.accumulate(done)[7::8].repeat(8)[:n_train]  # 8 at a time, at the last one's time
    rec.delivered_ns[rec.open_loop :] = (bursts * 1e9).astype(np.int64)
    rec.deliveries[:] = 1
    return Measurement.from_run(spec, rec, "test")


def test_the_train_gives_the_service_time_despite_bursts() -> None:
    mean, cv = service_time(_measurement(0.0004, n_train=1600))
    assert mean == pytest.approx(0.0004, rel=0.1)
    assert cv == pytest.approx(1.0, abs=0.25)  # exponential service times


def test_a_profile_from_a_transient_and_a_durable_run_has_the_persist_cost(tmp_path: Path) -> None:
    durable = _measurement(0.0006, seed=1)
    durable.meta["spec"]["durable"] = True
    p = calibrate([_measurement(0.0004), durable])
    assert p.broker["persist"] == pytest.approx(0.0002, abs=0.0001)
    link = p.client_latency["mean"] * 2 + p.broker["service"]["mean"]
    assert link == pytest.approx(0.00105, rel=0.2)  # the open-loop latency's mean is rebuilt
    p.write(tmp_path / "p.toml")
    assert "persist = 0.000" in (tmp_path / "p.toml").read_text()


def test_a_measurement_round_trips_through_parquet(tmp_path: Path) -> None:
    m = _measurement(0.0004)
    m.write(tmp_path / "m.parquet")
    back = read(tmp_path / "m.parquet")
    assert list(back.frame.columns) == list(COLUMNS)
    assert back.frame.equals(m.frame) and back.meta == m.meta
    assert back.spec == m.spec


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.parquet"
    bad.write_text("not parquet")
    assert main(["calibrate", str(bad), "--out", str(tmp_path / "p.toml")]) == 2
    assert main(["measure", "nats", "--out", str(tmp_path / "m.parquet")]) == 2
    assert main(["measure", "nats", "--start", "--fault", "1s:explode", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":")[0:2] for line in err] == [["sim", " error"]] * 3
    assert "measurement" in err[0] and "--url" in err[1] and "--fault" in err[2]


def test_each_broker_measures_its_own_patterns() -> None:
    with pytest.raises(SimError, match="pattern = 'queue': expected one of pubsub for mosquitto"):
        LoadSpec("mosquitto", "mqtt://127.0.0.1:1", rate=1.0, pattern="queue")
    with pytest.raises(SimError, match="pattern"):
        LoadSpec("nats", "nats://127.0.0.1:1", rate=1.0, pattern="pubsub")
    assert (
        LoadSpec("rabbitmq", "amqp://127.0.0.1:1", rate=1.0, pattern="request_reply").pattern
        == "request_reply"
    )


def test_a_delivery_of_a_message_not_yet_sent_is_stray() -> None:
    rec = Recorder(3, 3)
    rec.delivered(1)  # an earlier run's leftover, numbered like this run's message 1
    assert rec.stray == 1 and rec.deliveries[1] == 0 and rec.delivered_ns[1] == -1
    rec.sent(1, rec.now())
    rec.delivered(1)
    rec.delivered(7)  # beyond the run
    assert rec.stray == 2 and rec.deliveries[1] == 1 and rec.delivered_ns[1] >= rec.sent_ns[1]
