"""Figures of a results folder (matplotlib, drawn off-screen to PNG).

- ``latency_cdf``: latency CDF per pattern (replications pooled by averaging their quantile curves);
- ``<metric>_vs_<parameter>``: headline metrics against each numeric swept parameter, mean with 95 % CI band;
- ``cost``: transmissions per delivery, split into data and control, per pattern;
- ``reliability``: delivery ratio and duplicates per delivery for each parameter point;
- ``backlog``: broker backlog over time in the run with the largest backlog.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["draw_all"]

TREND_METRICS = ("delivery_ratio", "latency_p99", "msgs_per_delivery", "duplicates")


def _save(fig: Any, folder: Path, name: str) -> Path:
    path = folder / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def _series_key(frame: pd.DataFrame, swept: Sequence[str]) -> tuple[str, list[str]]:
    lines = "pattern" if "pattern" in swept else (swept[0] if swept else "")
    others = [c for c in swept if c != lines]
    return lines, others


def _first_point(frame: pd.DataFrame, others: Sequence[str]) -> pd.DataFrame:
    part = frame
    for col in others:
        part = part[part[col] == frame[col].iloc[0]]
    return part


def latency_cdf(folder: Path, frame: pd.DataFrame, swept: Sequence[str], series: pd.DataFrame) -> Path | None:
    curves = series[series["series"] == "latency_cdf"]
    if curves.empty:
        return None
    lines, others = _series_key(frame, swept)
    numeric = [c for c in others if pd.api.types.is_numeric_dtype(frame[c])]
    panel_by = numeric[0] if numeric else None
    panels = list(frame[panel_by].unique())[:4] if panel_by else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False, sharey=True)
    for ax, value in zip(axes[0], panels, strict=True):
        part = frame if panel_by is None else frame[frame[panel_by] == value]
        part = _first_point(part, [c for c in others if c != panel_by])
        for label, group in part.groupby(lines, sort=False) if lines else [("all", part)]:
            mine = curves[curves["config_hash"].isin(group["config_hash"])]
            if mine.empty:
                continue
            # average the replications' quantile curves at each cumulative fraction
            mean = mine.groupby("y", sort=True)["x"].mean()
            ax.plot(mean.to_numpy() * 1000, mean.index.to_numpy(), label=str(label))
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_title(f"{panel_by} = {value}" if panel_by else "latency CDF")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of deliveries")
    axes[0][-1].legend(fontsize=8)
    return _save(fig, folder, "latency_cdf")


def trends(folder: Path, frame: pd.DataFrame, swept: Sequence[str]) -> list[Path]:
    lines, others = _series_key(frame, swept)
    out = []
    for param in [c for c in others if pd.api.types.is_numeric_dtype(frame[c]) and frame[c].nunique() > 1]:
        rest = [c for c in others if c != param]
        styles = list(frame[rest[0]].unique()) if rest else [None]
        metrics = [m for m in TREND_METRICS if m in frame.columns and frame[m].notna().any()]
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
        for ax, metric in zip(axes[0], metrics, strict=True):
            for i, style in enumerate(styles):
                part = frame if style is None else frame[frame[rest[0]] == style]
                part = _first_point(part, rest[1:])
                for j, (label, group) in enumerate(
                    part.groupby(lines, sort=False) if lines else [("", part)]
                ):
                    g = group.groupby(param)[metric]
                    x = np.array(sorted(group[param].unique()), dtype=float)
                    mean = g.mean().reindex(x).to_numpy()
                    n = g.count().reindex(x).to_numpy()
                    sd = g.std().reindex(x).to_numpy()
                    half = np.where(n > 1, stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(n), 0.0)
                    name = str(label) + (f" ({rest[0]}={style!s})" if style is not None else "")
                    (line,) = ax.plot(
                        x,
                        mean,
                        marker="o",
                        linestyle=["-", "--", ":", "-."][i % 4],
                        color=f"C{j}",
                        label=name,
                    )
                    ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.15)
            ax.set_xlabel(param)
            ax.set_title(metric)
            ax.grid(alpha=0.3)
        axes[0][-1].legend(fontsize=7)
        out.append(_save(fig, folder, f"metrics_vs_{param.replace('.', '_')}"))
    return out


def cost(folder: Path, frame: pd.DataFrame, swept: Sequence[str]) -> Path | None:
    needed = {"data_transmissions", "control_transmissions", "delivered"}
    if not needed <= set(frame.columns):
        return None
    lines, others = _series_key(frame, swept)
    numeric = [c for c in others if pd.api.types.is_numeric_dtype(frame[c])]
    by = numeric[0] if numeric else None
    part = _first_point(frame, [c for c in others if c != by])
    keys = [k for k in (lines, by) if k]
    table = part.assign(
        data=part["data_transmissions"] / part["delivered"],
        control=part["control_transmissions"] / part["delivered"],
    )
    table = (
        table.groupby(keys, sort=False)[["data", "control"]].mean()
        if keys
        else table[["data", "control"]].mean().to_frame().T
    )
    labels = [" / ".join(map(str, k if isinstance(k, tuple) else (k,))) for k in table.index]
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(labels)), 4))
    x = np.arange(len(labels))
    ax.bar(x, table["data"], label="data")
    ax.bar(x, table["control"], bottom=table["data"], label="control (acks, confirms, registrations)")
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("transmissions per delivery")
    ax.set_title("message cost per delivery" + (f" ({' / '.join(keys)})" if keys else ""))
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, folder, "cost")


def reliability(folder: Path, frame: pd.DataFrame, swept: Sequence[str]) -> Path | None:
    if not {"delivery_ratio", "duplicates", "delivered"} <= set(frame.columns) or not swept:
        return None
    table = frame.assign(dup_rate=frame["duplicates"] / frame["delivered"].where(frame["delivered"] > 0))
    table = table.groupby(list(swept), sort=False)[["delivery_ratio", "dup_rate"]].mean()
    labels = [" / ".join(map(str, k if isinstance(k, tuple) else (k,))) for k in table.index]
    fig, axes = plt.subplots(2, 1, figsize=(max(7, 0.45 * len(labels)), 6), sharex=True)
    x = np.arange(len(labels))
    axes[0].bar(x, table["delivery_ratio"], color="C2")
    axes[0].set_ylabel("delivery ratio")
    axes[0].set_ylim(min(0.9, float(np.nanmin(table["delivery_ratio"])) - 0.02) if len(table) else 0, 1.005)
    axes[1].bar(x, table["dup_rate"], color="C3")
    axes[1].set_ylabel("duplicates per delivery")
    axes[1].set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
    axes[0].set_title(f"delivery and duplicates ({' / '.join(swept)})")
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, folder, "reliability")


def backlog(folder: Path, frame: pd.DataFrame, series: pd.DataFrame) -> Path | None:
    curves = series[series["series"] == "backlog"]
    if curves.empty or "backlog_max" not in frame.columns or frame["backlog_max"].isna().all():
        return None
    run = frame.iloc[int(np.nanargmax(frame["backlog_max"].to_numpy(dtype=np.float64)))]
    curve = curves[curves["config_hash"] == run["config_hash"]].sort_values("x")
    if curve.empty:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.step(curve["x"], curve["y"], where="post")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("messages ready in broker queues")
    described = ", ".join(f"{c}={run[c]}" for c in frame.columns[: list(frame.columns).index("point")])
    ax.set_title(
        f"broker backlog, run with the largest backlog ({described}, replication {run['replication']})",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    return _save(fig, folder, "backlog")


def draw_all(folder: Path, frame: pd.DataFrame, swept: Sequence[str], series: pd.DataFrame) -> list[Path]:
    """Draw every figure that the data supports; returns their paths."""
    out: list[Path | None] = [latency_cdf(folder, frame, swept, series)]
    out += trends(folder, frame, swept)
    out += [cost(folder, frame, swept), reliability(folder, frame, swept), backlog(folder, frame, series)]
    return [p for p in out if p is not None]
