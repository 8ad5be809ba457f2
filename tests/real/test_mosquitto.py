"""Mosquitto 2.0 on loopback: pub/sub with QoS 0, 1 and 2, recorded per message."""

from __future__ import annotations

import pytest

from sim.real.load import LoadSpec
from sim.real.measure import measure
from sim.real.servers import Server

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
