"""Comparison reports from a results folder: statistics with confidence intervals, paired differences
against a reference pattern, figures, ``report.md``, a self-contained ``report.html`` and a terminal table.

Runs only on the stored files (``runs.parquet``, ``series.parquet``, ``meta.json``): no simulation. Points
whose runs were unstable or left work unfinished are flagged in every table and figure; points an
experiment declared not applicable are shown as ``n/a``; the report opens with what the data supports.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.findings import (
    FLAG_NOTE,
    ci_half,
    flag_failure,
    not_applicable_text,
    point_flags,
    point_key,
    stand_ins,
    supports,
)
from sim.core.errors import SimError
from sim.sweep.store import BOOKKEEPING, ResultStore, atomic_write, read_parquet, run_id

__all__ = [
    "DEFAULT_HEADLINE",
    "HEADLINE",
    "Report",
    "aggregate",
    "flag_failure",
    "headline_metrics",
    "load_runs",
    "paired_differences",
    "point_flags",
    "run_ids",
    "write_report",
]

DEFAULT_HEADLINE = (
    "op_success_ratio",
    "op_latency_p50",
    "op_latency_p99",
    "op_msgs_per_op",
    "op_duplicates_per_op",
    "op_unfinished",
)
"""The default headline: operations compared on success, latency, cost, duplicates and unfinished work."""
# the obligation-level figure each default stands in for, used when the op_ columns are absent
FALLBACK = {
    "op_success_ratio": "delivery_ratio",
    "op_latency_p50": "latency_p50",
    "op_latency_p99": "latency_p99",
    "op_msgs_per_op": "msgs_per_delivery",
    "op_duplicates_per_op": "duplicates",
    "op_unfinished": "in_flight",
}
HEADLINE = ("delivery_ratio", "latency_p50", "latency_p99", "msgs_per_delivery", "duplicates", "lost")
"""The obligation-level headline of earlier reports (regression baselines compare these)."""
NA = "n/a"


def unit(metric: str) -> str:
    """The unit a metric is shown in: ``ms`` for latencies and waits (stored in seconds), else ``""``."""
    if "latency" in metric or metric.startswith("rtt_") or metric == "queue_wait_mean":
        return "ms"
    return "s" if metric == "recovery_time" else ""


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
    frame = read_parquet(store.parquet)
    meta_path = folder / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    except (OSError, ValueError) as exc:
        raise SimError("results file", str(meta_path), f"a readable JSON file ({exc})") from None
    if "run_id" not in frame.columns:  # written before runs had ids: theirs, by the same formula
        ids = zip(frame["point"], frame["replication"], frame["config_hash"], strict=True)
        frame["run_id"] = [run_id(p, r, str(h)) for p, r, h in ids]
    ok = frame[frame["status"] == "ok"].reset_index(drop=True)
    if ok.empty:
        raise SimError("results folder", str(folder), "at least one successful run (every run failed)")
    return ok, meta


def headline_metrics(frame: pd.DataFrame, requested: Sequence[str] | None) -> list[str]:
    """The headline columns: ``requested`` if given, else :data:`DEFAULT_HEADLINE`, each default falling
    back to its obligation-level figure when the results have no ``op_`` column (older results)."""
    if requested:
        return list(requested)
    out = []
    for name in DEFAULT_HEADLINE:
        present = name in frame.columns and frame[name].notna().any()
        out.append(name if present else FALLBACK[name])
    return out


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
    return mean, float(x.std(ddof=1)), ci_half(values), n


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
    frame: pd.DataFrame,
    swept: Sequence[str],
    metrics: Sequence[str],
    reference: str,
    not_applicable: Sequence[Mapping[str, Any]] = (),
) -> pd.DataFrame:
    """Per pattern (other than ``reference``), other parameters and metric: the mean over replications of
    (pattern − reference) on the same seed, with its 95 % CI.

    ``not_applicable`` lists the points that were not run (``{"point": ..., "control": ...}``, as in
    ``meta.json``). Where the *reference* has no such point, the difference is taken against its control
    runs (the factor's first value, which is what the variant amounts to there) and the row's ``against``
    names them; where the *pattern* has none, there is no row.
    """
    if "pattern" not in swept:
        return pd.DataFrame()
    others = [c for c in swept if c != "pattern"]
    keys = [*others, "seed"]
    ref_rows = frame[frame["pattern"] == reference].assign(against="")
    mine = [e for e in not_applicable if e["point"].get("pattern") == reference]
    ref = stand_ins(ref_rows, swept, mine).set_index(keys)
    rows = []
    for pattern in [p for p in frame["pattern"].unique() if p != reference]:
        mine = frame[frame["pattern"] == pattern].set_index(keys)
        common = mine.index.intersection(ref.index)
        if common.empty:
            continue
        diffs = mine.loc[common, list(metrics)] - ref.loc[common, list(metrics)]
        diffs["against"] = ref.loc[common, "against"]
        by = [*others, "against"]
        for key, part in diffs.groupby(by, sort=False, dropna=False):
            values = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
            rows += _stat_rows([((), part)], [], metrics, "difference", {"pattern": pattern, **values})
    return pd.DataFrame(rows).drop(columns="std", errors="ignore")


def _fmt(metric: str, mean: float, half: float) -> str:
    if mean != mean:
        return "–"
    scale = 1000.0 if unit(metric) == "ms" else 1.0
    mean, half = mean * scale, half * scale
    digits = 3 if abs(mean) < 10 else 1
    text = f"{mean:.{digits}f}"
    if half == half:
        text += f" ± {half:.{digits}f}"
    return text


def _label(metric: str, units: Mapping[str, str] | None = None) -> str:
    """A metric's column title, with the unit it is shown in; a plug-in's measure with its declared unit
    (``units``, from meta.json) unless the name already says it."""
    shown = unit(metric) or (units or {}).get(metric, "")
    return f"{metric} ({shown})" if shown and shown != metric else metric


def _not_applicable(meta: Mapping[str, Any], swept: Sequence[str]) -> list[dict[str, Any]]:
    """The points the experiment declared not applicable, with every swept key (older meta: none)."""
    entries = meta.get("not_applicable") or []
    return [e for e in entries if all(k in e.get("point", {}) for k in swept)]


def headline_table(
    agg: pd.DataFrame,
    swept: Sequence[str],
    metrics: Sequence[str],
    flags: Mapping[tuple[Any, ...], tuple[str, ...]] | None = None,
    not_applicable: Sequence[Mapping[str, Any]] = (),
    units: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per parameter point, one column per headline metric: ``mean ± CI`` as text; a ``flags``
    column when a point is flagged, and ``n/a`` rows for the points that were not applicable; ``units``:
    the declared units of plug-in measures, for the column titles."""
    wanted = set(metrics)
    wide: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in agg.to_dict("records"):  # every point gets a row, even if a metric has no value there
        key = point_key([row[c] for c in swept])
        cells = wide.setdefault(key, dict(zip(swept, key, strict=True)))
        if row["metric"] in wanted:
            cells[_label(row["metric"], units)] = _fmt(row["metric"], row["mean"], row["ci95"])
    order: dict[tuple[Any, ...], float] = {key: i for i, key in enumerate(wide)}
    for entry in not_applicable:  # placed after the point they stand beside in the grid's order
        key = point_key([entry["point"][c] for c in swept])
        control = point_key([entry["control"].get(c, entry["point"][c]) for c in swept])
        wide[key] = {**dict(zip(swept, key, strict=True)), **{_label(m, units): NA for m in metrics}}
        order[key] = order.get(control, len(order)) + 0.5
    labels = [_label(m, units) for m in metrics]
    table: list[dict[str, Any]] = [
        {**{c: row[c] for c in swept}, **{m: row.get(m, "–") for m in labels}}
        for row in (wide[k] for k in sorted(wide, key=lambda k: order[k]))
    ]
    if flags:
        na_keys = {point_key([e["point"][c] for c in swept]) for e in not_applicable}
        for cells in table:
            key = point_key([cells[c] for c in swept])
            cells["flags"] = NA if key in na_keys else ", ".join(flags.get(key, ()))
    frame = pd.DataFrame(table)
    if flags and "flags" in frame:  # right after the point's parameters, where the eye starts
        frame = frame[[*swept, "flags", *[c for c in frame.columns if c not in swept and c != "flags"]]]
    return frame


def run_ids(frame: pd.DataFrame, swept: Sequence[str]) -> pd.DataFrame:
    """One row per parameter point: its parameters and the ids of its runs in replication order (the ids
    ``sim replay`` takes), as one text column ``run ids``."""
    ordered = frame.sort_values(["point", "replication"], kind="stable")
    groups = ordered.groupby(list(swept), sort=False, dropna=False) if swept else [((), ordered)]
    rows = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(swept, key, strict=True)), "run ids": " ".join(map(str, part["run_id"]))})
    return pd.DataFrame(rows)


