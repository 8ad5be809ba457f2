"""Summary metrics of one run, computed from the ledger's columns.

Two levels. *Obligations* (``offered``, ``delivered``, ``latency_*`` ...): only rows created at or after
``warmup`` count; latency is ``delivered_at - created_at`` in seconds, measured from the intended send
time. *Operations* (``op_*``): what the application asked for (:func:`operations` builds the table from
the ledger's ``op`` column and the patterns' records); only operations started at or after ``warmup``
count, with every row and transmission that served them, whenever it happened. Every name in
:data:`METRICS` is always present in a summary (``nan`` where it does not apply, e.g. latency when
nothing was delivered).

This module is the one place that names and summarizes figures: model code and patterns record raw
samples and counts (a pattern declares its own as :class:`~sim.patterns.base.Measure`), and the means and
percentiles of a summary are all computed here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np

from sim.core.errors import SimError
from sim.core.ledger import REASONS
from sim.model.broker.queue import BrokerStatistics
from sim.model.node import NodeStatistics
from sim.patterns import PATTERNS
from sim.patterns.base import Measure, Pattern
from sim.run.checks import check_metrics
from sim.run.stability import STABILITY_DOCS

__all__ = [
    "LOST_BY_REASON",
    "METRICS",
    "METRIC_DOCS",
    "OP_FAILED_BY_REASON",
    "PATTERN_METRICS",
    "RESERVED",
    "SAMPLE_STATISTICS",
    "measure_docs",
    "operations",
    "queue_wait_mean",
    "recovery_time",
    "refuse_reserved",
    "summarize",
    "summarize_samples",
]

SAMPLE_STATISTICS: dict[str, tuple[str, float | None]] = {
    "mean": ("mean", None),
    "p50": ("median", 50),
    "p99": ("99th percentile", 99),
}
"""How a ``samples`` measure is summarized: suffix -> (words, percentile; None for the mean)."""


def measure_docs(measure: Measure) -> dict[str, str]:
    """The summary names of a pattern's measure, with their meanings (``rtt`` -> ``rtt_mean``, ...)."""
    if measure.kind == "count":
        return {measure.name: measure.meaning}
    return {
        f"{measure.name}_{suffix}": f"{words} {measure.meaning}, {measure.unit}"
        for suffix, (words, _) in SAMPLE_STATISTICS.items()
    }


def summarize_samples(name: str, samples: Sequence[float] | np.ndarray) -> dict[str, float]:
    """``<name>_mean``, ``<name>_p50``, ``<name>_p99`` of a measure's samples (NaN without samples)."""
    values = np.asarray(samples, dtype=np.float64)
    out: dict[str, float] = {}
    for suffix, (_, q) in SAMPLE_STATISTICS.items():
        if not values.size:
            out[f"{name}_{suffix}"] = math.nan
        elif q is None:
            out[f"{name}_{suffix}"] = float(values.mean())
        else:
            out[f"{name}_{suffix}"] = float(np.percentile(values, q))
    return out


def queue_wait_mean(nodes: Sequence[NodeStatistics], brokers: Sequence[BrokerStatistics]) -> float:
    """Mean wait before service, s: in a run with a broker, the mean over the brokers that measured one of
    their queues' wait; otherwise the serving nodes' inbox wait over every message they processed."""
    if brokers:
        waits = [s.queue_wait_mean for s in brokers if s.queue_wait_mean == s.queue_wait_mean]
        return sum(waits) / len(waits) if waits else math.nan
    processed = sum(s.processed for s in nodes)
    return sum(s.wait_total for s in nodes) / processed if processed else math.nan


