"""The per-obligation message ledger: every metric derives from it.

One row per *delivery obligation*, a (message, intended recipient) pair. Columns are typed
``array.array`` buffers appended cheaply on the hot path and handed out as numpy arrays at the end.

Outcomes: ``in_flight`` (not settled when the run ended), ``delivered``, ``lost`` (with a reason) and
``superseded`` (not delivered, but no longer owed: another copy did its operation's job, e.g. a reply
dropped and made good by the reply to a retried request). A row goes ``in_flight -> delivered`` or
``in_flight -> lost``; a late copy that arrives after the sender gave up turns ``lost`` into
``delivered`` (the message did arrive). Further copies of a delivered message count as ``duplicates``.
``superseded`` is set after the run only (:meth:`Ledger.supersede`).

Every row belongs to an *operation* — what the application asked for (column ``op``; by default the
row's own message id). Patterns whose operations end on their own terms (a call answered, a chain of
handlers done) record that in :attr:`Ledger.ops`; the others' operations are judged from their rows.

>>> led = Ledger()
>>> row = led.open(7, "data", "a", "b", "", 0.0, 100)
>>> led.deliver(row, 0.5), led.deliver(row, 0.6)
(True, False)
>>> led.counts()
{'delivered': 1, 'lost': 0, 'in_flight': 0, 'superseded': 0}
>>> led.check()
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.core.errors import InvariantError

if TYPE_CHECKING:
    from sim.core.message import Message

__all__ = ["KINDS", "OUTCOMES", "REASONS", "Ledger", "LedgerStatistics", "Operations"]

KINDS = ("data", "request", "reply", "event")
OUTCOMES = ("in_flight", "delivered", "lost", "superseded")
REASONS = (
    "",
    "loss",
    "link_down",
    "node_down",
    "partition",
    "queue_full",
    "overflow",
    "unroutable",
    "crash_lost",
    "timeout",
    "dead_letter",
    "ttl",
    "no_handler",
    # the partitioned log's (sim.model.log, sim.patterns.log)
    "unclean_election",
    "unreplicated",
    "committed_unprocessed",
    "retention",
    "skipped",
)
IN_FLIGHT, DELIVERED, LOST, SUPERSEDED = 0, 1, 2, 3
OP_COMPLETED, OP_FAILED = 1, 2
_KIND_CODE = {k: i for i, k in enumerate(KINDS)}
REASON_CODE = {r: i for i, r in enumerate(REASONS)}
NAN = math.nan


@dataclass(frozen=True, slots=True)
class LedgerStatistics:
    """A snapshot of the ledger's tallies."""

    obligations: int
    delivered: int
    lost: int
    in_flight: int
    superseded: int
    duplicates: int
    data_transmissions: int
    data_bytes: float
    control_transmissions: int
    control_bytes: float
    control_dropped: int


class Operations:
    """How operations ended, for patterns that decide it themselves (a call answered, a chain done).

    One record per decision, appended when it happens: the operation's id (the ``op`` of its ledger
    rows), ``completed_at`` (NaN for a failure), ``outcome`` (completed or failed), ``reason`` (a ledger
    reason, for a failure) and ``attempts`` (how many times the application tried; 0 if not counted).
    An operation with no record is judged from its rows after the run. The first record of an
    operation wins.

    >>> ops = Operations()
    >>> ops.complete(7, 0.25); ops.fail(8, "timeout", 3)
    >>> ops.columns()["outcome"].tolist(), len(ops)
    (['completed', 'failed'], 2)
    """

    def __init__(self) -> None:
        self.id = array("q")
        self.completed_at = array("d")
        self.outcome = array("b")
        self.reason = array("b")
        self.attempts = array("l")

    def __len__(self) -> int:
        return len(self.id)

    def complete(self, op: int, t: float) -> None:
        """Operation ``op`` did what the application asked for, at ``t`` (seconds)."""
        self.id.append(op)
        self.completed_at.append(t)
        self.outcome.append(OP_COMPLETED)
        self.reason.append(0)
        self.attempts.append(0)

    def fail(self, op: int, reason: str, attempts: int = 0) -> None:
        """Operation ``op`` was given up for ``reason`` after ``attempts`` tries by the application."""
        code = REASON_CODE[reason]
        if code == 0:
            raise ValueError("a failed operation needs a reason")
        self.id.append(op)
        self.completed_at.append(NAN)
        self.outcome.append(OP_FAILED)
        self.reason.append(code)
        self.attempts.append(attempts)

    def columns(self) -> dict[str, np.ndarray]:
        """The records as numpy columns (``outcome`` ``completed``/``failed``, ``reason`` as str)."""
        labels = np.array(("", "completed", "failed"), dtype=object)
        return {
            "id": np.frombuffer(self.id, dtype=np.int64).copy(),
            "completed_at": np.frombuffer(self.completed_at, dtype=np.float64).copy(),
            "outcome": labels[np.frombuffer(self.outcome, dtype=np.int8)],
            "reason": np.array(REASONS, dtype=object)[np.frombuffer(self.reason, dtype=np.int8)],
            "attempts": np.asarray(self.attempts, dtype=np.int64),
        }