_RUNS_NOTE = (
    "Each point's runs, in replication order. `sim replay <this folder> <run id>` reruns one exactly, and "
    "with `--trace --out DIR` draws its messages (docs/replay.md)."
)


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


def _diff_table(
    diffs: pd.DataFrame,
    reference: str,
    metrics: Sequence[str],
    flags: Mapping[tuple[Any, ...], tuple[str, ...]],
    swept: Sequence[str],
    not_applicable: Sequence[Mapping[str, Any]],
) -> pd.DataFrame:
    if diffs.empty:
        return diffs
    keep = diffs[diffs["metric"].isin(metrics)]
    others = [c for c in swept if c != "pattern"]
    wide: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in keep.to_dict("records"):
        key = point_key([row["pattern"], *(row[c] for c in others)])
        name = f"{row['pattern']} − {reference}"
        if row.get("against"):
            name += f" (its {row['against']} runs)"
        entry = wide.setdefault(key, {"pattern": name, **dict(zip(others, key[1:], strict=True))})
        entry[_label(row["metric"])] = _fmt(row["metric"], row["difference"], row["ci95"])
        mine = flags.get(point_key([row[c] if c != "pattern" else row["pattern"] for c in swept]), ())
        theirs = flags.get(point_key([reference if c == "pattern" else row[c] for c in swept]), ())
        marks = [*mine, *(f"{reference} {f}" for f in theirs)]
        if flags:
            entry["flags"] = ", ".join(marks)
    order: dict[tuple[Any, ...], float] = {key: i for i, key in enumerate(wide)}
    labels = [_label(m) for m in metrics if m in set(keep["metric"])]
    for na in not_applicable:
        point, control_of = na["point"], na["control"]
        if point.get("pattern") in (None, reference):
            continue
        key = point_key([point["pattern"], *(point[c] for c in others)])
        control = point_key([point["pattern"], *(control_of.get(c, point[c]) for c in others)])
        wide[key] = {
            "pattern": f"{point['pattern']} − {reference}",
            **dict(zip(others, key[1:], strict=True)),
            **({"flags": NA} if flags else {}),
            **dict.fromkeys(labels, NA),
        }
        order[key] = order.get(control, len(order)) + 0.5
    table = pd.DataFrame([wide[k] for k in sorted(wide, key=lambda k: order[k])])
    if flags and "flags" in table:
        table = table[["pattern", *others, "flags", *labels]]
    return table


