"""Figures of a results folder (matplotlib, drawn off-screen to PNG).

- ``latency_percentiles``: latency at the 50th, 95th, 99th and 99.9th percentile on a log-percentile axis
  (as the OpenMessaging Benchmark charts draw it), one line per pattern, one panel per condition;
- ``metrics_vs_<parameter>``: the headline metrics against each numeric swept parameter, mean with a 95 %
  CI band clipped to the metric's range, one line per pattern and a line style per other factor value;
- ``cost``: link transmissions per operation, split into data and control, for every point;
- ``reliability``: success ratio and duplicates per operation for every point;
- ``backlog``: broker backlog over time in the run with the largest backlog, fault windows shaded.

Every figure names what it holds fixed (or that it holds nothing fixed), every axis has its unit, and points
flagged unstable or unfinished are drawn hollow (markers), dashed (lines) or hatched (bars). Points an
experiment declared not applicable were not run and appear in no figure; a panel says which are missing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from sim.analysis.findings import categorical, ci_half, line_factor, point_key, value_label

__all__ = ["Drawn", "build_all", "calibration_curves", "ci_band", "draw_all", "metric_range"]

Flags = Mapping[tuple[Any, ...], tuple[str, ...]]
PERCENTILES = ((50.0, "p50"), (95.0, "p95"), (99.0, "p99"), (99.9, "p999"))
TICKS = (50.0, 90.0, 95.0, 99.0, 99.9)
MAX_PANELS = 16
_AXIS = {
    "links.loss": "links.loss (loss probability per link)",
    "load": "load (offered / capacity)",
    "workload.rate": "workload.rate (messages/s per producer)",
    "workload.consumers": "workload.consumers (count)",
    "workload.producers": "workload.producers (count)",
    "topology.params.n": "topology.params.n (nodes)",
}
FLAG_NOTE = "hollow / dashed / hatched: unstable or unfinished (depends on run length)"


@dataclass(frozen=True)
class Drawn:
    """A figure before it is saved: its file name, the figure and what it holds fixed."""

    name: str
    figure: Figure
    fixed: dict[str, Any]


def metric_range(metric: str) -> tuple[float, float]:
    """The values a metric can take: ``[0, 1]`` for ratios and shares, ``[0, inf)`` for the rest (counts,
    latencies, costs are never negative)."""
    if metric.endswith(("ratio", "share", "utilization", "utilization_max")):
        return 0.0, 1.0
    return 0.0, math.inf


def ci_band(values: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct ``x`` (sorted): the mean of ``y`` over replications and its 95 % Student t band,
    clipped to the metric's range (a latency band never reaches below 0, a ratio's stays in [0, 1]).
    ``values`` has one row per run: columns ``x`` (the parameter) and ``y`` (the metric)."""
    g = values.groupby("x")["y"]
    x = np.array(sorted(values["x"].unique()), dtype=float)
    mean = g.mean().reindex(x).to_numpy(dtype=float)
    n = g.count().reindex(x).to_numpy()
    sd = g.std().reindex(x).fillna(0.0).to_numpy(dtype=float)
    half = np.where(n > 1, stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(np.maximum(n, 1)), 0.0)
    low, high = metric_range(metric)
    return mean, np.clip(mean - half, low, high), np.clip(mean + half, low, high)


def _unit(metric: str) -> str:
    if "latency" in metric or metric.startswith("rtt_") or metric == "queue_wait_mean":
        return "ms"
    if metric_range(metric)[1] == 1.0:
        return "fraction"
    if metric == "recovery_time":
        return "s"
    if "bytes" in metric:
        return "bytes"
    return "/s" if metric == "throughput" else "count"


def _scale(metric: str) -> float:
    return 1000.0 if _unit(metric) == "ms" else 1.0


def _line_factor(frame: pd.DataFrame, swept: Sequence[str]) -> str | None:
    return line_factor(frame, swept) or (swept[0] if swept else None)


def _values(frame: pd.DataFrame, col: str) -> list[Any]:
    return list(dict.fromkeys(frame[col].tolist()))


def _show(col: str, value: Any) -> str:
    return f"{col} = {value}"


def _flagged(flags: Flags, swept: Sequence[str], row: Mapping[str, Any]) -> tuple[str, ...]:
    return flags.get(point_key([row[c] for c in swept]), ())


def _op(frame: pd.DataFrame, op_name: str, fallback: str) -> str:
    """The operation-level column if the results have it, else its obligation-level stand-in."""
    return op_name if op_name in frame and frame[op_name].notna().any() else fallback


