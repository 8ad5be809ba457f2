"""The obligation ledger and the message: outcome transitions, tallies, columns and invariant checks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from sim.core.errors import InvariantError
from sim.core.ledger import KINDS, OUTCOMES, REASONS, Ledger, LedgerStatistics
from sim.core.message import CONTROL_KINDS, DATA_KINDS, Message

COLUMN_DTYPES = {
    "msg_id": np.int64,
    "kind": object,
    "src": object,
    "dst": object,
    "topic": object,
    "created_at": np.float64,
    "delivered_at": np.float64,
    "outcome": object,
    "reason": object,
    "attempts": np.int64,
    "transmissions": np.int64,
    "duplicates": np.int64,
    "bytes": np.float64,
    "size": np.float64,
    "control": np.int64,
    "control_bytes": np.float64,
    "receiver": object,
    "op": np.int64,
}
REAL_REASONS = REASONS[1:]


def ledger_with(n: int) -> Ledger:
    led = Ledger()
    for i in range(n):
        assert led.open(100 + i, "data", "a", "b", "", float(i), 10.0) == i
    return led


# -- transitions ----------------------------------------------------------------------------------


def test_open_returns_consecutive_rows_and_starts_in_flight() -> None:
    led = Ledger()
    assert len(led) == 0
    assert led.open(7, "data", "a", "b", "", 0.5, 100) == 0
    assert led.open(7, "event", "a", "c", "t", 0.5, 100) == 1
    assert len(led) == 2
    assert [led.outcome_of(r) for r in (0, 1)] == ["in_flight", "in_flight"]
    assert [led.last_reason(r) for r in (0, 1)] == ["", ""]
    assert led.counts() == {"delivered": 0, "lost": 0, "in_flight": 2, "superseded": 0}
    led.check()


def test_deliver_once_then_duplicates() -> None:
    led = ledger_with(1)
    assert led.deliver(0, 0.5) is True
    assert led.deliver(0, 0.7) is False
    assert led.deliver(0, 0.9) is False
    assert led.outcome_of(0) == "delivered"
    assert led.counts() == {"delivered": 1, "lost": 0, "in_flight": 0, "superseded": 0}
    cols = led.columns()
    assert cols["delivered_at"][0] == 0.5  # the first delivery's time is kept
    assert cols["duplicates"][0] == 2
    assert led.statistics().duplicates == 2
    led.check()


def test_lose_then_a_late_copy_delivers() -> None:
    led = ledger_with(1)
    led.lose(0, "timeout")
    assert led.outcome_of(0) == "lost"
    assert led.last_reason(0) == "timeout"
    assert led.counts() == {"delivered": 0, "lost": 1, "in_flight": 0, "superseded": 0}
    led.check()
    assert led.deliver(0, 3.0) is True
    assert led.outcome_of(0) == "delivered"
    assert led.last_reason(0) == ""  # a delivered row names no loss reason
    assert led.counts() == {"delivered": 1, "lost": 0, "in_flight": 0, "superseded": 0}
    assert led.columns()["delivered_at"][0] == 3.0
    led.check()


def test_lose_has_no_effect_once_settled() -> None:
    led = ledger_with(2)
    led.deliver(0, 1.0)
    led.lose(0, "loss")
    assert led.outcome_of(0) == "delivered"
    assert led.last_reason(0) == ""
    led.lose(1, "queue_full")
    led.lose(1, "node_down")  # the first reason stands
    assert led.last_reason(1) == "queue_full"
    assert led.counts() == {"delivered": 1, "lost": 1, "in_flight": 0, "superseded": 0}
    led.check()


def test_note_only_while_in_flight() -> None:
    led = ledger_with(3)
    led.note(0, "loss")
    assert led.outcome_of(0) == "in_flight"
    assert led.last_reason(0) == "loss"
    led.note(0, "link_down")
    assert led.last_reason(0) == "link_down"
    led.lose(0, "timeout")
    led.note(0, "loss")
    assert led.last_reason(0) == "timeout"
    led.deliver(1, 1.0)
    led.note(1, "loss")
    assert led.last_reason(1) == ""
    assert led.counts() == {"delivered": 1, "lost": 1, "in_flight": 1, "superseded": 0}
    led.check()  # an in-flight row may carry a noted reason
    led.deliver(2, 5.0)
    led.note(0, "partition")
    assert [led.last_reason(r) for r in range(3)] == ["timeout", "", ""]


def test_attempt_and_charges_of_data_and_control() -> None:
    led = ledger_with(2)
    led.attempt(0)
    led.attempt(0)
    led.charge(0, 100.0)
    led.charge(0, 100.0)
    led.charge(1, 40.5)
    led.charge(0, 20.0, control=True)
    led.charge(-1, 8.0, control=True)  # tied to no obligation: only the totals
    led.charge(1, 4.0, control=True)
    cols = led.columns()
    assert cols["attempts"].tolist() == [2, 0]
    assert cols["transmissions"].tolist() == [2, 1]
    assert cols["bytes"].tolist() == [200.0, 40.5]
    assert cols["control"].tolist() == [1, 1]
    assert cols["control_bytes"].tolist() == [20.0, 4.0]
    assert led.control_transmissions == 3
    assert led.control_bytes == 32.0
    assert led.counts() == {"delivered": 0, "lost": 0, "in_flight": 2, "superseded": 0}


def test_named_counters() -> None:
    led = Ledger()
    assert led.counters == {}
    led.count("retries")
    led.count("retries", 2)
    led.count("redeliveries", 0.5)
    assert led.counters == {"retries": 3, "redeliveries": 0.5}


def test_statistics_is_a_frozen_snapshot() -> None:
    led = ledger_with(4)
    led.deliver(0, 1.0)
    led.deliver(0, 1.5)
    led.lose(1, "loss")
    led.charge(-1, 10.0, control=True)
    led.data_transmissions += 5  # the network keeps these totals
    led.data_bytes += 500.0
    led.control_dropped += 1
    snap = led.statistics()
    assert snap == LedgerStatistics(
        obligations=4,
        delivered=1,
        lost=1,
        in_flight=2,
        superseded=0,
        duplicates=1,
        data_transmissions=5,
        data_bytes=500.0,
        control_transmissions=1,
        control_bytes=10.0,
        control_dropped=1,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.delivered = 2  # type: ignore[misc]
    led.deliver(2, 2.0)
    assert snap.delivered == 1
    assert led.statistics().delivered == 2


# -- columns --------------------------------------------------------------------------------------


def test_columns_decode_labels() -> None:
    led = Ledger()
    led.open(1, "data", "a", "b", "", 0.0, 10)
    led.open(2, "request", "b", "a", "orders", 0.1, 20)
    led.open(3, "reply", "c", "a", "orders", 0.2, 30)
    led.open(4, "event", "a", "c", "audit", 0.3, 40)
    led.deliver(1, 0.4, "b")
    led.lose(2, "crash_lost")
    led.note(3, "overflow")
    cols = led.columns()
    assert set(cols) == set(COLUMN_DTYPES)
    assert cols["receiver"].tolist() == ["", "b", "", ""]
    assert cols["msg_id"].tolist() == [1, 2, 3, 4]
    assert cols["kind"].tolist() == ["data", "request", "reply", "event"]
    assert cols["src"].tolist() == ["a", "b", "c", "a"]
    assert cols["dst"].tolist() == ["b", "a", "a", "c"]
    assert cols["topic"].tolist() == ["", "orders", "orders", "audit"]
    assert cols["created_at"].tolist() == [0.0, 0.1, 0.2, 0.3]
    assert cols["delivered_at"][1] == 0.4
    assert np.isnan(cols["delivered_at"][[0, 2, 3]]).all()
    assert cols["outcome"].tolist() == ["in_flight", "delivered", "lost", "in_flight"]
    assert cols["reason"].tolist() == ["", "", "crash_lost", "overflow"]
    assert cols["size"].tolist() == [10.0, 20.0, 30.0, 40.0]
    assert led.names == ["a", "b", "c"]
    assert led.topics == ["", "orders", "audit"]


def test_columns_of_an_empty_ledger() -> None:
    cols = Ledger().columns()
    assert set(cols) == set(COLUMN_DTYPES)
    for name, col in cols.items():
        assert len(col) == 0, name
        assert col.dtype == COLUMN_DTYPES[name], name
    Ledger().check()
    assert Ledger().statistics().obligations == 0


@pytest.mark.parametrize("n", [1, 1023, 1024, 1025, 2048, 2049, 5000])
def test_columns_have_the_row_count_across_growth_blocks(n: int) -> None:
    led = ledger_with(n)
    last = n - 1
    led.deliver(last, float(last) + 1.0)
    if n > 1:
        led.lose(0, "ttl")
    led.charge(last, 7.0)
    led.attempt(last)
    led.charge(last, 3.0, control=True)
    cols = led.columns()
    for name, col in cols.items():
        assert len(col) == n, name
        assert col.dtype == COLUMN_DTYPES[name], name
    assert cols["msg_id"][last] == 100 + last
    assert cols["delivered_at"][last] == float(last) + 1.0
    assert cols["outcome"][last] == "delivered"
    assert cols["transmissions"][last] == 1
    assert cols["attempts"][last] == 1
    assert cols["control"][last] == 1
    assert cols["bytes"][last] == 7.0
    assert cols["control_bytes"][last] == 3.0
    if n > 1:
        assert cols["reason"][0] == "ttl"
        assert (cols["outcome"][1:last] == "in_flight").all()
        assert np.isnan(cols["delivered_at"][:last]).all()
    led.check()


def test_columns_are_copies() -> None:
    led = ledger_with(3)
    cols = led.columns()
    cols["msg_id"][0] = -5
    cols["delivered_at"][0] = 1.0
    cols["attempts"][0] = 9
    cols["created_at"][0] = 99.0
    again = led.columns()
    assert again["msg_id"][0] == 100
    assert np.isnan(again["delivered_at"][0])
    assert again["attempts"][0] == 0
    assert again["created_at"][0] == 0.0
    led.check()


# -- check() --------------------------------------------------------------------------------------


def consistent() -> Ledger:
    """Rows 0-1 in flight, 2 delivered (with a duplicate), 3 lost, 4 lost then delivered late."""
    led = ledger_with(5)
    led.deliver(2, 3.0)
    led.deliver(2, 4.0)
    led.lose(3, "loss")
    led.lose(4, "timeout")
    led.deliver(4, 9.0)
    led.note(0, "partition")
    led.check()
    assert led.counts() == {"delivered": 2, "lost": 1, "in_flight": 2, "superseded": 0}
    return led


def corrupt_open_count(led: Ledger) -> None:
    led.open_count += 1


def corrupt_delivered_count(led: Ledger) -> None:
    led.delivered_count -= 1


def corrupt_tally_shift(led: Ledger) -> None:
    led.open_count -= 1  # sum still right, but the tallies disagree with the rows
    led.lost_count += 1


def corrupt_delivered_without_time(led: Ledger) -> None:
    led.outcome[0] = 1  # DELIVERED written by hand, no time
    led.open_count -= 1
    led.delivered_count += 1


def corrupt_delivered_before_created(led: Ledger) -> None:
    led.deliver(1, 0.5)  # row 1 was created at t = 1.0


def corrupt_time_on_undelivered(led: Ledger) -> None:
    led.delivered_at[0] = 2.0


def corrupt_time_on_lost(led: Ledger) -> None:
    led.delivered_at[3] = 5.0


def corrupt_lost_without_reason(led: Ledger) -> None:
    led.reason[3] = 0


def corrupt_duplicates_on_undelivered(led: Ledger) -> None:
    led.duplicates[1] = 1


def corrupt_unknown_outcome(led: Ledger) -> None:
    led.outcome[1] = 5


@pytest.mark.parametrize(
    ("corrupt", "messages"),
    [
        (
            corrupt_open_count,
            [
                "tallies in_flight/delivered/lost/superseded 3/2/1/0 disagree with the rows [2, 2, 1, 0]",
                "created 5 != delivered 2 + lost 1 + in_flight 3",
            ],
        ),
        (
            corrupt_delivered_count,
            ["tallies in_flight/delivered/lost/superseded 2/1/1/0", "created 5 != delivered 1"],
        ),
        (
            corrupt_tally_shift,
            ["tallies in_flight/delivered/lost/superseded 1/2/2/0 disagree with the rows [2, 2, 1, 0]"],
        ),
        (corrupt_delivered_without_time, ["1 delivered rows lack a delivery time at or after creation"]),
        (corrupt_delivered_before_created, ["1 delivered rows lack a delivery time at or after creation"]),
        (corrupt_time_on_undelivered, ["1 undelivered rows carry a delivery time"]),
        (corrupt_time_on_lost, ["1 undelivered rows carry a delivery time"]),
        (corrupt_lost_without_reason, ["1 lost rows name no reason"]),
        (corrupt_duplicates_on_undelivered, ["1 undelivered rows count duplicates"]),
        (corrupt_unknown_outcome, ["unknown outcome codes [5]"]),
    ],
    ids=lambda v: v.__name__.removeprefix("corrupt_") if callable(v) else "",
)
def test_check_catches(corrupt: object, messages: list[str]) -> None:
    led = consistent()
    corrupt(led)  # type: ignore[operator]
    with pytest.raises(InvariantError) as info:
        led.check()
    text = str(info.value)
    assert text.startswith("ledger invariant violated: ")
    for message in messages:
        assert message in text
    assert text.count(";") == len(messages) - 1  # exactly these problems, no others


def test_check_reports_every_problem_at_once() -> None:
    led = consistent()
    corrupt_time_on_undelivered(led)
    corrupt_lost_without_reason(led)
    corrupt_duplicates_on_undelivered(led)
    with pytest.raises(InvariantError) as info:
        led.check()
    assert str(info.value) == (
        "ledger invariant violated: 1 undelivered rows carry a delivery time; "
        "1 lost rows name no reason; 1 undelivered rows count duplicates"
    )


@pytest.mark.parametrize(
    ("total", "delta", "message"),
    [
        ("data_transmissions", 1, "data_transmissions 4 != 3 in the rows"),
        ("data_transmissions", -1, "data_transmissions 2 != 3 in the rows"),
        ("data_bytes", 0.5, "data_bytes 250.5 != 250 in the rows"),
        ("control_transmissions", -2, "control_transmissions 0 != 2 in the rows and unattributed"),
        ("control_transmissions", 1, "control_transmissions 3 != 2 in the rows and unattributed"),
        ("control_bytes", -10.0, "control_bytes 6 != 16 in the rows and unattributed"),
        ("control_bytes", 1.0, "control_bytes 17 != 16 in the rows and unattributed"),
        ("control_unattributed", 1, "control_transmissions 2 != 3 in the rows and unattributed"),
    ],
)
def test_check_reconciles_the_running_totals_with_the_rows(total: str, delta: float, message: str) -> None:
    led = ledger_with(3)
    led.charge(0, 100.0)
    led.charge(0, 100.0)
    led.charge(2, 50.0)
    led.charge(1, 8.0, control=True)
    led.charge(-1, 8.0, control=True)  # unattributed: in the totals only
    led.check()
    setattr(led, total, getattr(led, total) + delta)
    with pytest.raises(InvariantError) as info:
        led.check()
    assert str(info.value) == f"ledger invariant violated: {message}"


def test_delivery_at_the_creation_instant_is_fine() -> None:
    led = ledger_with(3)
    led.deliver(2, 2.0)
    led.check()


# -- random operation sequences -------------------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["deliver", "lose", "note", "attempt", "hop", "control_hop"]),
        st.integers(min_value=0, max_value=10**9),
        st.sampled_from(REAL_REASONS),
        st.floats(min_value=0.0, max_value=100.0),
    ),
    max_size=200,
)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2100), OPS)
def test_random_operations_keep_the_books(n: int, ops: list[tuple[str, int, str, float]]) -> None:
    led = ledger_with(n)
    outcome = ["in_flight"] * n
    reason = [""] * n
    dups = [0] * n
    tx = [0] * n
    ctl = 0
    for op, pick, why, x in ops:
        if n == 0:
            break
        row = pick % n
        if op == "deliver":
            fresh = led.deliver(row, float(row) + x)
            assert fresh == (outcome[row] != "delivered")
            dups[row] += not fresh
            outcome[row], reason[row] = "delivered", ""
        elif op == "lose":
            led.lose(row, why)
            if outcome[row] == "in_flight":
                outcome[row], reason[row] = "lost", why
        elif op == "note":
            led.note(row, why)
            if outcome[row] == "in_flight":
                reason[row] = why
        elif op == "hop":
            led.charge(row, x)
            tx[row] += 1
        elif op == "control_hop":
            led.charge(row if x < 50 else -1, x, control=True)
            ctl += 1
        else:
            led.attempt(row)
    counts = led.counts()
    assert counts["delivered"] + counts["lost"] + counts["in_flight"] == len(led) == n
    assert counts == {k: outcome.count(k) for k in ("delivered", "lost", "in_flight", "superseded")}
    cols = led.columns()
    assert cols["outcome"].tolist() == outcome
    assert cols["reason"].tolist() == reason
    assert cols["duplicates"].tolist() == dups
    assert cols["transmissions"].tolist() == tx
    assert led.control_transmissions == ctl
    assert led.statistics().duplicates == sum(dups)
    led.check()


class LedgerMachine(RuleBasedStateMachine):
    """Random interleavings of opens and settlements, checked against a plain model after each step."""

    rows = Bundle("rows")

    def __init__(self) -> None:
        super().__init__()
        self.led = Ledger()
        self.model: list[dict[str, object]] = []

    @rule(
        target=rows,
        kind=st.sampled_from(KINDS),
        src=st.sampled_from("abc"),
        dst=st.sampled_from("abcd"),
        topic=st.sampled_from(["", "t1", "t2"]),
        created=st.floats(min_value=0.0, max_value=1e6),
        size=st.floats(min_value=0.0, max_value=1e9),
    )
    def open(self, kind: str, src: str, dst: str, topic: str, created: float, size: float) -> int:
        row = self.led.open(len(self.model), kind, src, dst, topic, created, size)
        assert row == len(self.model)
        self.model.append(
            {"outcome": "in_flight", "reason": "", "at": math.nan, "created": created, "dups": 0}
        )
        return row

    @rule(row=rows, delay=st.floats(min_value=0.0, max_value=1e3))
    def deliver(self, row: int, delay: float) -> None:
        m = self.model[row]
        t = float(m["created"]) + delay  # type: ignore[arg-type]
        fresh = self.led.deliver(row, t)
        assert fresh == (m["outcome"] != "delivered")
        if fresh:
            m.update(outcome="delivered", reason="", at=t)
        else:
            m["dups"] = int(m["dups"]) + 1  # type: ignore[call-overload]

    @rule(row=rows, why=st.sampled_from(REAL_REASONS))
    def lose(self, row: int, why: str) -> None:
        self.led.lose(row, why)
        if self.model[row]["outcome"] == "in_flight":
            self.model[row].update(outcome="lost", reason=why)

    @rule(row=rows, why=st.sampled_from(REAL_REASONS))
    def note(self, row: int, why: str) -> None:
        self.led.note(row, why)
        if self.model[row]["outcome"] == "in_flight":
            self.model[row]["reason"] = why

    @rule(row=rows, nbytes=st.floats(min_value=0.0, max_value=1e6))
    def hop(self, row: int, nbytes: float) -> None:
        self.led.charge(row, nbytes)
        self.led.attempt(row)
        self.led.charge(row, nbytes, control=True)

    @invariant()
    def books_balance(self) -> None:
        counts = self.led.counts()
        assert sum(counts.values()) == len(self.led) == len(self.model)
        assert counts == {k: sum(m["outcome"] == k for m in self.model) for k in OUTCOMES}
        for row, m in enumerate(self.model):
            assert self.led.outcome_of(row) == m["outcome"]
            assert self.led.last_reason(row) == m["reason"]
        cols = self.led.columns()
        at = np.array([m["at"] for m in self.model], dtype=np.float64)
        assert np.array_equal(cols["delivered_at"], at, equal_nan=True)
        assert cols["duplicates"].tolist() == [m["dups"] for m in self.model]
        self.led.check()


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)


# -- Message --------------------------------------------------------------------------------------


def test_message_defaults() -> None:
    m = Message(5, "data", "a", "b", 100.0, 1.5, 3)
    assert (m.id, m.kind, m.src, m.dst, m.size, m.created_at, m.ob) == (5, "data", "a", "b", 100.0, 1.5, 3)
    assert (m.topic, m.reliable, m.attempt, m.payload) == ("", False, 1, None)
    assert m.hops == 0
    assert m.sent_at == 1.5
    assert m.link is None
    assert m.control is False
    assert repr(m) == "Message(id=5, kind='data', 'a'->'b', size=100, created_at=1.5, ob=3, attempt=1)"


@pytest.mark.parametrize("kind", DATA_KINDS)
def test_data_kinds_are_not_control(kind: str) -> None:
    assert Message(1, kind, "a", "b", 1, 0.0).control is False
    assert kind in KINDS  # every data kind can open a ledger row


@pytest.mark.parametrize("kind", CONTROL_KINDS)
def test_control_kinds_are_control(kind: str) -> None:
    assert Message(1, kind, "a", "b", 1, 0.0).control is True
    assert kind not in KINDS


def test_copy_keeps_identity_and_resets_hops() -> None:
    payload = {"k": 1}
    m = Message(
        9, "request", "a", "b", 64.0, 2.0, (3, 4), topic="t", reliable=True, attempt=3, payload=payload
    )
    m.tag = 5
    m.hops = 4
    m.sent_at = 7.5
    m.link = object()
    c = m.copy()
    assert c is not m
    assert (c.id, c.kind, c.src, c.dst, c.size, c.created_at) == (9, "request", "a", "b", 64.0, 2.0)
    assert (c.ob, c.topic, c.reliable, c.attempt, c.tag) == ((3, 4), "t", True, 3, 5)
    assert c.payload is payload
    assert c.control is False
    assert c.hops == 0
    assert c.sent_at == 2.0
    assert c.link is None
    assert (m.hops, m.sent_at) == (4, 7.5)  # the original is untouched


def test_copy_applies_changes() -> None:
    m = Message(9, "data", "a", "b", 64.0, 2.0, 3)
    c = m.copy(attempt=2, dst="c", src="b")
    assert (c.id, c.ob, c.attempt, c.src, c.dst) == (9, 3, 2, "b", "c")
    assert (m.attempt, m.src, m.dst) == (1, "a", "b")


def test_copy_with_a_new_kind_updates_control() -> None:
    assert Message(1, "data", "a", "b", 1, 0.0, 0).copy(kind="ack").control is True


@pytest.mark.parametrize(
    ("ob", "rows"), [(0, (0,)), (7, (7,)), (-1, ()), ((), ()), ((2,), (2,)), ((1, 5, 9), (1, 5, 9))]
)
def test_obligations(ob: int | tuple[int, ...], rows: tuple[int, ...]) -> None:
    assert Message(1, "event", "a", "b", 1, 0.0, ob).obligations() == rows
    assert Message(1, "ack", "a", "b", 1, 0.0).obligations() == ()  # control traffic: no row by default


# -- superseded ----------------------------------------------------------------------------------


def test_supersede_touches_only_undelivered_rows_of_the_kinds_of_completed_operations() -> None:
    led = Ledger()
    req = led.open(1, "request", "c", "s", "", 0.0, 10)
    lost_reply = led.open(2, "reply", "s", "c", "", 0.1, 10, 1)
    led.open(3, "reply", "s", "c", "", 0.2, 10, 1)  # still in flight at the end
    good_reply = led.open(4, "reply", "s", "c", "", 0.3, 10, 1)
    other_call = led.open(5, "request", "c", "s", "", 0.0, 10)
    other_reply = led.open(6, "reply", "s", "c", "", 0.1, 10, 5)
    led.deliver(req, 0.05)
    led.lose(lost_reply, "loss")
    led.deliver(good_reply, 0.4)
    led.lose(other_call, "timeout")
    led.lose(other_reply, "loss")
    led.ops.complete(1, 0.4)
    led.ops.fail(5, "timeout", 2)
    assert led.supersede(()) == 0
    assert led.supersede(("reply",)) == 2
    assert [led.outcome_of(r) for r in range(6)] == [
        "delivered",
        "superseded",
        "superseded",
        "delivered",
        "lost",
        "lost",  # its call failed: a real loss
    ]
    assert led.counts() == {"delivered": 2, "lost": 2, "in_flight": 0, "superseded": 2}
    assert led.statistics().superseded == 2
    assert led.columns()["op"].tolist() == [1, 1, 1, 1, 5, 5]
    led.check()
    led.superseded_count += 1
    with pytest.raises(InvariantError, match=r"created 6 != .* \+ superseded 3"):
        led.check()