def write_report(
    folder: Path,
    *,
    reference: str | None = None,
    metrics: Sequence[str] | None = None,
    quiet: bool = False,
    figures: bool = True,
) -> Report:
    """Write ``report.md``, ``report.html`` and ``figures/*.png`` for a results folder; print the headline.

    ``metrics`` replaces the headline columns; by default the experiment's ``headline`` (stored in
    ``meta.json``), else :data:`DEFAULT_HEADLINE`.
    """
    folder = Path(folder)
    frame, meta = load_runs(folder)
    swept = _swept(frame, meta)
    all_metrics = _metrics(frame, swept)
    metrics = headline_metrics(frame, metrics or meta.get("headline"))
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
    na = _not_applicable(meta, swept)
    flags = point_flags(frame, swept)
    agg = aggregate(frame, swept, all_metrics)
    headline = headline_table(agg, swept, metrics, flags, na, meta.get("units"))
    diffs = paired_differences(frame, swept, list(metrics), reference, na) if reference else pd.DataFrame()
    diff_table = _diff_table(diffs, reference, metrics, flags, swept, na)
    paths: list[Path] = []
    if figures:
        from sim.analysis.figures import draw_all

        paths = draw_all(
            folder,
            frame,
            swept,
            ResultStore(folder).series(),
            flags=flags,
            metrics=metrics,
            windows=meta.get("fault_windows") or {},
        )
    atomic_write(folder / "statistics.csv", agg.to_csv(index=False))
    if not diffs.empty:
        atomic_write(folder / "differences.csv", diffs.to_csv(index=False))
    opening = supports(frame, swept, metrics, flags, na, meta)
    parts = Parts(meta, frame, swept, headline, diff_table, reference, paths, opening, flags, na)
    atomic_write(folder / "report.md", _markdown(parts, folder))
    atomic_write(folder / "report.html", _html(parts))
    text = _text_table(headline)
    if not quiet:
        print(f"{meta.get('experiment', folder.name)}: mean ± 95 % CI over replications\n{text}")  # noqa: T201
        if flags:
            print(f"flagged points: {FLAG_NOTE.replace('**', '')}")  # noqa: T201
        print(f"report: {folder / 'report.md'} and {folder / 'report.html'}")  # noqa: T201
    return Report(folder / "report.md", folder / "report.html", paths, text)


@dataclass(frozen=True)
class Parts:
    """What the Markdown and HTML reports are made of."""

    meta: dict[str, Any]
    frame: pd.DataFrame
    swept: Sequence[str]
    headline: pd.DataFrame
    diff_table: pd.DataFrame
    reference: str
    figures: list[Path]
    opening: str
    flags: Mapping[tuple[Any, ...], tuple[str, ...]]
    not_applicable: Sequence[Mapping[str, Any]]

    def notes(self) -> list[str]:
        """The footnotes under the tables: what a flag and what n/a mean."""
        out = []
        if self.flags:
            out.append(f"flags: {FLAG_NOTE}")
        if self.not_applicable:
            out.append(f"{NA}: {not_applicable_text(self.not_applicable)}")
        return out


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


