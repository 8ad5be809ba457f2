"""Guarantee and ordering checks over a run's ledger and fault log.

Rules, by delivery guarantee:

- ``no_duplicates`` (at-most-once, effectively-once): no obligation reaches the application twice. Only
  rows whose duplicates reach the application count (the pattern's ``Operation.app_kinds``): a second
  copy of a reply is not one, since the callback fires once per call. Under effectively-once with
  per-consumer dedup (``delivery.dedup = "consumer"``), a message that a competing consumer gets again is
  a duplicate: per-consumer memory does not make competing consumers effectively-once.
- ``no_loss`` (at-least-once, effectively-once): no obligation is lost while its sender and receiver were
  up when the run ended — except as designed: after every allowed attempt (``max_attempts``, counted on
  the row or by the application for its operation, e.g. a call's requests), into a dead-letter queue, or
  refused outright by a full queue (``queue_full``, the producer is told), or, in the log, removed by its
  retention before the group read it (``retention``: the topic keeps records only so long, a setting) or
  before the group's start offset (``skipped``: the group asked not to read them). ``superseded`` rows (a
  dropped reply whose call a retry answered) are not lost.
- ``no_delivery_while_down`` (always): nothing is delivered to a node while it is crashed.
- ``fifo`` (when ``delivery.ordering = "per_key"``): per (src, dst, topic), obligations are delivered in the
  order they were created.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RULES", "Violation", "check", "check_metrics"]

RULES = ("no_duplicates", "no_loss", "no_delivery_while_down", "fifo")


def check_metrics() -> tuple[str, ...]:
    """The figures an experiment with ``check=True`` stores per run: ``violations`` (every rule), then
    ``violations_<rule>`` for each rule of :data:`RULES`."""
    return ("violations", *(f"violations_{rule}" for rule in RULES))


_DESIGNED_LOSS = ("dead_letter", "queue_full", "retention", "skipped")


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken promise: the ledger row, the rule, and the evidence in words."""

    obligation: int
    rule: str
    evidence: str


def check(
    columns: Mapping[str, np.ndarray],
    *,
    guarantee: str,
    max_attempts: float,
    ordering: str,
    down: Mapping[str, Sequence[tuple[float, float]]],
    end: float,
    app_kinds: Sequence[str] | None = None,
    op_attempts: Mapping[int, int] | None = None,
) -> list[Violation]:
    """Every violation in the run, ordered by rule then row.

    Parameters
    ----------
    columns : the ledger's columns.
    guarantee, max_attempts, ordering : the scenario's delivery settings.
    down : per node, the intervals it was down (:func:`sim.model.faults.injector.down_intervals`).
    end : when the run (drain included) ended, in seconds.
    app_kinds : row kinds whose duplicates reach the application (default: all).
    op_attempts : per operation id, the attempts its application made (when the pattern counts them);
        a row lost in an operation that used every attempt was lost as designed.
    """
    out: list[Violation] = []
    outcome, dup = columns["outcome"], columns["duplicates"]
    if app_kinds is not None:
        dup = np.where(np.isin(columns["kind"], list(app_kinds)), dup, 0)
    tried = op_attempts or {}
    ops = columns["op"] if "op" in columns else columns["msg_id"]
    if guarantee in ("at_most_once", "effectively_once"):
        for row in np.flatnonzero(dup > 0).tolist():
            out.append(Violation(row, "no_duplicates", f"delivered {int(dup[row]) + 1} times"))
    if guarantee in ("at_least_once", "effectively_once"):
        down_at_end = {n for n, spans in down.items() if spans and spans[-1][1] >= end}
        lost = np.flatnonzero(outcome == "lost")
        for row in lost.tolist():
            reason = columns["reason"][row]
            attempts = max(int(columns["attempts"][row]), tried.get(int(ops[row]), 0))
            src, dst = columns["src"][row], columns["dst"][row]
            if reason in _DESIGNED_LOSS or attempts >= max_attempts or {src, dst} & down_at_end:
                continue
            limit = "unbounded" if math.isinf(max_attempts) else f"of {max_attempts:g}"
            out.append(
                Violation(
                    row,
                    "no_loss",
                    f"lost ({reason}) after {attempts} attempt(s) {limit}; "
                    f"{src} and {dst} were up at the end",
                )
            )
    delivered = np.flatnonzero(outcome == "delivered")
    for row in delivered.tolist():
        node, t = columns["receiver"][row], columns["delivered_at"][row]
        for start, stop in down.get(node, ()):
            if start <= t < stop:
                out.append(
                    Violation(
                        row,
                        "no_delivery_while_down",
                        f"delivered to {node} at {t:.6g} s, down from {start:.6g} to {stop:.6g} s",
                    )
                )
    if ordering == "per_key":
        out += _fifo(columns, delivered)
    return out


def _fifo(columns: Mapping[str, np.ndarray], delivered: np.ndarray) -> list[Violation]:
    keys: dict[tuple[str, str, str], list[int]] = {}
    for row in delivered.tolist():
        keys.setdefault((columns["src"][row], columns["dst"][row], columns["topic"][row]), []).append(row)
    out = []
    created, at, ids = columns["created_at"], columns["delivered_at"], columns["msg_id"]
    for (src, dst, topic), rows in keys.items():
        rows.sort(key=lambda r: (created[r], ids[r]))
        latest = -math.inf
        for row in rows:
            if at[row] < latest:
                where = f"{src}->{dst}" + (f" on {topic}" if topic else "")
                out.append(
                    Violation(
                        row,
                        "fifo",
                        f"message {ids[row]} ({where}) delivered at {at[row]:.6g} s, "
                        f"before an earlier message delivered at {latest:.6g} s",
                    )
                )
            latest = max(latest, at[row])
    return out
