"""The NATS JetStream adapter (``nats-py``): a stream with one acked consumer.

The stream ``SIM`` takes the subject ``sim.q``; file storage when ``durable``, memory otherwise; it is made
afresh for each run. With ``confirms`` each publish goes through JetStream and its ``PubAck`` is the confirm;
without, it is a core NATS publish the stream still stores. The consumer is a push consumer; with
``manual_ack`` it acks each message explicitly (explicit ack policy, ``prefetch`` = ``max_ack_pending``),
otherwise it uses no acks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from sim.real.load import LoadSpec, Recorder

__all__ = ["JetStream"]


class JetStream:
    """An :class:`~sim.real.measure.Adapter` for NATS JetStream."""

    version = "nats-py"

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self._nc: Any = None
        self._js: Any = None

    async def open(self, rec: Recorder) -> None:
        s = self.spec
        self._nc = await nats.connect(s.url, max_reconnect_attempts=-1, reconnect_time_wait=0.05)
        self._js = self._nc.jetstream()
        with contextlib.suppress(NotFoundError):
            await self._js.delete_stream("SIM")
        storage = StorageType.FILE if s.durable else StorageType.MEMORY
        await self._js.add_stream(StreamConfig(name="SIM", subjects=["sim.q"], storage=storage))

        async def on_message(msg: Any) -> None:
            rec.delivered(int.from_bytes(msg.data[:8], "big"))
            if s.manual_ack:
                await msg.ack()

        if s.manual_ack:
            config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=s.prefetch or -1)
        else:
            config = ConsumerConfig(ack_policy=AckPolicy.NONE)
        await self._js.subscribe(
            "sim.q", cb=on_message, manual_ack=True, config=config, pending_msgs_limit=-1
        )

    def publish(self, i: int, body: bytes) -> Awaitable[Any] | None:
        if self.spec.confirms:
            return self._js.publish("sim.q", body)  # type: ignore[no-any-return]
        return self._nc.publish("sim.q", body)  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self._nc.close()
