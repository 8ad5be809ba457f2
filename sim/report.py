"""Comparison reports from a results folder: statistics with confidence intervals, paired differences
against a reference pattern, figures, ``report.md``, a self-contained ``report.html`` and a terminal table.

Runs only on the stored files (``runs.parquet``, ``series.parquet``, ``meta.json``): no simulation.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sim.errors import SimError
from sim.store import BOOKKEEPING, ResultStore, atomic_write

__all__ = ["HEADLINE", "Report", "aggregate", "load_runs", "paired_differences", "write_report"]

HEADLINE = ("delivery_ratio", "latency_p50", "latency_p99", "msgs_per_delivery", "duplicates", "lost")
_UNITS = {"latency_p50": "ms", "latency_p99": "ms", "latency_mean": "ms", "rtt_mean": "ms"}


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote, and the headline table it printed."""

    markdown: Path
    html: Path
    figures: list[Path]
    headline: str


def load_runs(folder: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The successful runs and the meta data of a results folder; SimError if there are none."""
    folder = Path(folder)
    store = ResultStore(folder)
    if not store.parquet.exists():
        raise SimError(
            "results folder", str(folder), "a folder written by 'sim run' (runs.parquet is missing)"
        )
    frame = pd.read_parquet(store.parquet)
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    ok = frame[frame["status"] == "ok"].reset_index(drop=True)
    if ok.empty:
        raise SimError("results folder", str(folder), "at least one successful run (every run failed)")
    return ok, meta


def _swept(frame: pd.DataFrame, meta: dict[str, Any]) -> list[str]:
    swept = [c for c in meta.get("swept", []) if c in frame.columns]
    return swept or [c for c in frame.columns[: list(frame.columns).index("point")]]


def _metrics(frame: pd.DataFrame, swept: Sequence[str]) -> list[str]:
    return [c for c in frame.columns if c not in swept and c not in BOOKKEEPING and frame[c].notna().any()]


def _ci(values: pd.Series) -> tuple[float, float, float, int]:
    x = values.dropna().to_numpy(dtype=np.float64)
    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan, math.nan, 1
    std = float(x.std(ddof=1))
    return mean, std, float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)), n


def _stat_rows(
    groups: Any, names: Sequence[str], metrics: Sequence[str], value: str, fixed: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One row per group and metric: the group's key, n, mean (named ``value``), std and 95 % CI."""
    rows = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        for metric in metrics:
            mean, std, half, n = _ci(part[metric])
            rows.append(
                {
                    **(fixed or {}),
                    **dict(zip(names, key, strict=True)),
                    "metric": metric,
                    "n": n,
                    value: mean,
                    "std": std,
                    "ci95": half,
                }
            )
    return rows


def aggregate(frame: pd.DataFrame, swept: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Per parameter point and metric: n, mean, standard deviation and 95 % CI half-width (Student t)."""
    groups = frame.groupby(list(swept), sort=False, dropna=False) if swept else [((), frame)]
    return pd.DataFrame(_stat_rows(groups, swept, metrics, "mean"))


def paired_differences(
    frame: pd.DataFrame, swept: Sequence[str], metrics: Sequence[str], reference: str
) -> pd.DataFrame:
    """Per pattern (other than ``reference``), other parameters and metric: the mean over replications of
    (pattern − reference) on the same seed, with its 95 % CI."""
    if "pattern" not in swept:
        return pd.DataFrame()
    others = [c for c in swept if c != "pattern"]
    keys = [*others, "seed"]
    ref = frame[frame["pattern"] == reference].set_index(keys)
    rows = []
    for pattern in [p for p in frame["pattern"].unique() if p != reference]:
        mine = frame[frame["pattern"] == pattern].set_index(keys)
        common = mine.index.intersection(ref.index)
        if common.empty:
            continue
        diffs = mine.loc[common, list(metrics)] - ref.loc[common, list(metrics)]
        groups = diffs.groupby(level=others, sort=False, dropna=False) if others else [((), diffs)]
        rows += _stat_rows(groups, others, metrics, "difference", {"pattern": pattern})
    return pd.DataFrame(rows).drop(columns="std", errors="ignore")


def _fmt(metric: str, mean: float, half: float) -> str:
    if mean != mean:
        return "–"
    scale = 1000.0 if _UNITS.get(metric) == "ms" else 1.0
    mean, half = mean * scale, half * scale
    digits = 3 if abs(mean) < 10 else 1
    text = f"{mean:.{digits}f}"
    if half == half:
        text += f" ± {half:.{digits}f}"
    return text


def _label(metric: str) -> str:
    return f"{metric} ({_UNITS[metric]})" if metric in _UNITS else metric


def headline_table(agg: pd.DataFrame, swept: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per parameter point, one column per headline metric: ``mean ± CI`` as text."""
    present = [m for m in metrics if m in set(agg["metric"])]
    wide: dict[tuple[Any, ...], dict[str, str]] = {}
    for row in agg[agg["metric"].isin(present)].to_dict("records"):
        key = tuple(row[c] for c in swept)
        wide.setdefault(key, dict(zip(swept, key, strict=True)))[_label(row["metric"])] = _fmt(
            row["metric"], row["mean"], row["ci95"]
        )
    return pd.DataFrame(list(wide.values()))


def _text_table(frame: pd.DataFrame) -> str:
    cells = [list(map(str, frame.columns))] + [[str(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _md_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _diff_table(diffs: pd.DataFrame, reference: str, metrics: Sequence[str]) -> pd.DataFrame:
    if diffs.empty:
        return diffs
    keep = diffs[diffs["metric"].isin(metrics)]
    others = [c for c in keep.columns if c not in ("pattern", "metric", "n", "difference", "ci95")]
    wide: dict[tuple[Any, ...], dict[str, str]] = {}
    for row in keep.to_dict("records"):
        key = (row["pattern"], *(row[c] for c in others))
        entry = wide.setdefault(
            key, {"pattern": f"{row['pattern']} − {reference}", **{c: row[c] for c in others}}
        )
        entry[_label(row["metric"])] = _fmt(row["metric"], row["difference"], row["ci95"])
    return pd.DataFrame(list(wide.values()))


def write_report(
    folder: Path,
    *,
    reference: str | None = None,
    metrics: Sequence[str] = HEADLINE,
    quiet: bool = False,
    figures: bool = True,
) -> Report:
    """Write ``report.md``, ``report.html`` and ``figures/*.png`` for a results folder; print the headline."""
    folder = Path(folder)
    frame, meta = load_runs(folder)
    swept = _swept(frame, meta)
    all_metrics = _metrics(frame, swept)
    unknown = [m for m in metrics if m not in frame.columns]
    if unknown:
        raise SimError(
            "--metric", unknown[0], "a metric in the results: " + ", ".join(all_metrics[:12]) + " ..."
        )
    patterns = list(frame["pattern"].unique()) if "pattern" in frame.columns else []
    if reference is None:
        reference = "point_to_point" if "point_to_point" in patterns else (patterns[0] if patterns else "")
    elif reference not in patterns:
        raise SimError("--reference", reference, "a pattern in the results: " + ", ".join(map(str, patterns)))
    agg = aggregate(frame, swept, all_metrics)
    headline = headline_table(agg, swept, metrics)
    diffs = paired_differences(frame, swept, list(metrics), reference) if reference else pd.DataFrame()
    diff_table = _diff_table(diffs, reference, metrics)
    paths: list[Path] = []
    if figures:
        from sim.figures import draw_all

        paths = draw_all(folder, frame, swept, ResultStore(folder).series())
    atomic_write(folder / "statistics.csv", agg.to_csv(index=False))
    if not diffs.empty:
        atomic_write(folder / "differences.csv", diffs.to_csv(index=False))
    md = _markdown(meta, frame, swept, headline, diff_table, reference, paths, folder)
    atomic_write(folder / "report.md", md)
    atomic_write(folder / "report.html", _html(meta, frame, swept, headline, diff_table, reference, paths))
    text = _text_table(headline)
    if not quiet:
        print(f"{meta.get('experiment', folder.name)}: mean ± 95 % CI over replications\n{text}")  # noqa: T201
        print(f"report: {folder / 'report.md'} and {folder / 'report.html'}")  # noqa: T201
    return Report(folder / "report.md", folder / "report.html", paths, text)


def _setup_lines(meta: dict[str, Any], frame: pd.DataFrame) -> list[str]:
    versions = meta.get("versions", {})
    reps = int(frame.groupby("point")["replication"].nunique().max()) if "point" in frame else 1
    return [
        f"- runs: {len(frame)} successful ({meta.get('failed', 0)} failed), {reps} replications per point"
        + (", quick mode" if meta.get("quick") else ""),
        f"- engine: {meta.get('engine', '?')}; started {meta.get('started', '?')}, "
        f"finished {meta.get('finished', '?')}",
        f"- sim {versions.get('sim', '?')}, git {meta.get('git_sha', '')[:10] or 'unknown'}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if k not in ("sim",)),
    ]


def _markdown(
    meta: dict[str, Any],
    frame: pd.DataFrame,
    swept: Sequence[str],
    headline: pd.DataFrame,
    diff_table: pd.DataFrame,
    reference: str,
    figures: list[Path],
    folder: Path,
) -> str:
    out = [f"# {meta.get('experiment', folder.name)}", ""]
    if meta.get("description"):
        out += [str(meta["description"]), ""]
    out += ["## Setup", "", *_setup_lines(meta, frame), f"- swept: {', '.join(swept) or 'nothing'}", ""]
    out += [
        "## Headline",
        "",
        "Mean ± 95 % confidence interval (Student t) over replications.",
        "",
        _md_table(headline),
        "",
    ]
    if not diff_table.empty:
        out += [
            f"## Paired differences against {reference}",
            "",
            "Each replication runs every pattern on the same seed (same workload, same faults); the "
            "difference is taken per seed, then averaged, with its 95 % CI. An interval that excludes 0 is a "
            "real difference at that level.",
            "",
            _md_table(diff_table),
            "",
        ]
    if figures:
        out += ["## Figures", ""]
        out += [f"![{p.stem}](figures/{p.name})" for p in figures]
        out.append("")
    out += [
        "All metrics with n, mean, standard deviation and CI: `statistics.csv`; one row per run: "
        "`runs.parquet`.",
        "",
    ]
    return "\n".join(out)


def _html(
    meta: dict[str, Any],
    frame: pd.DataFrame,
    swept: Sequence[str],
    headline: pd.DataFrame,
    diff_table: pd.DataFrame,
    reference: str,
    figures: list[Path],
) -> str:
    title = html.escape(str(meta.get("experiment", "report")))
    parts = [f"<h1>{title}</h1>"]
    if meta.get("description"):
        parts.append(f"<p>{html.escape(str(meta['description']))}</p>")
    parts.append(
        "<h2>Setup</h2><ul>"
        + "".join(f"<li>{html.escape(line[2:])}</li>" for line in _setup_lines(meta, frame))
        + "</ul>"
    )
    parts.append("<h2>Headline</h2><p>Mean ± 95 % confidence interval (Student t) over replications.</p>")
    parts.append(headline.to_html(index=False, classes="headline", border=0))
    if not diff_table.empty:
        parts.append(f"<h2>Paired differences against {html.escape(reference)}</h2>")
        parts.append(diff_table.to_html(index=False, classes="differences", border=0))
    if figures:
        parts.append("<h2>Figures</h2>")
        for p in figures:
            data = base64.b64encode(p.read_bytes()).decode()
            parts.append(
                f'<figure><img alt="{p.stem}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(p.stem.replace('_', ' '))}</figcaption></figure>"
            )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
        "th,td{padding:0.3em 0.7em;border-bottom:1px solid #ddd;text-align:right}"
        "th{background:#f4f4f4}img{max-width:100%}figure{margin:1.5em 0}"
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
