"""The one offer path (``Outbox.offer``): what it writes for one message, that a down node offers nothing,
and that every pattern's obligations come through it: the rows it opened are the run's ``offered``, each
operation's rows are opened by one offer (a retry resends, it opens nothing), and only one message id
is taken per offer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim import Scenario, simulate
from sim.core.context import SimContext
from sim.core.message import Message
from sim.patterns import PATTERNS
from sim.patterns.base import Outbox

SCENARIOS = Path(__file__).resolve().parents[2] / "experiments" / "scenarios"


class _Node:
    """What an outbox reads of its node."""

    def __init__(self, node_id: str, *, up: bool = True) -> None:
        self.id = node_id
        self.up = up


def test_an_offer_opens_one_row_per_recipient_and_hands_the_message_to_send(ctx: SimContext) -> None:
    sent: list[Message] = []
    blocked = ctx.env.event()

    def send(msg: Message) -> Any:
        sent.append(msg)
        return blocked

    outbox = Outbox(ctx, _Node("p"), send)  # type: ignore[arg-type]
    wait = outbox.offer("event", "b", "orders", 0.25, 512.0, to=("s1", "s2"), op=99, payload=("x", 1))
    assert wait is blocked  # the sender's backpressure reaches the producer
    (msg,) = sent
    cols = ctx.ledger.columns()
    assert cols["msg_id"].tolist() == [msg.id, msg.id]
    assert cols["dst"].tolist() == ["s1", "s2"] and cols["src"].tolist() == ["p", "p"]
    assert cols["op"].tolist() == [99, 99] and cols["kind"].tolist() == ["event", "event"]
    assert cols["topic"].tolist() == ["orders", "orders"]
    assert cols["created_at"].tolist() == [0.25, 0.25] and cols["size"].tolist() == [512.0, 512.0]
    assert msg.ob == (0, 1) and msg.recipients == ("s1", "s2")
    assert (msg.kind, msg.src, msg.dst, msg.topic, msg.size, msg.created_at) == (
        "event",
        "p",
        "b",
        "orders",
        512.0,
        0.25,
    )
    assert msg.payload == ("x", 1) and msg.reliable is False and msg.attempt == 1


def test_one_recipient_is_one_row_and_a_queue_other_than_the_rows_topic(ctx: SimContext) -> None:
    sent: list[Message] = []
    outbox = Outbox(ctx, _Node("s"), lambda m: sent.append(m))  # type: ignore[arg-type,func-returns-value]
    assert outbox.offer("reply", "b", "", 1.0, 10.0, to="c", op=5, queue="reply/c", reliable=True) is None
    outbox.offer("data", "c", "", 2.0, 10.0)  # no ``to``: the row's recipient is where the message goes
    cols = ctx.ledger.columns()
    assert cols["dst"].tolist() == ["c", "c"] and cols["op"].tolist() == [5, sent[1].id]
    assert cols["topic"].tolist() == ["", ""]
    assert [m.ob for m in sent] == [0, 1] and [m.dst for m in sent] == ["b", "c"]
    assert [m.topic for m in sent] == ["reply/c", ""] and [m.reliable for m in sent] == [True, False]
    assert sent[0].recipients == ()


def test_a_down_node_offers_nothing_and_takes_no_id(ctx: SimContext) -> None:
    sent: list[Message] = []
    outbox = Outbox(ctx, _Node("p", up=False), sent.append)  # type: ignore[arg-type]
    first = ctx.next_id()
    assert outbox.offer("data", "c", "", 0.0, 1.0) is None
    assert sent == [] and len(ctx.ledger) == 0
    assert ctx.next_id() == first + 1  # the offer took no message id


def _scenario(pattern: str, **updates: Any) -> Scenario:
    """The pattern's example scenario, short, lossy enough that reliable guarantees retry, no warm-up."""
    base = Scenario.from_toml(SCENARIOS / f"{pattern}.toml")
    return base.with_updates(
        {"duration": "0.6s", "warmup": 0.0, "drain": "5s", "links.loss": 0.05, "seed": 11, **updates}
    )


@pytest.fixture
def offers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every offer of the next runs: (message id taken, ledger rows opened)."""
    seen: list[tuple[int, int]] = []
    original = Outbox.offer

    def counted(self: Outbox, *args: Any, **kwargs: Any) -> Any:
        rows, send, handed = len(self.ctx.ledger), self.send, []

        def recording(*args: Any) -> Any:  # (msg), or (node, msg) for a sender that takes the node
            handed.append(args[-1])
            return send(*args)

        self.send = recording
        try:
            result = original(self, *args, **kwargs)
        finally:
            self.send = send
        for msg in handed:
            opened = len(self.ctx.ledger) - rows
            assert opened == len(msg.obligations())  # the rows it opened are the ones the message carries
            seen.append((msg.id, opened))
        return result

    monkeypatch.setattr(Outbox, "offer", counted)
    return seen


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_every_obligation_of_a_pattern_comes_through_the_offer_path(
    pattern: str, offers: list[tuple[int, int]]
) -> None:
    result = simulate(_scenario(pattern, **{"delivery.guarantee": "at_least_once"}))
    cols = result.columns
    assert offers, "the pattern offered nothing through Outbox.offer"
    assert result.summary["offered"] == sum(n for _, n in offers) == len(cols["msg_id"])
    ids = [i for i, _ in offers]
    assert len(set(ids)) == len(ids)  # one fresh id per offer, never reused by a retry
    by_id = dict(offers)
    ledger_ids, rows_per_id = np.unique(cols["msg_id"], return_counts=True)
    assert dict(zip(ledger_ids.tolist(), rows_per_id.tolist(), strict=True)) == by_id
    assert result.summary["retries"] + result.summary["redeliveries"] > 0  # resends happened, opened nothing


def test_a_call_has_one_request_row_however_often_it_is_retried(offers: list[tuple[int, int]]) -> None:
    for via in (False, True):
        offers.clear()
        result = simulate(
            _scenario(
                "request_reply",
                **{"delivery.guarantee": "at_least_once", "links.loss": 0.2, "request_reply.via_broker": via},
            )
        )
        cols, s = result.columns, result.summary
        assert s["retries"] > 0
        requests = cols["kind"] == "request"
        ops, per_op = np.unique(cols["op"][requests], return_counts=True)
        assert per_op.max() == 1 and ops.size == s["requests"]
        assert (cols["attempts"][requests] > 1).any()  # the retries went to the rows the first offer opened
        replies = cols["kind"] == "reply"
        assert set(cols["op"][replies].tolist()) <= set(ops.tolist())  # a reply joins its call's operation


def test_a_publish_is_one_offer_with_a_row_per_subscriber(offers: list[tuple[int, int]]) -> None:
    result = simulate(_scenario("pubsub"))
    subscribers = len(set(result.columns["dst"].tolist()))
    assert subscribers > 1
    assert {n for _, n in offers} == {subscribers}
    ops, per_op = np.unique(result.columns["op"], return_counts=True)
    assert set(per_op.tolist()) == {subscribers} and ops.size == len(offers)
