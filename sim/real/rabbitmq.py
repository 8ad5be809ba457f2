"""The RabbitMQ adapter (``aio-pika``, AMQP 0-9-1): a queue, pub/sub through a fanout exchange, or
request/reply through a reply queue.

- ``queue``: the default exchange routes each message to the queue ``sim.q`` (``sim.q.durable``); one
  consumer.
- ``pubsub``: the fanout exchange ``sim.x``; ``subscribers`` queues bound to it, one consumer each (a
  message's ``deliveries`` counts every copy).
- ``request_reply``: requests to ``sim.req``; a responder on its own connection answers each on the queue
  ``sim.reply`` (``reply_to``); the delivery time is the reply's arrival at the requester.

``confirms`` puts the publishing channel in confirm mode (each publish's confirm is awaited in its own task);
``durable`` declares durable queues and publishes persistent messages; ``manual_ack`` acks after the
delivery is recorded; ``prefetch`` is the consumers' ``basic.qos`` (0: unlimited). The connections are
robust: after a broker restart they reconnect and declare again. A robust connection holds its channels
only weakly (aio-pika keeps them in a ``WeakSet``), so the adapter keeps every channel and queue it opens
(``_keep``): otherwise the garbage collector takes the consumers and none is restored after a restart.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import aio_pika

from sim.real.load import LoadSpec, Recorder

__all__ = ["RabbitMQ"]


class RabbitMQ:
    """An :class:`~sim.real.measure.Adapter` for RabbitMQ."""

    version = "aio-pika " + aio_pika.__version__

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self._conns: list[Any] = []
        self._keep: list[Any] = []  # channels and queues: restored on reconnection only while referenced
        self._exchange: Any = None
        self._key = ""
        self._reply = ""

    async def _connect(self) -> Any:
        conn = await aio_pika.connect_robust(self.spec.url, timeout=10, reconnect_interval=0.2)
        self._conns.append(conn)
        return conn

    async def open(self, rec: Recorder) -> None:
        s = self.spec
        sfx = ".durable" if s.durable else ""  # a queue's durability is fixed when it is first declared
        pub = await (await self._connect()).channel(publisher_confirms=s.confirms)
        mode = aio_pika.DeliveryMode.PERSISTENT if s.durable else aio_pika.DeliveryMode.NOT_PERSISTENT
        self._mode = mode
        consumer = await self._connect()

        async def on_message(message: Any) -> None:
            rec.delivered(int.from_bytes(message.body[:8], "big"))
            if s.manual_ack:
                await message.ack()

        async def channel() -> Any:
            ch = await consumer.channel()
            await ch.set_qos(prefetch_count=s.prefetch)
            self._keep.append(ch)
            return ch

        if s.pattern == "queue":
            ch = await channel()
            q = await ch.declare_queue(f"sim.q{sfx}", durable=s.durable)
            self._keep.append(q)
            await q.purge()
            await q.consume(on_message, no_ack=not s.manual_ack)
            self._exchange, self._key = pub.default_exchange, f"sim.q{sfx}"
        elif s.pattern == "pubsub":
            self._exchange = await pub.declare_exchange(
                f"sim.x{sfx}", aio_pika.ExchangeType.FANOUT, durable=s.durable
            )
            for k in range(s.subscribers):
                ch = await channel()
                q = await ch.declare_queue(f"sim.sub{k}{sfx}", durable=s.durable)
                self._keep.append(q)
                await q.purge()
                await q.bind(f"sim.x{sfx}")
                await q.consume(on_message, no_ack=not s.manual_ack)
        else:  # request_reply: a responder answers on the reply queue
            responder = await (await self._connect()).channel()
            await responder.set_qos(prefetch_count=s.prefetch)
            requests = await responder.declare_queue(f"sim.req{sfx}", durable=s.durable)
            self._keep += [responder, requests]
            await requests.purge()

            async def answer(message: Any) -> None:
                await responder.default_exchange.publish(
                    aio_pika.Message(message.body, delivery_mode=mode), routing_key=message.reply_to
                )
                if s.manual_ack:
                    await message.ack()

            await requests.consume(answer, no_ack=not s.manual_ack)
            ch = await channel()
            self._reply = f"sim.reply{sfx}"
            replies = await ch.declare_queue(self._reply, durable=s.durable)
            self._keep.append(replies)
            await replies.purge()
            await replies.consume(on_message, no_ack=not s.manual_ack)
            self._exchange, self._key = pub.default_exchange, f"sim.req{sfx}"

    def publish(self, i: int, body: bytes) -> Awaitable[Any] | None:
        reply_to = self._reply if self.spec.pattern == "request_reply" else None
        msg = aio_pika.Message(body, delivery_mode=self._mode, reply_to=reply_to)
        waiting = self._exchange.publish(msg, routing_key=self._key)
        return waiting  # type: ignore[no-any-return]

    async def close(self) -> None:
        for conn in reversed(self._conns):
            await conn.close()