METRIC_DOCS: dict[str, str] = {
    "offered": "obligations created after warm-up (messages × intended recipients)",
    "delivered": "obligations delivered to the recipient application",
    "lost": "obligations given up, for any reason",
    "in_flight": "obligations neither delivered nor lost when the drain ended",
    "superseded": "obligations not delivered and no longer owed: another copy completed their operation "
    "(a dropped reply whose call a retry answered)",
    "duplicates": "extra copies the recipient application received",
    "delivery_ratio": "delivered / (offered - superseded)",
    "latency_mean": "mean delivery latency, s (intended send → delivery)",
    "latency_p50": "median delivery latency, s",
    "latency_p95": "95th percentile latency, s",
    "latency_p99": "99th percentile latency, s",
    "latency_p999": "99.9th percentile latency, s",
    "latency_max": "largest delivery latency, s",
    "throughput": "deliveries per simulated second between warm-up and the end of the run",
    "transmissions": "link transmissions, data plus control",
    "data_transmissions": "link transmissions carrying obligations",
    "control_transmissions": "link transmissions of acks and other control traffic",
    "msgs_per_delivery": "transmissions / delivered",
    "bytes_per_delivery": "bytes sent over links / delivered",
    "control_share": "control transmissions / all transmissions",
    "retries": "sender retransmissions (attempts beyond the first)",
    "redeliveries": "broker redeliveries after an ack timeout or consumer loss",
    "dead_lettered": "obligations moved to a dead-letter queue",
    "deduplicated": "duplicate copies suppressed by receiver-side dedup",
    "queue_wait_mean": "mean wait in a node or broker queue before service, s",
    "broker_utilization": "busy fraction of broker servers over the measured window [warmup, duration)",
    "backlog_max": "largest queue depth observed",
    "backlog_mean": "time-average of messages ready in broker queues between warm-up and the end "
    "(Little's L_q)",
    "faults": "fault windows in the run (a crash with its recovery, a partition with its heal, ...)",
    "recovery_time": "longest time from a fault's end until delivery throughput is back within 10 % of "
    "its level before the fault, s (inf: not back by the end of the run)",
    "op_offered": "operations (what the application asked for) started at or after warm-up",
    "op_completed": "operations that completed (message delivered, call answered, publish at every "
    "subscriber, event graph done)",
    "op_success_ratio": "op_completed / op_offered",
    "op_failed": "operations given up (a row lost for good, a call timed out)",
    "op_unfinished": "operations neither completed nor failed when the drain ended",
    "op_unfinished_share": "op_unfinished / op_offered",
    "op_latency_mean": "mean operation latency, s (intended start → completion)",
    "op_latency_p50": "median operation latency, s",
    "op_latency_p95": "95th percentile operation latency, s",
    "op_latency_p99": "99th percentile operation latency, s",
    "op_latency_p999": "99.9th percentile operation latency, s",
    "op_latency_max": "largest operation latency, s",
    "op_msgs_per_op": "link transmissions (data and control) serving the measured operations, per "
    "completed operation",
    "op_data_msgs_per_op": "data link transmissions serving the measured operations, per completed operation",
    "op_control_msgs_per_op": "control link transmissions (acks, confirms) serving the measured "
    "operations, per completed operation",
    "op_bytes_per_op": "bytes sent over links for the measured operations, per completed operation",
    "op_duplicates": "extra copies the application acted on, in the measured operations",
    "op_duplicates_per_op": "op_duplicates / op_completed",
}
LOST_BY_REASON = tuple(f"lost_{r}" for r in REASONS if r)
for _name in LOST_BY_REASON:
    METRIC_DOCS[_name] = f"obligations lost for reason '{_name[5:]}'"
OP_FAILED_BY_REASON = tuple(f"op_failed_{r}" for r in REASONS if r)
for _name in OP_FAILED_BY_REASON:
    METRIC_DOCS[_name] = f"operations failed for reason '{_name[10:]}'"
PATTERN_METRICS: dict[str, tuple[str, ...]] = {
    _name: tuple(n for m in _pattern.measures for n in measure_docs(m))
    for _name, _pattern in PATTERNS.items()
}
"""Each pattern's own summary figures (nan in the other patterns' runs)."""
for _pattern in PATTERNS.values():
    for _measure in _pattern.measures:
        METRIC_DOCS.update(measure_docs(_measure))
