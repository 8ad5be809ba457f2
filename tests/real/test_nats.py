"""NATS 2.9 JetStream on loopback: a stream with one consumer, publish acks as confirms."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.real.fit import calibrate
from sim.real.load import LoadSpec
from sim.real.measure import measure
from sim.real.servers import Server

pytestmark = pytest.mark.real


def test_jetstream_acks_every_publish_and_delivers_once(nats: Server) -> None:
    spec = LoadSpec("nats", nats.url, rate=200.0, duration=0.5, confirms=True, durable=True, manual_ack=True)
    f = measure(spec, version=nats.version).frame
    assert len(f) > 50 and (f["deliveries"] == 1).all()
    assert (f["confirmed_ns"] > f["sent_ns"]).all()  # the stream's PubAck


def test_core_publish_has_no_confirm_and_the_train_calibrates(nats: Server, tmp_path: Path) -> None:
    m = measure(LoadSpec("nats", nats.url, rate=200.0, duration=0.5, train=200))
    assert (m.frame["confirmed_ns"] == -1).all() and (m.frame["deliveries"] == 1).all()
    p = calibrate([m])
    assert 1e-7 < p.broker["service"]["mean"] < 0.01 and p.about["broker"] == "nats"
