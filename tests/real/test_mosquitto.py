"""Mosquitto 2.0 on loopback: pub/sub with QoS 0, 1 and 2, recorded per message."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sim.real.load import LoadSpec
from sim.real.measure import measure
from sim.real.servers import Server

from . import assert_predicts, fit_and_measure

pytestmark = pytest.mark.real


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_each_qos_delivers_every_message_once_and_confirms_qos_1_and_2(mosquitto: Server, qos: int) -> None:
    spec = LoadSpec("mosquitto", mosquitto.url, rate=200.0, duration=0.5, pattern="pubsub", qos=qos)
    f = measure(spec, version=mosquitto.version).frame
    assert len(f) > 50 and (f["deliveries"] == 1).all()
    assert (f["delivered_ns"] > f["sent_ns"]).all() and (f["sent_ns"] >= f["due_ns"]).all()
    if qos:  # PUBACK (1) or PUBCOMP (2) for every publish, after it was sent
        assert (f["confirmed_ns"] > f["sent_ns"]).all()
    else:
        assert (f["confirmed_ns"] == -1).all()


def test_two_subscribers_get_a_copy_each(mosquitto: Server) -> None:
    spec = LoadSpec("mosquitto", mosquitto.url, rate=200.0, duration=0.3, pattern="pubsub", subscribers=2)
    assert (measure(spec).frame["deliveries"] == 2).all()


def _publish(server: Server, bodies: list[bytes], *, retain: bool = False) -> None:
    """Publish ``bodies`` on the QoS 1 runs' topic (QoS 1, each flow completed) from a client of its own."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-leftover")
    c.connect("127.0.0.1", server.port)
    c.loop_start()
    try:
        for body in bodies:
            c.publish("sim/q1", body, qos=1, retain=retain).wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()


def test_a_run_never_receives_an_earlier_runs_leftovers(mosquitto: Server) -> None:
    """Between two runs, 50 messages numbered as a run's reach the first run's (now offline, persistent)
    subscription, and one is retained on the topic: the second run takes none of them for its own. Its
    session starts afresh (the backlog is not delivered), and the retained copy, delivered before message
    0 is sent, is counted as stray and kept off the rows."""
    spec = LoadSpec("mosquitto", mosquitto.url, rate=200.0, duration=0.5, pattern="pubsub", qos=1)
    measure(spec)
    _publish(mosquitto, [i.to_bytes(8, "big") + bytes(8) for i in range(50)])
    _publish(mosquitto, [bytes(16)], retain=True)
    try:
        m = measure(spec)
    finally:
        _publish(mosquitto, [b""], retain=True)  # an empty retained message clears the topic's
    f = m.frame
    got = f["delivered_ns"] != -1
    assert (f.loc[got, "delivered_ns"] >= f.loc[got, "sent_ns"]).all()
    assert (f["deliveries"] == 1).all() and m.meta["stray"] == 1


def test_fit_at_low_load_predicts_p50_at_thirty_percent_of_saturation(
    mosquitto: Server, tmp_path: Path
) -> None:
    """As for RabbitMQ: fit from 100 msg/s plus a train of 300, then measure at 30 % of the fitted
    saturation: the simulated p50 within 50 % of the measured one, the throughput within 20 %."""
    qos1 = {"pattern": "pubsub", "qos": 1, "size": 256, "duration": 1.5}

    low = LoadSpec("mosquitto", mosquitto.url, rate=100.0, **qos1)  # type: ignore[arg-type]
    assert_predicts(lambda: fit_and_measure(low, tmp_path))  # up to 3 attempts: one can meet a stall