def _suptitle(fig: Figure, what: str, fixed: Mapping[str, Any], note: str = "") -> None:
    held = ", ".join(_show(k, v) for k, v in fixed.items()) if fixed else "nothing (every value is shown)"
    fig.suptitle(f"{what}\nheld fixed: {held}" + (f"\n{note}" if note else ""), fontsize=10)


# -- latency percentiles ------------------------------------------------------------------------------


def _percentile_x(p: np.ndarray | float) -> Any:
    """The log-percentile axis: ``log10(1 / (1 - p))``, so 50, 90, 99, 99.9 are evenly spaced."""
    return np.log10(1.0 / (1.0 - np.asarray(p) / 100.0))


def latency_percentiles(frame: pd.DataFrame, swept: Sequence[str], flags: Flags) -> Drawn | None:
    prefix = "op_latency_" if _op(frame, "op_latency_p50", "") else "latency_"
    cols = [f"{prefix}{suffix}" for _, suffix in PERCENTILES]
    if not all(c in frame for c in cols) or frame[cols].isna().all().all():
        return None
    line = _line_factor(frame, swept)
    others = [c for c in swept if c != line]
    conditions = _conditions(frame, others)
    shown = conditions[:MAX_PANELS]
    ncols = min(len(shown), 3 if len(shown) in (3, 5, 6, 9) else 4)
    nrows = math.ceil(len(shown) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.4 * ncols, 3.4 * nrows + 0.9), squeeze=False, sharey=True, sharex=True
    )
    lines = _values(frame, line) if line else [None]
    xs = _percentile_x(np.array([p for p, _ in PERCENTILES]))
    positive = frame[cols].to_numpy(dtype=float)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    log_y = positive.size > 0 and positive.max() / positive.min() > 50
    for ax, cond in zip(axes.flat, shown, strict=False):
        part = _select(frame, cond)
        missing = []
        for i, name in enumerate(lines):
            rows = part if name is None else part[part[line] == name]
            if rows.empty:
                missing.append(str(name))
                continue
            mean = np.array([rows[c].mean() for c in cols]) * 1000
            half = np.array([_half(rows[c]) for c in cols]) * 1000
            flagged = _flagged(flags, swept, {**cond, **({line: name} if line else {})})
            label = value_label(line, name) + (f" ({', '.join(flagged)})" if flagged else "")
            (drawn,) = ax.plot(
                xs,
                mean,
                marker="o",
                color=f"C{i}",
                linestyle="--" if flagged else "-",
                markerfacecolor="white" if flagged else f"C{i}",
                label=label,
            )
            low = np.clip(mean - half, positive.min() * 1000 * 0.5 if log_y else 0.0, math.inf)
            ax.fill_between(xs, low, mean + half, color=drawn.get_color(), alpha=0.12)
        ax.set_title(", ".join(_show(k, v) for k, v in cond.items()) or "all runs", fontsize=9)
        if missing:
            ax.text(0.98, 0.02, "n/a: " + ", ".join(missing), transform=ax.transAxes, ha="right", fontsize=7)
        ax.set_xticks(_percentile_x(np.array(TICKS)), [f"{t:g}" for t in TICKS])
        ax.grid(alpha=0.3)
        if log_y:
            ax.set_yscale("log")
        ax.legend(fontsize=7, loc="upper left", title=line, title_fontsize=7)
    for ax in axes.flat[len(shown) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("percentile (log scale of 1 / (1 − p))")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"latency (ms{', log scale' if log_y else ''})")
    kind = "operation" if prefix == "op_latency_" else "delivery"
    note = f"showing {len(shown)} of {len(conditions)} conditions" if len(shown) < len(conditions) else ""
    note = "; ".join(n for n in (note, "band: 95 % CI over replications", FLAG_NOTE if flags else "") if n)
    _suptitle(fig, f"{kind} latency percentiles ({prefix}p50 … p999), mean over replications", {}, note)
    fig.tight_layout()
    return Drawn("latency_percentiles", fig, {})


def _half(values: pd.Series) -> float:
    half = ci_half(values)
    return 0.0 if math.isnan(half) else half


def _conditions(frame: pd.DataFrame, others: Sequence[str]) -> list[dict[str, Any]]:
    """Every combination of the values of ``others`` that has runs, categorical factors slowest."""
    order = sorted(others, key=lambda c: not categorical(frame, c))
    combos = itertools.product(*[_values(frame, c) for c in order])
    out = []
    for combo in combos:
        cond = dict(zip(order, combo, strict=True))
        if not _select(frame, cond).empty:
            out.append({c: cond[c] for c in others})
    return out or [{}]


