"""RabbitMQ 3.10 on loopback: the recorder, the settings, the fit, and a prediction checked against it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from pathlib import Path

import pytest

from sim.cli.main import main
from sim.real.faults import counts
from sim.real.load import LoadSpec, Recorder, read
from sim.real.measure import measure
from sim.real.rabbitmq import RabbitMQ
from sim.real.servers import Server

from . import assert_predicts, fit_and_measure

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


def test_a_reliable_run_through_a_crash_loses_no_confirmed_message(rabbitmq: Server) -> None:
    """Confirms, a durable queue, manual acks; SIGKILL and a restart on the same data at 0.5 s (the restart
    takes seconds: RabbitMQ recovers its store): the reconnected consumer receives what is published after
    the restart, what is lost is what the broker refused while down, and every confirmed message is
    delivered by the end."""
    options = {"confirms": True, "durable": True, "manual_ack": True, "prefetch": 100}
    spec = _spec(rabbitmq, rate=30.0, duration=14.0, drain=2.0, **options)
    m = measure(spec, server=rabbitmq, faults=[(0.5, "bounce")])
    c = counts(m)
    back = m.meta["faults_applied"][0][2]  # when the restarted broker answered (s from the start)
    assert back < 12.0, "the broker restarts within the run"  # 3-9 s on an idle machine
    after = m.frame[m.frame["due_ns"] > (back + 0.5) * 1e9]
    assert len(after) > 10 and (after["deliveries"] == 1).all()
    assert c["lost"] <= c["publish_errors"] + 5 and c["lost_confirmed"] == 0 and c["confirmed"] > 30


def test_the_consumer_comes_back_after_a_restart_whatever_the_garbage_collector_did(rabbitmq: Server) -> None:
    """The broker is killed, the client sees its connections close, a garbage collection runs, the broker
    restarts: a message published then reaches the consumer. (aio-pika's robust connection holds its
    channels in a WeakSet: unless the adapter keeps them, the collection takes the consumer's channel and
    nothing restores it. Logging is off, as in ``make calibrate``: a captured log record of the disconnection
    would hold the channel.)"""

    async def run() -> int:
        loop = asyncio.get_running_loop()
        adapter, rec = RabbitMQ(_spec(rabbitmq, size=16)), Recorder(1, 1)
        await adapter.open(rec)
        await loop.run_in_executor(None, rabbitmq.kill)
        await asyncio.sleep(0.5)
        gc.collect()
        await loop.run_in_executor(None, rabbitmq.restart)
        rec.sent(0, rec.now())
        deadline = time.monotonic() + 10
        while not rec.deliveries[0] and time.monotonic() < deadline:  # bounded: 10 s
            with contextlib.suppress(Exception):  # the connections may still be coming back
                await asyncio.wait_for(adapter.publish(0, bytes(16)), 1)  # type: ignore[arg-type]
            await asyncio.sleep(0.2)
        await adapter.close()
        return int(rec.deliveries[0])

    logging.disable(logging.CRITICAL)
    try:
        assert asyncio.run(run()) >= 1
    finally:
        logging.disable(logging.NOTSET)


def test_fit_at_low_load_predicts_p50_at_thirty_percent_of_saturation(
    rabbitmq: Server, tmp_path: Path
) -> None:
    """Fit from 100 msg/s plus a train of 300, then measure at 30 % of the fitted saturation: the simulated
    p50 is within 50 % of the measured one. (The committed report aims at 20 % on a quiet machine; the test
    allows more, since the suite runs on two busy cores where the Python client's timing wanders.)"""
    low = _spec(rabbitmq, duration=1.5)
    assert_predicts(lambda: fit_and_measure(low, tmp_path))  # up to 3 attempts: one can meet a stall


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