_SAMPLES = {m.name for p in PATTERNS.values() for m in p.measures if m.kind == "samples"}
REPLICATION_DOCS: dict[str, str] = {
    "replication_messages": "messages between a replicated broker's replicas (replicate, replicated, settle, "
    "catch_up; control traffic in the ledger)",
    "replication_bytes": "bytes of those messages",
    **{
        f"commit_latency_{suffix}": f"{words} time from the leader's append of a publish to a majority's, s"
        for suffix, (words, _) in SAMPLE_STATISTICS.items()
    },
    "elections": "leaders elected after a leader's crash",
    "unavailable": "seconds without a leader (from a leader's crash to the next election)",
}
"""A replicated broker's figures (``broker.replicas`` > 1), in those runs' summaries only: not in
:data:`METRICS`, so that no other run's summary changes."""
_SAMPLES.add("commit_latency")
METRIC_DOCS.update(STABILITY_DOCS)  # the measured window's figures (sim.run.stability)
METRICS: tuple[str, ...] = tuple(METRIC_DOCS)
RESERVED = (
    frozenset(METRICS).union(REPLICATION_DOCS).difference(*PATTERN_METRICS.values()).union(check_metrics())
)
"""Summary names ``sim`` reports itself (and a checked sweep adds): a plug-in's measure may not take one, or
its figure would replace sim's silently. Names of the built-in patterns' own measures stay open."""


def refuse_reserved(pattern: type[Pattern], ref: str) -> None:
    """SimError if one of ``pattern``'s measures would report under a name in :data:`RESERVED`."""
    taken = [n for m in pattern.measures for n in measure_docs(m) if n in RESERVED]
    if taken:
        raise SimError(
            "pattern",
            ref,
            f"a class whose measures take no figure sim reports ({pattern.__name__}.measures: {taken[0]!r})",
        )


_PERCENTILES = {"latency_p50": 50, "latency_p95": 95, "latency_p99": 99, "latency_p999": 99.9}
_EMPTY_INT = np.zeros(0, dtype=np.int64)


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def summarize(
    columns: Mapping[str, np.ndarray],
    *,
    warmup: float,
    duration: float,
    control_unattributed: float = 0.0,
    control_bytes_unattributed: float = 0.0,
    extra: Mapping[str, float | Sequence[float]] | None = None,
    ops: Mapping[str, np.ndarray] | None = None,
    measures: Sequence[Measure] = (),
) -> dict[str, float]:
    """The run's summary, one float per metric name.

    Parameters
    ----------
    columns : mapping of str to ndarray
        The ledger's columns (:meth:`sim.core.ledger.Ledger.columns`).
    warmup, duration : float
        Seconds; obligations created before ``warmup`` are excluded, throughput counts deliveries in
        ``[warmup, duration)``.
    control_unattributed, control_bytes_unattributed : float
        Control traffic tied to no obligation (heartbeats, subscriptions), added to the cost figures.
    extra : mapping
        Figures reported by components (``queue_wait_mean``, ``broker_utilization``, ...), and the
        patterns' measures: a count as is, the samples of a ``samples`` measure summarized here.
    ops : mapping, optional
        The operation table (:func:`operations`); by default built from ``columns`` alone (every
        operation completes when all its rows are delivered).
    measures : sequence of Measure
        The run's pattern's measures (a plug-in's ``samples`` are known only so).
    """
    keep = columns["created_at"] >= warmup
    outcome = columns["outcome"][keep]
    delivered_mask = outcome == "delivered"
    lost_mask = outcome == "lost"
    offered = int(keep.sum())
    delivered = int(delivered_mask.sum())
    latency = (columns["delivered_at"][keep] - columns["created_at"][keep])[delivered_mask]
    out: dict[str, float] = dict.fromkeys(METRICS, math.nan)
    out.update(
        offered=offered,
        delivered=delivered,
        lost=int(lost_mask.sum()),
        in_flight=int((outcome == "in_flight").sum()),
        superseded=int((outcome == "superseded").sum()),
        duplicates=int(columns["duplicates"][keep].sum()),
        delivery_ratio=_ratio(delivered, offered - int((outcome == "superseded").sum())),
    )
    if latency.size:
        out["latency_mean"] = float(latency.mean())
        out["latency_max"] = float(latency.max())
        for name, q in _PERCENTILES.items():
            out[name] = float(np.percentile(latency, q))
    span = duration - warmup
    delivered_at = columns["delivered_at"]
    in_window = (delivered_at >= warmup) & (delivered_at < duration)
    out["throughput"] = _ratio(float(in_window.sum()), span)
    data_tx = float(columns["transmissions"][keep].sum())
    control_tx = float(columns["control"][keep].sum()) + control_unattributed
    all_bytes = float(columns["bytes"][keep].sum() + columns["control_bytes"][keep].sum())
    out["data_transmissions"] = data_tx
    out["control_transmissions"] = control_tx
    out["transmissions"] = data_tx + control_tx
    out["msgs_per_delivery"] = _ratio(data_tx + control_tx, delivered)
    out["bytes_per_delivery"] = _ratio(all_bytes + control_bytes_unattributed, delivered)
    out["control_share"] = _ratio(control_tx, data_tx + control_tx)
    out["retries"] = float(np.maximum(columns["attempts"][keep] - 1, 0).sum())
    reasons = columns["reason"][keep][lost_mask]
    for name in LOST_BY_REASON:
        out[name] = int((reasons == name[5:]).sum())
    out["dead_lettered"] = out["lost_dead_letter"]
    out.update(_op_figures(operations(columns) if ops is None else ops, warmup))
    samples = _SAMPLES.union(m.name for m in measures if m.kind == "samples")
    for key, value in (extra or {}).items():
        if key in samples:
            out.update(summarize_samples(key, cast("Sequence[float]", value)))
        else:
            out[key] = float(cast(float, value))  # a count or a figure
    return out