def _select(frame: pd.DataFrame, cond: Mapping[str, Any]) -> pd.DataFrame:
    part = frame
    for col, value in cond.items():
        part = part[part[col] == value]
    return part


# -- metrics against a numeric parameter -----------------------------------------------------------------


def trends(frame: pd.DataFrame, swept: Sequence[str], flags: Flags, metrics: Sequence[str]) -> list[Drawn]:
    line = _line_factor(frame, swept)
    others = [c for c in swept if c != line]
    numeric = [c for c in others if not categorical(frame, c) and frame[c].nunique() > 1]
    metrics = [m for m in metrics if m in frame and frame[m].notna().any()]
    if not metrics:
        return []
    out = []
    for param in numeric:
        styles_by = [c for c in others if c != param and categorical(frame, c)]
        fixed = {c: frame[c].iloc[0] for c in others if c != param and c not in styles_by}
        part = _select(frame, fixed)
        styles = _conditions(part, styles_by) if styles_by else [{}]
        ncols = min(3, len(metrics))
        nrows = math.ceil(len(metrics) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.5 * nrows + 1.0), squeeze=False)
        xs_all = np.array(sorted(part[param].unique()), dtype=float)
        log_x = xs_all.min() > 0 and xs_all.max() / xs_all.min() >= 100
        for ax, metric in zip(axes.flat, metrics, strict=False):
            for i, style in enumerate(styles):
                for j, name in enumerate(_values(part, line) if line else [None]):
                    rows = _select(part, style)
                    rows = rows if name is None else rows[rows[line] == name]
                    rows = rows[rows[metric].notna()]
                    if rows.empty:
                        continue
                    long = pd.DataFrame({"x": rows[param].astype(float), "y": rows[metric].astype(float)})
                    mean, low, high = ci_band(long, metric)
                    x = np.array(sorted(long["x"].unique()), dtype=float)
                    scale = _scale(metric)
                    label = " ".join(
                        [
                            value_label(line, name) if name is not None else "",
                            *(f"({_show(k, v)})" for k, v in style.items()),
                        ]
                    ).strip()
                    (drawn,) = ax.plot(
                        x, mean * scale, linestyle=["-", "--", ":", "-."][i % 4], color=f"C{j}", label=label
                    )
                    if _unit(metric) == "ms" and _spans(frame[metric]):  # a log axis: latency > 0
                        low = np.maximum(low, _floor(frame[metric]))
                    ax.fill_between(x, low * scale, high * scale, color=drawn.get_color(), alpha=0.15)
                    for xv, yv in zip(x, mean, strict=True):
                        at = {**style, **fixed, param: xv, **({line: name} if line else {})}
                        hollow = bool(_flagged(flags, swept, {c: _match(frame, c, at[c]) for c in swept}))
                        ax.plot(
                            [xv],
                            [yv * scale],
                            marker="o",
                            color=drawn.get_color(),
                            markerfacecolor="white" if hollow else drawn.get_color(),
                            markersize=6 if hollow else 4,
                        )
            if metric_range(metric)[1] == 1.0:
                ax.set_ylim(-0.02, 1.02)  # the full range of a ratio: no axis that starts at 0.67
            elif not (_unit(metric) == "ms" and _spans(frame[metric])):
                ax.set_ylim(bottom=0)
            if _unit(metric) == "ms" and _spans(frame[metric]):
                ax.set_yscale("log")
            if log_x:
                ax.set_xscale("log")
            ax.set_xlabel(_AXIS.get(param, param) + (", log scale" if log_x else ""))
            ax.set_ylabel(f"{metric} ({_unit(metric)}{', log scale' if ax.get_yscale() == 'log' else ''})")
            ax.set_title(metric, fontsize=9)
            ax.grid(alpha=0.3)
        for ax in axes.flat[len(metrics) :]:
            ax.set_visible(False)
        axes.flat[0].legend(fontsize=7, title=line, title_fontsize=7)
        note = "line: mean over replications; band: 95 % CI, clipped to the metric's range"
        note += f"; {FLAG_NOTE}" if flags else ""
        _suptitle(fig, f"headline metrics against {param}", fixed, note)
        fig.tight_layout()
        out.append(Drawn(f"metrics_vs_{param.replace('.', '_')}", fig, fixed))
    return out


def _match(frame: pd.DataFrame, col: str, value: Any) -> Any:
    """``value`` as stored in ``frame[col]`` (a float x back to the column's own type)."""
    for v in frame[col].unique():
        if v == value:
            return v
    return value


