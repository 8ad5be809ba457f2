"""A run's trace as a table of transmissions: the hop records of ``trace = true`` chained and joined to the
ledger (:func:`trace_table`; ``RunResult.trace_frame()`` makes it a DataFrame).

The model records little, so that a trace costs nothing when it is off and changes no number when it is on:
``(time, event, msg_id, node, detail)`` with ``hop`` (``node`` sends on the link to ``detail``), ``arrive``
(handed to the node's application), ``drop`` (``detail`` the reason) and ``fault``. A retransmission, a
broker's delivery and a pub/sub copy keep their message's id, and a hop record does not say when it ends.
The rest is derived here, one message id at a time, in time order:

- a hop ends at the next event of the same message at its far node: the node sends it on (``forward``), takes
  it (``arrive``) or drops it (``drop``, with the reason); a ``loss`` drop at the near node at the hop's own
  time is the hop lost on the link (``lost``). Copies of one message on one link end in the order they were
  sent. A node never forwards a message that its application sender sent *to* it once that message has
  arrived there (a broker's deliveries are new transmissions, not the publish going on);
- a *transmission* (``tx``) is a chain of hops from its ``origin`` (the node that sent it) to the node where
  it ends; a drop at a node that nothing was heading to (a send refused while the node is down, no route) is
  a transmission of no hop;
- its obligation (``row``, ``op``) comes from the ledger: the message's one row, or, for a copy of a publish
  fanned out to subscribers, the row of the subscriber it reached (``-1`` for the publish itself, which
  carries every row, and for a copy lost before it reached anyone);
- ``attempt`` counts the transmissions of one message from one origin for one obligation: the sender's
  retries, or a broker's deliveries (redeliveries, and deliveries of a publish it took more than once);
  ``retry_of`` is the first attempt's ``tx``;
- a transmission that brings a message to a node it had reached before is a duplicate (``duplicate_of``: the
  earlier ``tx``); a link that duplicates a message makes a second arrival from one hop (same ``tx``): that
  arrival, and the hop that brought it, are marked a duplicate of their own transmission;
- control messages (acks, confirms, registrations, flow control) have negative ids and ``kind`` ``control``;
  which data transmission one answers is inferred (``answers``: the latest data transmission that reached
  its origin from the node it goes to, not answered yet), and it takes that transmission's row and operation.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from sim.core.context import TraceRecord

__all__ = ["COLUMNS", "frame", "trace_table"]

COLUMNS = (
    "time",
    "event",
    "msg_id",
    "node",
    "peer",
    "detail",
    "end_time",
    "end",
    "reason",
    "kind",
    "tx",
    "origin",
    "row",
    "op",
    "attempt",
    "retry_of",
    "duplicate_of",
    "answers",
)
"""The columns of :func:`trace_table`, in order (see :func:`trace_table`)."""

_LOOK_BACK = 256  # arrivals at a node that a control message may answer, latest first

_REFUSED = ("node_down", "no_handler", "crash_lost")  # reasons a node gives for a message it already holds


@dataclass(slots=True)
class _Tx:
    """One transmission while the trace is read."""

    id: int
    msg: int
    origin: str
    start: float
    events: list[int] = field(default_factory=list)  # indices of its records
    last: str = ""  # the node it last reached
    arrived: bool = False
    row: int = -1
    attempt: int = 1
    retry_of: int = -1
    duplicate_of: int = -1
    answers: int = -1
    arrival: float = math.nan
    at: set[str] = field(default_factory=set)  # the nodes it arrived at


def trace_table(trace: Sequence[TraceRecord], columns: dict[str, np.ndarray]) -> dict[str, list[Any]]:
    """The trace ``(time, event, msg_id, node, detail)`` in time order, one entry per record, with what the
    module's text derives, as lists keyed by :data:`COLUMNS`.

    Columns: ``time`` (s), ``event`` (``hop``, ``arrive``, ``drop``, ``fault``), ``msg_id``, ``node`` (where:
    a hop's sender, a fault's target), ``peer`` (a hop's far node, else ``""``), ``detail`` (as recorded),
    ``end_time`` (a hop's arrival at ``peer`` in s; NaN when lost on the link or still under way at the end),
    ``end`` (how a hop ended: ``forward``, ``arrive``, ``drop``, ``lost``, or ``""``), ``reason`` (a drop's,
    or the drop that ended a hop), ``kind`` (``data``, ``request``, ``reply``, ``event``, ``control``; ``""``
    for a fault), ``tx`` and ``origin`` (the transmission and the node that sent it; ``-1`` and ``""`` for a
    fault), ``row`` and ``op`` (the ledger row and operation, ``-1`` if none), ``attempt``, ``retry_of``,
    ``duplicate_of`` and ``answers`` (``tx`` ids, ``-1`` if none).
    """
    n = len(trace)
    kinds_of: dict[int, str] = {}
    rows_of: dict[int, list[int]] = {}
    for row, (msg, kind) in enumerate(zip(columns["msg_id"].tolist(), columns["kind"].tolist(), strict=True)):
        kinds_of.setdefault(msg, kind)
        rows_of.setdefault(msg, []).append(row)
    senders = columns["src"].tolist()
    recipients = columns["dst"].tolist()
    ops = columns["op"].tolist()

    tx_of = [-1] * n
    peer = [""] * n
    end_time = [math.nan] * n
    end = [""] * n
    reason = [""] * n
    twice = [-1] * n  # an arrival a duplicating link made, and its hop: its own tx
    txs: list[_Tx] = []
    heading: dict[tuple[int, str], deque[int]] = {}  # (message, node) -> hops under way to it, in send order
    # (message, node) -> (time, hop, how) of the last hop that ended there: a duplicating link's second copy
    # ends the same way at the same time
    last_end: dict[tuple[int, str], tuple[float, int, str]] = {}
    reached: dict[tuple[int, str], set[str]] = {}  # (message, node) -> origins whose copy arrived there
    holder: dict[tuple[int, str], _Tx] = {}  # (message, node) -> the last transmission that arrived there

    def new_tx(msg: int, origin: str, t: float) -> _Tx:
        tx = _Tx(len(txs), msg, origin, t, last=origin)
        txs.append(tx)
        return tx

    def close(h: int, i: int, how: str, t: float) -> _Tx:
        end[h], end_time[h] = how, t
        tx = txs[tx_of[h]]
        tx_of[i] = tx.id
        tx.events.append(i)
        return tx

    def pop(msg: int, node: str, skip: set[str] | None = None) -> int:
        waiting = heading.get((msg, node))
        if not waiting:
            return -1
        if skip:
            for h in waiting:
                if txs[tx_of[h]].origin not in skip:
                    waiting.remove(h)
                    return h
            return -1
        return waiting.popleft()

    for i, (t, event, msg, node, detail) in enumerate(trace):
        if event == "fault":
            continue
        if event == "hop":
            peer[i] = detail
            sender = senders[rows_of[msg][0]] if msg in rows_of else ""
            origins = reached.get((msg, node))
            skip = {sender} if origins and sender in origins else None
            h = pop(msg, node, skip)
            if h >= 0:
                tx = close(h, i, "forward", t)
                last_end[(msg, node)] = (t, h, "forward")
            else:
                twin = last_end.get((msg, node))
                if twin is not None and twin[0] == t and twin[2] == "forward":  # a duplicated copy goes on
                    tx = txs[tx_of[twin[1]]]
                    tx_of[i] = tx.id
                    tx.events.append(i)
                else:
                    tx = new_tx(msg, node, t)
                    tx_of[i] = tx.id
                    tx.events.append(i)
            heading.setdefault((msg, detail), deque()).append(i)
        elif event == "arrive":
            h = pop(msg, node)
            if h >= 0:
                tx = close(h, i, "arrive", t)
                last_end[(msg, node)] = (t, h, "arrive")
            else:
                twin = last_end.get((msg, node))
                same = twin is not None and twin[0] == t and twin[2] == "arrive"
                tx = txs[tx_of[twin[1]]] if same else new_tx(msg, node, t)  # type: ignore[index]
                h = twin[1] if same else -1  # type: ignore[index]
                tx_of[i] = tx.id
                tx.events.append(i)
            if node in tx.at:  # a second arrival of one transmission: a link duplicated it
                twice[i] = tx.id
                if h >= 0:
                    twice[h] = tx.id
            tx.at.add(node)
            tx.last, tx.arrived = node, True
            tx.arrival = t if math.isnan(tx.arrival) else tx.arrival
            reached.setdefault((msg, node), set()).add(tx.origin)
            holder[(msg, node)] = tx
        elif event == "drop":
            reason[i] = detail
            if detail == "loss":  # the hop just sent from ``node`` is lost on its link
                h = _lost_hop(trace, i, heading, msg, node, t, peer)
                if h >= 0:
                    end[h], reason[h] = "lost", "loss"
                    tx = txs[tx_of[h]]
                    tx_of[i] = tx.id
                    tx.events.append(i)
                    continue
            h = pop(msg, node)
            if h >= 0:
                tx = close(h, i, "drop", t)
                reason[h] = detail
                tx.last = node
                continue
            # a message the node already holds, or a send that never left (the node is down, no route)
            held = holder.get((msg, node)) if detail in _REFUSED else None
            tx = held if held is not None else new_tx(msg, node, t)
            tx_of[i] = tx.id
            tx.events.append(i)

    _obligations(txs, rows_of, recipients, senders)
    _attempts(txs)
    _duplicates(txs)
    _answers(txs, trace, kinds_of, peer)

    out: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for i, (t, event, msg, node, detail) in enumerate(trace):
        of: _Tx | None = txs[tx_of[i]] if tx_of[i] >= 0 else None
        row = of.row if of is not None else -1
        out["time"].append(float(t))
        out["event"].append(event)
        out["msg_id"].append(int(msg))
        out["node"].append(node)
        out["peer"].append(peer[i])
        out["detail"].append(detail)
        out["end_time"].append(end_time[i])
        out["end"].append(end[i])
        out["reason"].append(reason[i])
        out["kind"].append("" if event == "fault" else ("control" if msg < 0 else kinds_of.get(msg, "data")))
        out["tx"].append(-1 if of is None else of.id)
        out["origin"].append("" if of is None else of.origin)
        out["row"].append(row)
        out["op"].append(ops[row] if row >= 0 else -1)
        out["attempt"].append(0 if of is None else of.attempt)
        out["retry_of"].append(-1 if of is None else of.retry_of)
        duplicate_of = -1 if of is None else of.duplicate_of
        out["duplicate_of"].append(duplicate_of if duplicate_of >= 0 else twice[i])
        out["answers"].append(-1 if of is None else of.answers)
    return out


def _lost_hop(
    trace: Sequence[TraceRecord],
    i: int,
    heading: dict[tuple[int, str], deque[int]],
    msg: int,
    node: str,
    t: float,
    peer: list[str],
) -> int:
    """The hop of ``msg`` sent from ``node`` at ``t`` that a ``loss`` drop ends (the latest), or -1."""
    for j in range(i - 1, -1, -1):
        tj, event, mj, nj, _ = trace[j]
        if tj != t:
            return -1
        if event == "hop" and mj == msg and nj == node:
            waiting = heading.get((msg, peer[j]))
            if waiting and j in waiting:
                waiting.remove(j)
                return j
    return -1


def _obligations(
    txs: list[_Tx], rows_of: dict[int, list[int]], recipients: list[str], senders: list[str]
) -> None:
    """Each data transmission's ledger row: its message's one row, or the fanned-out copy's subscriber's."""
    for tx in txs:
        rows = rows_of.get(tx.msg)
        if not rows:
            continue
        if len(rows) == 1:
            tx.row = rows[0]
        elif tx.origin != senders[rows[0]]:  # a broker's copy for one subscriber
            tx.row = next((r for r in rows if recipients[r] == tx.last), -1)


def _attempts(txs: list[_Tx]) -> None:
    """Number the transmissions of each (message, origin, obligation) in the order they started."""
    first: dict[tuple[int, str, int], _Tx] = {}
    count: dict[tuple[int, str, int], int] = {}
    for tx in sorted(txs, key=lambda x: (x.start, x.id)):
        if tx.msg < 0:
            continue
        key = (tx.msg, tx.origin, tx.row)
        k = count[key] = count.get(key, 0) + 1
        tx.attempt = k
        if k == 1:
            first[key] = tx
        else:
            tx.retry_of = first[key].id


def _duplicates(txs: list[_Tx]) -> None:
    """A transmission that brings a message to a node it reached before duplicates the first that did."""
    seen: dict[tuple[int, str], _Tx] = {}
    for tx in sorted((x for x in txs if x.arrived), key=lambda x: (x.arrival, x.id)):
        key = (tx.msg, tx.last)
        earlier = seen.get(key)
        if earlier is None:
            seen[key] = tx
        else:
            tx.duplicate_of = earlier.id


def _answers(txs: list[_Tx], trace: Sequence[TraceRecord], kinds: dict[int, str], peer: list[str]) -> None:
    """Infer which data transmission each control transmission answers: the latest that reached the control
    message's origin, from the node the control message went to when known, and was not answered yet."""
    arrivals: dict[str, list[_Tx]] = {}
    for tx in sorted((x for x in txs if x.arrived and x.msg > 0), key=lambda x: (x.arrival, x.id)):
        arrivals.setdefault(tx.last, []).append(tx)
    times = {node: [tx.arrival for tx in got] for node, got in arrivals.items()}
    answered: set[int] = set()
    for tx in sorted((x for x in txs if x.msg < 0), key=lambda x: (x.start, x.id)):
        got = arrivals.get(tx.origin, [])
        upto = bisect_right(times.get(tx.origin, []), tx.start)  # what had arrived when it left
        to = tx.last if tx.arrived else ""
        pick = None
        for want_peer in (True, False) if to else (False,):
            for j in range(upto - 1, max(-1, upto - 1 - _LOOK_BACK), -1):
                cand = got[j]
                if cand.id in answered or (want_peer and cand.origin != to):
                    continue
                pick = cand
                break
            if pick is not None:
                break
        if pick is not None:
            answered.add(pick.id)
            tx.answers, tx.row = pick.id, pick.row


def frame(trace: Sequence[TraceRecord], columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """:func:`trace_table` as a DataFrame (``event``, ``kind``, ``end``, ``reason`` as categories; ``node``,
    ``peer`` and ``origin`` as categories of the same node names)."""
    import pandas as pd

    table = pd.DataFrame(trace_table(trace, columns), columns=list(COLUMNS))
    numbers = ("msg_id", "tx", "row", "op", "attempt", "retry_of", "duplicate_of", "answers")
    table = table.astype(
        {"time": "float64", "end_time": "float64", "detail": object, **dict.fromkeys(numbers, "int64")}
    )
    for name in ("event", "kind", "end", "reason"):
        table[name] = table[name].astype("category")
    places = pd.CategoricalDtype(sorted(set(table["node"]) | set(table["peer"]) | set(table["origin"])))
    for name in ("node", "peer", "origin"):  # one set of categories: the columns compare with each other
        table[name] = table[name].astype(places)
    return table
