"""RabbitMQ 3.10 on loopback: the recorder, the settings, the fit, and a prediction checked against it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from sim.cli.main import main
from sim.real.faults import counts
from sim.real.fit import calibrate
from sim.real.load import LoadSpec, read
from sim.real.measure import measure
from sim.real.predict import observe, predict
from sim.real.servers import Server

pytestmark = pytest.mark.real


def _spec(server: Server, **kw: object) -> LoadSpec:
    base: dict[str, object] = {"rate": 100.0, "duration": 1.0, "size": 256}
    return LoadSpec("rabbitmq", server.url, **(base | kw))  # type: ignore[arg-type]


def test_every_message_is_recorded_on_one_clock(rabbitmq: Server) -> None:
    m = measure(_spec(rabbitmq, confirms=True, durable=True, manual_ack=True, prefetch=10), version="x")
    f = m.frame
    assert len(f) > 50 and (f["deliveries"] == 1).all()  # each message delivered exactly once
    assert (f["confirmed_ns"] >= f["sent_ns"]).all()  # confirms on: every publish confirmed after its send
    assert (f["delivered_ns"] > f["sent_ns"]).all()
    assert (f["sent_ns"] >= f["due_ns"]).all()  # open loop: never sent before it is due
    assert ((f["latency_s"] * 1e9 - (f["delivered_ns"] - f["due_ns"])).abs() < 1).all()  # from the due time
    assert m.meta["spec"]["durable"] and m.meta["machine"]["cores"] == os.cpu_count()


def test_without_confirms_nothing_is_confirmed(rabbitmq: Server) -> None:
    f = measure(_spec(rabbitmq, pattern="pubsub", subscribers=2, duration=0.5)).frame
    assert (f["confirmed_ns"] == -1).all()
    assert (f["deliveries"] == 2).all()  # pub/sub: each subscriber gets its copy


def test_request_reply_times_the_reply(rabbitmq: Server) -> None:
    f = measure(_spec(rabbitmq, pattern="request_reply", duration=0.5)).frame
    assert (f["deliveries"] == 1).all() and (f["latency_s"] > 0).all()


def test_a_paused_broker_shows_in_the_latency_of_messages_due_during_the_pause(rabbitmq: Server) -> None:
    """SIGSTOP for ~0.3 s: messages due in the pause wait for it (latency >= what is left of it), and
    coordinated omission does not hide them: every one is in the record, measured from its due time."""
    m = measure(_spec(rabbitmq, rate=200.0), server=rabbitmq, faults=[(0.3, "pause"), (0.6, "resume")])
    f = m.frame
    assert (f["deliveries"] == 1).all()
    due = f["due_ns"] / 1e9
    in_pause = f[(due > 0.35) & (due < 0.5)]
    assert len(in_pause) > 5 and (in_pause["latency_s"] > 0.05).all()
    assert f[due > 0.9]["latency_s"].median() < 0.05  # and then it recovers
    os.kill(rabbitmq.pid, signal.SIGCONT)  # (resume is idempotent; the module's server stays usable)


@pytest.mark.parametrize("reliable", [False, True], ids=["plain", "reliable"])
def test_the_consumer_comes_back_after_a_crash(rabbitmq: Server, reliable: bool) -> None:
    """SIGKILL and a restart on the same data at 0.5 s (the restart takes seconds: RabbitMQ recovers its
    store): the reconnected consumer receives what is published after the restart, what is lost is what the
    broker refused while down (and, transient, what it held), and with confirms, a durable queue and manual
    acks every confirmed message is delivered by the end."""
    options = {"confirms": True, "durable": True, "manual_ack": True, "prefetch": 100} if reliable else {}
    spec = _spec(rabbitmq, rate=30.0, duration=9.0, drain=2.0, **options)

    m = measure(spec, server=rabbitmq, faults=[(0.5, "bounce")])
    c = counts(m)
    back = m.meta["faults_applied"][0][2]  # when the restarted broker answered (s from the start)
    assert back < 8.0, "the broker restarts within the run"
    after = m.frame[m.frame["due_ns"] > (back + 0.5) * 1e9]
    assert len(after) > 10 and (after["deliveries"] == 1).all()
    assert c["lost"] <= c["publish_errors"] + 5 and c["lost_confirmed"] == 0
    assert c["confirmed"] > 30 if reliable else c["confirmed"] == 0


def test_fit_at_low_load_predicts_p50_at_thirty_percent_of_saturation(
    rabbitmq: Server, tmp_path: Path
) -> None:
    """Fit from 100 msg/s plus a train of 300, then measure at 30 % of the fitted saturation: the simulated
    p50 is within 50 % of the measured one. (The committed report aims at 20 % on a quiet machine; the test
    allows more, since the suite runs on two busy cores where the Python client's timing wanders.)"""
    low = measure(_spec(rabbitmq, duration=1.5, train=300))
    profile = calibrate([low])
    service = profile.broker["service"]["mean"]
    assert 1e-6 < service < 0.01  # a broker on loopback: microseconds to milliseconds per message
    profile.write(tmp_path / "p.toml")
    spec = _spec(rabbitmq, rate=round(0.3 / service), duration=1.5)
    measured, predicted = observe(measure(spec)), predict(tmp_path / "p.toml", spec)
    assert abs(predicted.p50 - measured.p50) / measured.p50 < 0.5
    assert abs(predicted.throughput - measured.throughput) / measured.throughput < 0.2


def test_sim_measure_and_calibrate_commands(
    rabbitmq: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.parquet"
    argv = ["measure", "rabbitmq", "--url", rabbitmq.url, "--rate", "150/s", "--duration", "0.5s"]
    assert main([*argv, "--train", "150", "--confirms", "--out", str(out)]) == 0
    m = read(out)
    assert m.spec.confirms and m.spec.rate == 150 and m.spec.train == 150
    assert (m.frame["phase"] == "train").sum() == 150
    assert main(["calibrate", str(out), "--out", str(tmp_path / "p.toml")]) == 0
    text = (tmp_path / "p.toml").read_text()
    assert "[broker]" in text and 'dist = "lognormal"' in text and "confirm_p50" in text
    assert "rabbitmq: service mean" in capsys.readouterr().out
