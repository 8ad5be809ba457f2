"""The Mosquitto adapter (``paho-mqtt`` 2.x, MQTT 3.1.1): pub/sub on one topic with QoS 0, 1 or 2.

One publishing and ``subscribers`` subscribing connections, each with paho's network thread. QoS 1 and 2
publishes are confirmed when the broker completes their flow (PUBACK, PUBCOMP): ``confirmed_ns``. A
subscriber's session is persistent (``clean_session`` off) so that a broker that keeps state keeps its
queued messages during the run; before it subscribes, a clean connection with its client id ends the session
an earlier run left behind, with whatever the broker queued for it (message numbers restart at 0 in every
run, so an earlier run's backlog would land on this run's rows). So runs never meet each other's state;
should a broker still deliver something this run has not sent, the recorder counts it as ``stray`` and
ignores it. Nagle's algorithm is off on both ends (``TCP_NODELAY``), as for the other brokers' clients.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from sim.real.load import LoadSpec, Recorder

__all__ = ["Mqtt"]


def _nodelay(client: Any) -> None:
    """No Nagle delay on the client's socket (paho leaves it on: QoS 0 messages, which get no reply, would
    wait for the delayed ACK, ~40 ms). The broker's side is ``set_tcp_nodelay true`` in its config."""
    sock = client.socket()
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Mqtt:
    """An :class:`~sim.real.measure.Adapter` for an MQTT broker (Mosquitto)."""

    version = "paho-mqtt " + paho.__version__ if hasattr(paho, "__version__") else "paho-mqtt"

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        url = urlparse(spec.url)
        self._host, self._port = url.hostname or "127.0.0.1", url.port or 1883
        self._topic = f"sim/q{spec.qos}"
        self._clients: list[Any] = []
        self._mids: dict[int, int] = {}
        self._lock = threading.RLock()
        self._early: set[int] = set()
        self._rec: Recorder | None = None

    def _client(self, name: str, *, clean: bool) -> Any:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=name, clean_session=clean)
        c.max_inflight_messages_set(65535)  # paho's default of 20 would close the loop on the broker
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(1, 2)  # whole seconds (paho)
        self._clients.append(c)
        return c

    def _forget(self, name: str) -> None:
        """End the broker's session for client id ``name``: a clean connection discards it (MQTT 3.1.1)."""
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=name, clean_session=True)
        c.connect(self._host, self._port, keepalive=10)
        deadline = time.monotonic() + 10
        while not c.is_connected():  # bounded: the CONNACK, or 10 s
            if time.monotonic() > deadline:
                raise TimeoutError(f"MQTT connection not acknowledged at {self.spec.url}")
            c.loop(0.05)
        c.disconnect()

    async def open(self, rec: Recorder) -> None:
        s = self.spec
        self._rec = rec
        ready = threading.Semaphore(0)
        for k in range(s.subscribers):
            self._forget(f"sim-sub{k}-q{s.qos}")
            sub = self._client(f"sim-sub{k}-q{s.qos}", clean=False)

            def on_connect(c: Any, _u: Any, _f: Any, _rc: Any, _p: Any = None) -> None:
                c.subscribe(self._topic, qos=s.qos)

            sub.on_connect = on_connect
            sub.on_subscribe = lambda *_a: ready.release()
            sub.on_message = lambda _c, _u, msg: rec.delivered(int.from_bytes(msg.payload[:8], "big"))
            sub.connect(self._host, self._port, keepalive=10)
            _nodelay(sub)
            sub.loop_start()
        pub = self._client(f"sim-pub-q{s.qos}", clean=True)

        def on_publish(_c: Any, _u: Any, mid: int, _rc: Any = None, _p: Any = None) -> None:
            with self._lock:
                i = self._mids.pop(mid, None)
                if i is None:  # completed inside publish(), before its mid was noted
                    self._early.add(mid)
            if i is not None:
                rec.confirmed(i)

        pub.on_publish = on_publish
        pub.connect(self._host, self._port, keepalive=10)
        _nodelay(pub)
        pub.loop_start()
        self._pub = pub
        deadline = time.monotonic() + 10
        for _ in range(s.subscribers):  # bounded: every subscription acknowledged, or 10 s
            while not ready.acquire(blocking=False):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"MQTT subscription not acknowledged at {s.url}")
                await asyncio.sleep(0.01)

    def publish(self, i: int, body: bytes) -> Awaitable[Any] | None:
        # never hold our lock inside paho's publish: its network thread holds paho's lock while it calls
        # on_publish, which takes ours. A flow may complete before its mid is noted: on_publish keeps it early
        info = self._pub.publish(self._topic, body, qos=self.spec.qos)
        if self.spec.qos > 0:
            with self._lock:
                early = info.mid in self._early
                if early:
                    self._early.discard(info.mid)
                else:
                    self._mids[info.mid] = i
            if early and self._rec is not None:
                self._rec.confirmed(i)
        return None

    async def close(self) -> None:
        deadline = time.monotonic() + 1.0  # the last flows' completions, briefly (bounded)
        while self._mids and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for c in self._clients:
            c.disconnect()
            c.loop_stop()