def _floor(values: pd.Series) -> float:
    """The lowest a band may reach on a log axis: half the smallest positive value (a latency is > 0)."""
    x = values.to_numpy(dtype=float)
    return float(x[np.isfinite(x) & (x > 0)].min()) / 2


def _spans(values: pd.Series) -> bool:
    x = values.to_numpy(dtype=float)
    x = x[np.isfinite(x) & (x > 0)]
    return bool(x.size) and x.max() / x.min() > 50


# -- bars per point ----------------------------------------------------------------------------------------


def _bar_labels(table: pd.DataFrame, swept: Sequence[str]) -> list[str]:
    rows = table[list(swept)].itertuples(index=False)
    return [" / ".join(value_label(c, v) for c, v in zip(swept, row, strict=True)) for row in rows]


def _hatch(bars: Any, table: pd.DataFrame, swept: Sequence[str], flags: Flags) -> None:
    for bar, row in zip(bars, table[list(swept)].itertuples(index=False), strict=True):
        if flags.get(point_key(list(row)), ()):
            bar.set_hatch("///")
            bar.set_edgecolor("black")


def cost(frame: pd.DataFrame, swept: Sequence[str], flags: Flags) -> Drawn | None:
    if not swept:
        return None
    if _op(frame, "op_data_msgs_per_op", "") and _op(frame, "op_control_msgs_per_op", ""):
        data = frame["op_data_msgs_per_op"]
        control = frame["op_control_msgs_per_op"]
        per = "completed operation"
    elif {"data_transmissions", "control_transmissions", "delivered"} <= set(frame.columns):
        delivered = frame["delivered"].where(frame["delivered"] > 0)
        data, control = frame["data_transmissions"] / delivered, frame["control_transmissions"] / delivered
        per = "delivery"
    else:
        return None
    grouped = frame.assign(_data=data, _control=control).groupby(list(swept), sort=False)
    table = grouped[["_data", "_control"]].mean().reset_index()
    labels = _bar_labels(table, swept)
    fig, ax = plt.subplots(figsize=(max(7, 0.42 * len(labels)), 4.6))
    x = np.arange(len(labels))
    bars = ax.bar(x, table["_data"], label="data (messages and their retransmissions)")
    _hatch(bars, table, swept, flags)
    bars = ax.bar(
        x, table["_control"], bottom=table["_data"], label="control (acks, confirms, registrations)"
    )
    _hatch(bars, table, swept, flags)
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
    ax.set_xlabel(" / ".join(swept))
    ax.set_ylabel(f"link transmissions per {per} (count)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    note = FLAG_NOTE if flags else ""
    _suptitle(fig, f"message cost per {per}, mean over replications", {}, note)
    fig.tight_layout()
    return Drawn("cost", fig, {})


def reliability(frame: pd.DataFrame, swept: Sequence[str], flags: Flags) -> Drawn | None:
    ratio = _op(frame, "op_success_ratio", "delivery_ratio")
    if not swept or ratio not in frame:
        return None
    if _op(frame, "op_duplicates_per_op", ""):
        dups, what = frame["op_duplicates_per_op"], "duplicates per operation"
    elif {"duplicates", "delivered"} <= set(frame.columns):
        dups, what = (
            frame["duplicates"] / frame["delivered"].where(frame["delivered"] > 0),
            "duplicates per delivery",
        )
    else:
        return None
    grouped = frame.assign(_ratio=frame[ratio], _dups=dups).groupby(list(swept), sort=False)
    table = grouped[["_ratio", "_dups"]].mean().reset_index()
    labels = _bar_labels(table, swept)
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.45 * len(labels)), 8.0), sharex=True)
    x = np.arange(len(labels))
    _hatch(axes[0].bar(x, table["_ratio"], color="C2"), table, swept, flags)
    axes[0].set_ylabel(f"{ratio} (fraction)")
    axes[0].set_ylim(0, 1.05)  # the full range: a shortfall is read against the whole
    _hatch(axes[1].bar(x, table["_dups"], color="C3"), table, swept, flags)
    axes[1].set_ylabel(f"{what} (count)")
    axes[1].set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
    axes[1].set_xlabel(" / ".join(swept))
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    fig.align_ylabels(axes)
    _suptitle(fig, "success and duplicates, mean over replications", {}, FLAG_NOTE if flags else "")
    fig.tight_layout()
    return Drawn("reliability", fig, {})


# -- backlog over time -------------------------------------------------------------------------------------