def operations(
    columns: Mapping[str, np.ndarray],
    records: Mapping[str, np.ndarray] | None = None,
    *,
    app_kinds: tuple[str, ...] | None = None,
) -> dict[str, np.ndarray]:
    """The run's operations, one entry per distinct ``op`` of the ledger, ordered by id.

    Parameters
    ----------
    columns : the ledger's columns (an ``op`` column; without one, each message is an operation).
    records : how operations ended, as the patterns recorded it (:meth:`sim.core.ledger.Operations.columns`).
        An operation with a record takes its outcome from the first one. Any other completes when all its
        rows are delivered (at the last delivery), fails if one of its rows was lost (with that row's
        reason), and is unfinished otherwise.
    app_kinds : row kinds whose duplicates reach the application (default: all).

    Returns
    -------
    dict of ndarray
        ``id``, ``created_at`` (the earliest intended send time of its rows, s), ``completed_at`` (NaN
        unless completed), ``outcome`` (``completed``, ``failed`` or ``unfinished``), ``reason`` (a loss
        reason for a failure, else ``""``), ``attempts`` (as recorded, else 0), ``rows``, ``data`` and
        ``control`` (link transmissions of its rows), ``bytes``, ``duplicates`` (of ``app_kinds`` rows).
    """
    op = columns["op"] if "op" in columns else columns["msg_id"]
    order = np.argsort(op, kind="stable")
    ordered = op[order]
    n = ordered.size
    if n == 0:
        empty_f = np.zeros(0, dtype=np.float64)
        empty_s = np.zeros(0, dtype=object)
        return {
            "id": _EMPTY_INT,
            "created_at": empty_f,
            "completed_at": empty_f,
            "outcome": empty_s,
            "reason": empty_s,
            "attempts": _EMPTY_INT,
            "rows": _EMPTY_INT,
            "data": _EMPTY_INT,
            "control": _EMPTY_INT,
            "bytes": empty_f,
            "duplicates": _EMPTY_INT,
        }
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ids = ordered[starts]
    outcome = columns["outcome"][order]
    delivered = outcome == "delivered"
    lost = outcome == "lost"
    all_delivered = np.logical_and.reduceat(delivered, starts)
    at = np.where(delivered, columns["delivered_at"][order], -np.inf)
    completed_at = np.where(all_delivered, np.maximum.reduceat(at, starts), np.nan)
    result = np.where(all_delivered, "completed", "unfinished").astype(object)
    reason = np.full(ids.size, "", dtype=object)
    lost_at = np.flatnonzero(lost)
    if lost_at.size:  # an operation with a lost row fails, for that row's reason (the first such row)
        group = np.searchsorted(starts, lost_at, side="right") - 1
        first, where = np.unique(group, return_index=True)
        result[first] = "failed"
        reason[first] = columns["reason"][order][lost_at[where]]
    attempts = np.zeros(ids.size, dtype=np.int64)
    if records is not None and records["id"].size:
        rec_ids, first_rec = np.unique(records["id"], return_index=True)
        pos = np.searchsorted(ids, rec_ids)
        known = (pos < ids.size) & (ids[np.minimum(pos, ids.size - 1)] == rec_ids)
        pos, first_rec = pos[known], first_rec[known]
        rec_outcome = records["outcome"][first_rec]
        result[pos] = rec_outcome
        completed_at[pos] = records["completed_at"][first_rec]
        reason[pos] = np.where(rec_outcome == "failed", records["reason"][first_rec], "")
        attempts[pos] = records["attempts"][first_rec]
    dup = columns["duplicates"]
    if app_kinds is not None:
        dup = np.where(np.isin(columns["kind"], app_kinds), dup, 0)
    return {
        "id": ids,
        "created_at": np.minimum.reduceat(columns["created_at"][order], starts),
        "completed_at": completed_at,
        "outcome": result,
        "reason": reason,
        "attempts": attempts,
        "rows": np.diff(np.append(starts, n)),
        "data": np.add.reduceat(columns["transmissions"][order], starts),
        "control": np.add.reduceat(columns["control"][order], starts),
        "bytes": np.add.reduceat((columns["bytes"] + columns["control_bytes"])[order], starts),
        "duplicates": np.add.reduceat(dup[order], starts),
    }