def _markdown(p: Parts, folder: Path) -> str:
    out = [f"# {p.meta.get('experiment', folder.name)}", ""]
    if p.meta.get("description"):
        out += [str(p.meta["description"]), ""]
    if p.opening:
        out += [p.opening, ""]
    out += ["## Setup", "", *_setup_lines(p.meta, p.frame), f"- swept: {', '.join(p.swept) or 'nothing'}", ""]
    out += [
        "## Headline",
        "",
        "Mean ± 95 % confidence interval (Student t) over replications.",
        "",
        _md_table(p.headline),
        "",
        *[f"{note}\n" for note in p.notes()],
    ]
    if not p.diff_table.empty:
        out += [
            f"## Paired differences against {p.reference}",
            "",
            "Each replication runs every pattern on the same seed (same workload, same faults); the "
            "difference is taken per seed, then averaged, with its 95 % CI. An interval that excludes 0 is a "
            "real difference at that level.",
            "",
            _md_table(p.diff_table),
            "",
            *[f"{note}\n" for note in p.notes()],
        ]
    if p.figures:
        out += ["## Figures", ""]
        if p.flags:
            out += [
                "Hollow markers, hatched bars and dashed lines are flagged points (unstable or unfinished).",
                "",
            ]
        out += [f"![{f.stem}](figures/{f.name})" for f in p.figures]
        out.append("")
    runs = run_ids(p.frame, p.swept)
    runs["run ids"] = [" ".join(f"`{i}`" for i in ids.split()) for ids in runs["run ids"]]
    out += ["## Runs", "", _RUNS_NOTE, "", _md_table(runs), ""]
    out += [
        "All metrics with n, mean, standard deviation and CI: `statistics.csv`; one row per run: "
        "`runs.parquet`.",
        "",
    ]
    return "\n".join(out)


def _md_inline(text: str) -> str:
    """Markdown's ``**bold**`` as HTML, the rest escaped."""
    parts = html.escape(text).split("**")
    return "".join(f"<strong>{t}</strong>" if i % 2 else t for i, t in enumerate(parts))


def _md_blocks(text: str) -> str:
    """Paragraphs and ``- `` bullet lists of Markdown as HTML (inline: ``**bold**`` only)."""
    out: list[str] = []
    items: list[str] = []
    for block in text.split("\n"):
        if block.startswith("- "):
            items.append(f"<li>{_md_inline(block[2:])}</li>")
            continue
        if items:
            out.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if block.strip():
            out.append(f"<p>{_md_inline(block)}</p>")
    if items:
        out.append("<ul>" + "".join(items) + "</ul>")
    return "".join(out)


def _html(p: Parts) -> str:
    title = html.escape(str(p.meta.get("experiment", "report")))
    parts = [f"<h1>{title}</h1>"]
    if p.meta.get("description"):
        parts.append(f"<p>{html.escape(str(p.meta['description']))}</p>")
    if p.opening:
        parts.append(f'<div class="supports">{_md_blocks(p.opening)}</div>')
    parts.append(
        "<h2>Setup</h2><ul>"
        + "".join(f"<li>{html.escape(line[2:])}</li>" for line in _setup_lines(p.meta, p.frame))
        + "</ul>"
    )
    notes = "".join(f'<p class="note">{_md_inline(n)}</p>' for n in p.notes())
    parts.append("<h2>Headline</h2><p>Mean ± 95 % confidence interval (Student t) over replications.</p>")
    parts.append(p.headline.to_html(index=False, classes="headline", border=0) + notes)
    if not p.diff_table.empty:
        parts.append(f"<h2>Paired differences against {html.escape(p.reference)}</h2>")
        parts.append(p.diff_table.to_html(index=False, classes="differences", border=0) + notes)
    if p.figures:
        parts.append("<h2>Figures</h2>")
        for f in p.figures:
            data = base64.b64encode(f.read_bytes()).decode()
            parts.append(
                f'<figure><img alt="{f.stem}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(f.stem.replace('_', ' '))}</figcaption></figure>"
            )
    runs = run_ids(p.frame, p.swept)
    parts.append(
        f"<details><summary>Runs ({len(p.frame)}): the ids to replay</summary>"
        f'<p class="note">{html.escape(_RUNS_NOTE).replace("`", "")}</p>'
        + runs.to_html(index=False, classes="runs", border=0)
        + "</details>"
    )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
        "th,td{padding:0.3em 0.7em;border-bottom:1px solid #ddd;text-align:right}"
        "th{background:#f4f4f4}img{max-width:100%}figure{margin:1.5em 0}"
        ".supports{background:#f6f8fa;border-left:4px solid #888;padding:0.6em 1em}"
        ".note{font-size:0.85em;color:#444}"
        "table.runs td:last-child{font-family:monospace;text-align:left}"
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