def backlog(
    frame: pd.DataFrame,
    swept: Sequence[str],
    series: pd.DataFrame,
    windows: Mapping[str, Any],
    flags: Flags,
) -> Drawn | None:
    curves = series[series["series"] == "backlog"]
    if curves.empty or "backlog_max" not in frame.columns or frame["backlog_max"].isna().all():
        return None
    run = frame.iloc[int(np.nanargmax(frame["backlog_max"].to_numpy(dtype=np.float64)))]
    curve = curves[curves["config_hash"] == run["config_hash"]].sort_values("x")
    if curve.empty:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.step(curve["x"], curve["y"], where="post", label="messages ready")
    shaded = False
    for start, end, what in windows.get(str(int(run["point"])), []):
        stop = end if end is not None else float(curve["x"].max())
        ax.axvspan(start, stop, color="C3", alpha=0.15, label=None if shaded else "fault window")
        ax.text(start, ax.get_ylim()[1] * 0.95, f" {what}", fontsize=7, va="top", color="C3")
        shaded = True
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("messages ready in broker queues (count)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if shaded:
        ax.legend(fontsize=8)
    fixed = {c: run[c] for c in swept}
    flagged = _flagged(flags, swept, fixed)
    shown = ", ".join(_show(k, v) for k, v in fixed.items())
    fig.suptitle(
        f"broker backlog in the run with the largest backlog_max\nthe run: {shown}, replication "
        f"{int(run['replication'])}" + (f" — flagged {', '.join(flagged)}" if flagged else ""),
        fontsize=10,
    )
    fig.tight_layout()
    return Drawn("backlog", fig, fixed)


# -- all of them --------------------------------------------------------------------------------------------


def build_all(
    frame: pd.DataFrame,
    swept: Sequence[str],
    series: pd.DataFrame,
    *,
    flags: Flags | None = None,
    metrics: Sequence[str] = (),
    windows: Mapping[str, Any] | None = None,
) -> list[Drawn]:
    """Every figure the data supports, not yet saved (tests read their titles, limits and artists)."""
    flags = flags or {}
    out: list[Drawn | None] = [latency_percentiles(frame, swept, flags)]
    out += trends(frame, swept, flags, metrics)
    out += [cost(frame, swept, flags), reliability(frame, swept, flags)]
    out.append(backlog(frame, swept, series, windows or {}, flags))
    return [d for d in out if d is not None]


def draw_all(
    folder: Path,
    frame: pd.DataFrame,
    swept: Sequence[str],
    series: pd.DataFrame,
    *,
    flags: Flags | None = None,
    metrics: Sequence[str] = (),
    windows: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Draw every figure that the data supports into ``folder/figures``; returns their paths."""
    paths = []
    for drawn in build_all(frame, swept, series, flags=flags, metrics=metrics, windows=windows):
        paths.append(_save(drawn.figure, folder, drawn.name))
    return paths


def calibration_curves(rows: pd.DataFrame) -> Figure:
    """One setting of a calibration against a real broker (``sim.real.report``): measured and predicted
    p50 and p99 latency, and delivered against offered throughput, over the offered load; the fitted
    saturation as a grey line. ``rows``: the setting's rows of ``comparison.csv``. A figure outside pyplot's
    registry (nothing to close)."""
    fig = Figure(figsize=(10, 3.8))
    lat, thr = fig.subplots(1, 2)
    x = rows["offered"]
    lat.plot(x, rows["p50_ms"], "o", color="C0", label="p50 measured")
    lat.plot(x, rows["p50_sim_ms"], "-", color="C0", label="p50 sim")
    lat.plot(x, rows["p99_ms"], "s", color="C3", label="p99 measured")
    lat.plot(x, rows["p99_sim_ms"], "--", color="C3", label="p99 sim")
    lat.set_yscale("log")
    lat.set_xlabel("offered load (messages/s)")
    lat.set_ylabel("latency from due time (ms)")
    lat.axvline(rows["saturation_fit"].iloc[0], color="grey", lw=0.8, ls=":", label="fitted saturation")
    lat.legend(fontsize=7)
    thr.plot(x, rows["throughput"], "o", color="C2", label="measured")
    thr.plot(x, rows["throughput_sim"], "-", color="C2", label="sim")
    thr.plot(x, x, ":", color="grey", lw=0.8, label="offered")
    thr.set_xlabel("offered load (messages/s)")
    thr.set_ylabel("delivered (messages/s)")
    thr.legend(fontsize=7)
    first = rows.iloc[0]
    fig.suptitle(
        f"{first['setting']}: {first['label']} (1 KiB, Poisson, 1 producer, 1 consumer, loopback)", fontsize=9
    )
    fig.tight_layout()
    return fig


def _save(fig: Figure, folder: Path, name: str) -> Path:
    path = folder / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path