def _op_figures(ops: Mapping[str, np.ndarray], warmup: float) -> dict[str, float]:
    """The ``op_*`` figures of the operations started at or after ``warmup``."""
    keep = ops["created_at"] >= warmup
    result = ops["outcome"][keep]
    done = result == "completed"
    failed = result == "failed"
    offered, completed = int(keep.sum()), int(done.sum())
    unfinished = int((result == "unfinished").sum())
    data, control = float(ops["data"][keep].sum()), float(ops["control"][keep].sum())
    dups = int(ops["duplicates"][keep].sum())
    out: dict[str, float] = {
        "op_offered": offered,
        "op_completed": completed,
        "op_success_ratio": _ratio(completed, offered),
        "op_failed": int(failed.sum()),
        "op_unfinished": unfinished,
        "op_unfinished_share": _ratio(unfinished, offered),
        "op_msgs_per_op": _ratio(data + control, completed),
        "op_data_msgs_per_op": _ratio(data, completed),
        "op_control_msgs_per_op": _ratio(control, completed),
        "op_bytes_per_op": _ratio(float(ops["bytes"][keep].sum()), completed),
        "op_duplicates": dups,
        "op_duplicates_per_op": _ratio(dups, completed),
    }
    reasons = ops["reason"][keep][failed]
    for name in OP_FAILED_BY_REASON:
        out[name] = int((reasons == name[10:]).sum())
    latency = (ops["completed_at"][keep] - ops["created_at"][keep])[done]
    for name in ("mean", "p50", "p95", "p99", "p999", "max"):
        out[f"op_latency_{name}"] = math.nan
    if latency.size:
        out["op_latency_mean"] = float(latency.mean())
        out["op_latency_max"] = float(latency.max())
        for name, q in _PERCENTILES.items():
            out[f"op_{name}"] = float(np.percentile(latency, q))
    return out


def recovery_time(
    delivered_at: np.ndarray, windows: list[tuple[float, float]], *, warmup: float, duration: float
) -> float:
    """Longest recovery over the fault windows ``(start, end)``; ``nan`` without a measurable window.

    The level before a fault is the delivery rate over up to 10 s before it (after warm-up). Recovery is
    the first time ``t >= end`` at which the deliveries in ``[t, t + w)`` reach 90 % of that level, with
    ``w`` long enough to expect 900 deliveries (at most the 10 s) and a further allowance of two standard
    deviations of a Poisson count, so that the noise of an unaffected stream does not read as a slow
    recovery. A fault whose throughput never comes back counts as ``inf``.
    """
    times = np.sort(delivered_at[np.isfinite(delivered_at)])
    worst = math.nan
    for start, end in windows:
        span = min(10.0, start - warmup)
        if span <= 0 or end >= duration:
            continue
        before = np.searchsorted(times, [start - span, start])
        level = (before[1] - before[0]) / span
        if level <= 0:
            continue
        width = min(span, 900.0 / level)
        steps = np.arange(end, duration - width, width / 10)
        if steps.size == 0:
            continue
        counts = np.searchsorted(times, steps + width) - np.searchsorted(times, steps)
        expected = level * width
        back = np.flatnonzero(counts >= 0.9 * expected - 2.0 * math.sqrt(expected))
        took = float(steps[back[0]] - end) if back.size else math.inf
        worst = took if math.isnan(worst) else max(worst, took)
    return worst