class Ledger:
    """Columnar record of delivery obligations plus control-traffic counters."""

    def __init__(self) -> None:
        self._cap = 0
        self.msg_id = array("q")
        self.kind = array("b")
        self.src = array("l")
        self.dst = array("l")
        self.topic = array("l")
        self.created_at = array("d")
        self.delivered_at = array("d")
        self.outcome = array("b")
        self.reason = array("b")
        self.attempts = array("l")
        self.transmissions = array("l")
        self.duplicates = array("l")
        self.bytes = array("d")
        self.size = array("d")
        self.control = array("l")
        self.control_bytes_row = array("d")
        self.receiver = array("l")
        self.op = array("q")
        self.ops = Operations()
        self.names: list[str] = []
        self._name_code: dict[str, int] = {}
        self.topics: list[str] = [""]
        self._topic_code: dict[str, int] = {"": 0}
        self.open_count = 0
        self.delivered_count = 0
        self.lost_count = 0
        self.superseded_count = 0
        self.data_transmissions = 0
        self.data_bytes = 0.0
        self.control_transmissions = 0
        self.control_bytes = 0.0
        self.control_unattributed = 0  # control transmissions tied to no row (registrations, flow control)
        self.control_bytes_unattributed = 0.0
        self.control_dropped = 0
        self.counters: dict[str, float] = {}

    # -- writing ------------------------------------------------------------------------------
    def _node(self, name: str) -> int:
        code = self._name_code.get(name)
        if code is None:
            code = self._name_code[name] = len(self.names)
            self.names.append(name)
        return code

    def open(
        self,
        msg_id: int,
        kind: str,
        src: str,
        dst: str,
        topic: str,
        created_at: float,
        size: float,
        op: int = -1,
    ) -> int:
        """Create an obligation of operation ``op`` (default: its own message ``msg_id``); returns its row."""
        kind_code = _KIND_CODE[kind]  # before any append, so a bad kind leaves the columns aligned
        row = len(self.msg_id)
        self.msg_id.append(msg_id)
        self.op.append(msg_id if op < 0 else op)
        self.kind.append(kind_code)
        codes = self._name_code
        code = codes.get(src)
        self.src.append(self._node(src) if code is None else code)
        code = codes.get(dst)
        self.dst.append(self._node(dst) if code is None else code)
        code = self._topic_code.get(topic)
        if code is None:
            code = self._topic_code[topic] = len(self.topics)
            self.topics.append(topic)
        self.topic.append(code)
        self.created_at.append(created_at)
        self.size.append(size)
        if row >= self._cap:
            self._grow()
        self.open_count += 1
        return row

    def _grow(self) -> None:
        """Extend the columns written after creation by a block of initial values (cheaper than
        appending each on every ``open``); :meth:`columns` cuts them to length."""
        block = max(1024, self._cap)
        self._cap += block
        self.delivered_at.extend(array("d", [NAN]) * block)
        for codes in (self.outcome, self.reason):
            codes.extend(array("b", [0]) * block)
        for counts in (self.attempts, self.transmissions, self.duplicates, self.control):
            counts.extend(array("l", [0]) * block)
        self.receiver.extend(array("l", [-1]) * block)
        for amounts in (self.bytes, self.control_bytes_row):
            amounts.extend(array("d", [0.0]) * block)

    def attempt(self, row: int) -> None:
        """The sender (or broker) starts another attempt for this obligation."""
        self.attempts[row] += 1

    def charge(
        self, ob: int | tuple[int, ...] | None, size: float, taken: int = 1, control: bool = False
    ) -> None:
        """``taken`` link transmissions of a message of ``size`` bytes carrying obligation(s) ``ob``: the one
        way transmissions enter the ledger (the network charges every hop, or a cut-through run at once).

        Data: ``ob`` is a row, or rows sharing one transmission (a publish to a topic, attributed to its first
        row), or none. Control (acks, confirms, ...): ``ob`` is the row it serves, or < 0 for none (the
        totals and ``control_unattributed`` count it).
        """
        nbytes = taken * size
        if control:
            self.control_transmissions += taken
            self.control_bytes += nbytes
            if ob >= 0:  # type: ignore[operator]  # control carries one row
                self.control[ob] += taken  # type: ignore[index]
                self.control_bytes_row[ob] += nbytes  # type: ignore[index]
            else:
                self.control_unattributed += taken
                self.control_bytes_unattributed += nbytes
        else:
            if type(ob) is int:
                self.transmissions[ob] += taken
                self.bytes[ob] += nbytes
            elif ob:
                self.transmissions[ob[0]] += taken  # type: ignore[index]
                self.bytes[ob[0]] += nbytes  # type: ignore[index]
            self.data_transmissions += taken
            self.data_bytes += nbytes

    def drop(self, msg: Message, reason: str) -> None:
        """A transmission of ``msg`` was dropped for ``reason`` — the one drop rule: an unreliable
        transmission loses its obligations; a reliable one only notes the reason (its sender retries, and
        gives up with the last reason noted); control traffic is counted."""
        if msg.control:
            self.control_dropped += 1
        elif msg.reliable:
            for row in msg.obligations():
                self.note(row, reason)
        else:
            for row in msg.obligations():
                self.lose(row, reason)

    def deliver(self, row: int, t: float, node: str = "") -> bool:
        """The application on ``node`` got the message at ``t``; False if it already had it."""
        state = self.outcome[row]
        if state == DELIVERED:
            self.duplicates[row] += 1
            return False
        if state == IN_FLIGHT:
            self.open_count -= 1
        else:
            self.lost_count -= 1
        self.outcome[row] = DELIVERED
        self.delivered_at[row] = t
        if node:
            code = self._name_code.get(node)
            self.receiver[row] = self._node(node) if code is None else code
        self.reason[row] = 0
        self.delivered_count += 1
        return True

    def lose(self, row: int, reason: str) -> None:
        """The obligation is given up for ``reason``; no effect once delivered or already lost."""
        code = REASON_CODE[reason]
        if code == 0:
            raise ValueError("a lost obligation needs a reason")
        if self.outcome[row] == IN_FLIGHT:
            self.outcome[row] = LOST
            self.reason[row] = code
            self.open_count -= 1
            self.lost_count += 1

    def note(self, row: int, reason: str) -> None:
        """A transmission of a still-open obligation was dropped; the sender may retry."""
        if self.outcome[row] == IN_FLIGHT:
            self.reason[row] = REASON_CODE[reason]

    def last_reason(self, row: int) -> str:
        """The reason last noted for this row (``""`` if none)."""
        return REASONS[self.reason[row]]

    def supersede(self, kinds: tuple[str, ...]) -> int:
        """After the run: rows of ``kinds`` that were not delivered but whose operation completed (by
        the record in :attr:`ops`) become ``superseded``; returns how many. Their noted reason stays."""
        if not kinds or not len(self.ops):
            return 0
        n = len(self)
        table = self.ops.columns()
        done = table["id"][table["outcome"] == "completed"]
        codes = np.frombuffer(self.kind, dtype=np.int8)
        outcome = np.frombuffer(self.outcome, dtype=np.int8)[:n]
        pick = (
            np.isin(codes, [_KIND_CODE[k] for k in kinds])
            & ((outcome == IN_FLIGHT) | (outcome == LOST))
            & np.isin(np.frombuffer(self.op, dtype=np.int64), done)
        )
        rows = np.flatnonzero(pick).tolist()
        for row in rows:
            if self.outcome[row] == IN_FLIGHT:
                self.open_count -= 1
            else:
                self.lost_count -= 1
            self.outcome[row] = SUPERSEDED
            self.superseded_count += 1
        return len(rows)

    def count(self, name: str, amount: float = 1) -> None:
        """Add to a named counter (``redeliveries``, ``retries`` ...)."""
        self.counters[name] = self.counters.get(name, 0) + amount

    # -- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.msg_id)

    def outcome_of(self, row: int) -> str:
        """``in_flight``, ``delivered``, ``lost`` or ``superseded``."""
        return OUTCOMES[self.outcome[row]]

    def counts(self) -> dict[str, int]:
        """Rows per outcome."""
        return {
            "delivered": self.delivered_count,
            "lost": self.lost_count,
            "in_flight": self.open_count,
            "superseded": self.superseded_count,
        }

    def statistics(self) -> LedgerStatistics:
        """A frozen snapshot of the tallies."""
        return LedgerStatistics(
            obligations=len(self),
            delivered=self.delivered_count,
            lost=self.lost_count,
            in_flight=self.open_count,
            superseded=self.superseded_count,
            duplicates=int(sum(self.duplicates)),
            data_transmissions=self.data_transmissions,
            data_bytes=self.data_bytes,
            control_transmissions=self.control_transmissions,
            control_bytes=self.control_bytes,
            control_dropped=self.control_dropped,
        )

    def columns(self) -> dict[str, np.ndarray]:
        """The ledger as numpy columns, labels decoded (``kind``, ``outcome``, ``reason`` as str)."""
        n = len(self)
        names = np.array(self.names if self.names else [""], dtype=object)
        topics = np.array(self.topics, dtype=object)
        return {
            "msg_id": np.frombuffer(self.msg_id, dtype=np.int64).copy(),
            "kind": np.array(KINDS, dtype=object)[np.frombuffer(self.kind, dtype=np.int8)],
            "src": names[np.asarray(self.src, dtype=np.int64)],
            "dst": names[np.asarray(self.dst, dtype=np.int64)],
            "topic": topics[np.asarray(self.topic, dtype=np.int64)],
            "created_at": np.frombuffer(self.created_at, dtype=np.float64).copy(),
            "delivered_at": np.frombuffer(self.delivered_at, dtype=np.float64)[:n].copy(),
            "outcome": np.array(OUTCOMES, dtype=object)[np.frombuffer(self.outcome, dtype=np.int8)[:n]],
            "reason": np.array(REASONS, dtype=object)[np.frombuffer(self.reason, dtype=np.int8)[:n]],
            "attempts": np.asarray(self.attempts[:n], dtype=np.int64),
            "transmissions": np.asarray(self.transmissions[:n], dtype=np.int64),
            "duplicates": np.asarray(self.duplicates[:n], dtype=np.int64),
            "bytes": np.frombuffer(self.bytes, dtype=np.float64)[:n].copy(),
            "size": np.frombuffer(self.size, dtype=np.float64).copy(),
            "control": np.asarray(self.control[:n], dtype=np.int64),
            "control_bytes": np.frombuffer(self.control_bytes_row, dtype=np.float64)[:n].copy(),
            "receiver": np.append(names, "")[np.asarray(self.receiver[:n], dtype=np.int64)],
            "op": np.frombuffer(self.op, dtype=np.int64).copy(),
        }

    def check(self) -> None:
        """Raise :class:`InvariantError` unless every obligation has exactly one consistent outcome.

        Checks: created = delivered + lost + in_flight + superseded (tallies and columns agree);
        delivered rows have a delivery time no earlier than their creation; other rows have none; lost
        rows name a reason; nothing is delivered more than once without being counted as a duplicate;
        the running totals of link transmissions agree with the rows (:meth:`_reconcile`).
        """
        n = len(self)
        outcome = np.frombuffer(self.outcome, dtype=np.int8)[:n]
        problems: list[str] = []
        unknown = sorted(set(outcome.tolist()) - {IN_FLIGHT, DELIVERED, LOST, SUPERSEDED})
        tally = np.bincount(outcome[(outcome >= 0) & (outcome <= SUPERSEDED)], minlength=4)
        mine = (self.open_count, self.delivered_count, self.lost_count, self.superseded_count)
        if unknown:
            problems.append(f"unknown outcome codes {unknown}")
        elif tuple(int(t) for t in tally) != mine:
            problems.append(
                "tallies in_flight/delivered/lost/superseded "
                + "/".join(map(str, mine))
                + f" disagree with the rows {tally.tolist()}"
            )
        if n != sum(mine):
            problems.append(
                f"created {n} != delivered {self.delivered_count} + lost {self.lost_count}"
                f" + in_flight {self.open_count} + superseded {self.superseded_count}"
            )
        created = np.frombuffer(self.created_at, dtype=np.float64)
        delivered_at = np.frombuffer(self.delivered_at, dtype=np.float64)[:n]
        reason = np.frombuffer(self.reason, dtype=np.int8)[:n]
        is_delivered = outcome == DELIVERED
        bad = is_delivered & ~(delivered_at >= created - 1e-12)
        if bad.any():
            problems.append(f"{int(bad.sum())} delivered rows lack a delivery time at or after creation")
        bad = ~is_delivered & ~np.isnan(delivered_at)
        if bad.any():
            problems.append(f"{int(bad.sum())} undelivered rows carry a delivery time")
        bad = (outcome == LOST) & (reason == 0)
        if bad.any():
            problems.append(f"{int(bad.sum())} lost rows name no reason")
        bad = ~is_delivered & (np.asarray(self.duplicates[:n]) > 0)
        if bad.any():
            problems.append(f"{int(bad.sum())} undelivered rows count duplicates")
        problems += self._reconcile(n)
        if problems:
            raise InvariantError("ledger invariant violated: " + "; ".join(problems))

    def _reconcile(self, n: int) -> list[str]:
        """The network's running totals against the rows: every data transmission and byte is carried by
        a row (``data_transmissions`` = sum of ``transmissions``, ``data_bytes`` = sum of ``bytes``); control
        traffic is tied to a row or to none (registrations, flow control), so the rows' ``control`` and
        ``control_bytes`` plus the unattributed counters equal the totals."""
        problems = []
        rows = int(sum(self.transmissions[:n]))
        if rows != self.data_transmissions:
            problems.append(f"data_transmissions {self.data_transmissions} != {rows} in the rows")
        nbytes = float(np.sum(np.frombuffer(self.bytes, dtype=np.float64)[:n]))
        if not math.isclose(nbytes, self.data_bytes, rel_tol=1e-9, abs_tol=1e-6):
            problems.append(f"data_bytes {self.data_bytes:g} != {nbytes:g} in the rows")
        rows = int(sum(self.control[:n])) + self.control_unattributed
        if rows != self.control_transmissions:
            problems.append(
                f"control_transmissions {self.control_transmissions} != {rows} in the rows and unattributed"
            )
        nbytes = float(np.sum(np.frombuffer(self.control_bytes_row, dtype=np.float64)[:n]))
        nbytes += self.control_bytes_unattributed
        if not math.isclose(nbytes, self.control_bytes, rel_tol=1e-9, abs_tol=1e-6):
            problems.append(
                f"control_bytes {self.control_bytes:g} != {nbytes:g} in the rows and unattributed"
            )
        return problems
