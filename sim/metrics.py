"""Summary metrics of one run, computed from the ledger's columns.

Only obligations created at or after ``warmup`` count. Latency is ``delivered_at - created_at`` in
seconds, measured from the intended send time. Every name in :data:`METRICS` is always present in a
summary (``nan`` where it does not apply, e.g. latency when nothing was delivered).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from sim.ledger import REASONS
from sim.patterns import PATTERNS
from sim.stability import STABILITY_DOCS

__all__ = ["LOST_BY_REASON", "METRICS", "METRIC_DOCS", "recovery_time", "summarize"]

METRIC_DOCS: dict[str, str] = {
    "offered": "obligations created after warm-up (messages × intended recipients)",
    "delivered": "obligations delivered to the recipient application",
    "lost": "obligations given up, for any reason",
    "in_flight": "obligations neither delivered nor lost when the drain ended",
    "duplicates": "extra copies the recipient application received",
    "delivery_ratio": "delivered / offered",
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
}
LOST_BY_REASON = tuple(f"lost_{r}" for r in REASONS if r)
for _name in LOST_BY_REASON:
    METRIC_DOCS[_name] = f"obligations lost for reason '{_name[5:]}'"
for _pattern in PATTERNS.values():  # each pattern's own figures (nan for the other patterns)
    METRIC_DOCS.update(_pattern.metrics)
METRIC_DOCS.update(STABILITY_DOCS)  # the measured window's figures (sim.stability)
METRICS: tuple[str, ...] = tuple(METRIC_DOCS)

_PERCENTILES = {"latency_p50": 50, "latency_p95": 95, "latency_p99": 99, "latency_p999": 99.9}


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def summarize(
    columns: Mapping[str, np.ndarray],
    *,
    warmup: float,
    duration: float,
    control_unattributed: float = 0.0,
    control_bytes_unattributed: float = 0.0,
    extra: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The run's summary, one float per metric name.

    Parameters
    ----------
    columns : mapping of str to ndarray
        The ledger's columns (:meth:`sim.ledger.Ledger.columns`).
    warmup, duration : float
        Seconds; obligations created before ``warmup`` are excluded, throughput counts deliveries in
        ``[warmup, duration)``.
    control_unattributed, control_bytes_unattributed : float
        Control traffic tied to no obligation (heartbeats, subscriptions), added to the cost figures.
    extra : mapping
        Figures reported by components (``queue_wait_mean``, ``broker_utilization``, ...).
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
        duplicates=int(columns["duplicates"][keep].sum()),
        delivery_ratio=_ratio(delivered, offered),
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
    if extra:
        out.update({k: float(v) for k, v in extra.items()})
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
