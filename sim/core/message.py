"""The message that travels through the network.

A ``Message`` is one transmission's worth of state: a retransmission is a fresh copy with the same
``id`` and obligation. It is a plain slotted object because millions are made per run.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONTROL_KINDS", "DATA_KINDS", "Message"]

_new = object.__new__
_DATA = frozenset(("data", "request", "reply", "event"))

DATA_KINDS = ("data", "request", "reply", "event")
"""Kinds that carry a delivery obligation (ledger rows)."""

CONTROL_KINDS = ("ack", "nack", "consume", "consume_ok", "block", "unblock", "heartbeat")
"""Kinds counted as control traffic."""


class Message:
    """One message in flight.

    Parameters
    ----------
    id : int
        Logical message id (kept across retransmissions).
    kind : str
        ``data``, ``request``, ``reply``, ``event`` or a control kind such as ``ack``.
    src, dst : str
        Sending and receiving node of this transmission.
    size : float
        Bytes on the wire.
    created_at : float
        Intended send time of the logical message, in seconds.
    ob : int or tuple of int
        Ledger row(s) of the obligation(s) this message carries; ``-1`` for control traffic that
        belongs to no obligation. For control traffic this names the obligation it acknowledges.
    reliable : bool
        If true, a drop is not final: the sender retransmits. If false, a drop loses the obligation.
    tag : int
        What an acknowledgement refers to: the broker's delivery tag, or the acknowledged message's id.
    recipients : tuple of str
        For a publish to a topic: the subscribers its obligations (``ob``) belong to, in the same order.
    payload : object
        Application data a pattern carries along (for example the root of an event chain).
    """

    __slots__ = (
        "attempt",
        "callbacks",
        "control",
        "created_at",
        "dst",
        "hops",
        "id",
        "kind",
        "link",
        "ob",
        "payload",
        "recipients",
        "reliable",
        "run",
        "sent_at",
        "size",
        "src",
        "tag",
        "topic",
    )

    _ok = True
    """In flight, a message is its own SimPy event (see :meth:`sim.model.network.Network.hop`):
    ``Environment.step`` reads ``callbacks`` and ``_ok``."""

    def __init__(
        self,
        id: int,
        kind: str,
        src: str,
        dst: str,
        size: float,
        created_at: float,
        ob: int | tuple[int, ...] = -1,
        *,
        topic: str = "",
        reliable: bool = False,
        attempt: int = 1,
        payload: Any = None,
        tag: int = 0,
        recipients: tuple[str, ...] = (),
    ) -> None:
        self.id = id
        self.kind = kind
        self.src = src
        self.dst = dst
        self.size = size
        self.created_at = created_at
        self.ob = ob
        self.topic = topic
        self.reliable = reliable
        self.attempt = attempt
        self.payload = payload
        self.tag = tag
        self.recipients = recipients
        self.control = kind not in _DATA
        self.hops = 0
        self.sent_at = created_at
        self.link: Any = None
        self.callbacks: Any = None
        self.run: Any = None
        """While cut-through carries it over several links in one event: (links, start, arrival offsets)."""

    def copy(self, **changes: Any) -> Message:
        """A fresh transmission of the same logical message (hop count reset), with ``changes`` applied."""
        m = _new(Message)
        m.id = self.id
        m.kind = self.kind
        m.src = self.src
        m.dst = self.dst
        m.size = self.size
        m.created_at = self.created_at
        m.ob = self.ob
        m.topic = self.topic
        m.reliable = self.reliable
        m.attempt = self.attempt
        m.payload = self.payload
        m.tag = self.tag
        m.recipients = self.recipients
        m.control = self.control
        m.hops = 0
        m.sent_at = self.created_at
        m.link = None
        m.callbacks = None
        m.run = None
        if changes:
            for k, v in changes.items():
                setattr(m, k, v)
            if "kind" in changes:
                m.control = m.kind not in _DATA
        return m

    def obligations(self) -> tuple[int, ...]:
        """The ledger rows this message carries, as a tuple."""
        ob = self.ob
        if type(ob) is tuple:
            return ob
        return () if ob < 0 else (ob,)  # type: ignore[operator,return-value]

    def __repr__(self) -> str:
        return (
            f"Message(id={self.id}, kind={self.kind!r}, {self.src!r}->{self.dst!r}, "
            f"size={self.size:g}, created_at={self.created_at:g}, ob={self.ob}, attempt={self.attempt})"
        )
