"""What a results table supports and what it cannot: points flagged unstable or unfinished, points an
experiment declared not applicable, and the opening paragraph of a report that says, from the data, which
line (pattern) is best at how many conditions and with which caveats.

Used by :mod:`sim.analysis.report` (tables, paragraph) and :mod:`sim.analysis.figures` (hollow and hatched
points); plain
pandas over ``runs.parquet`` rows, no simulation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "FLAG_NOTE",
    "categorical",
    "ci_half",
    "describe_point",
    "flag_failure",
    "higher_is_better",
    "line_factor",
    "not_applicable_text",
    "point_flags",
    "point_key",
    "ranking",
    "stand_ins",
    "supports",
    "value_label",
]

FLAG_NOTE = (
    "**unstable**: in at least one replication the system was not stable over the measured window "
    "(a queue or inbox kept growing, or a server pool was saturated); **unfinished**: work was still "
    "open when the drain ended. "
    "A flagged point's figures depend on how long the run was and cannot support a conclusion."
)
_HIGHER_IS_BETTER = ("ratio", "throughput", "completed", "delivered", "answered")


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is the better one (success, throughput)."""
    return any(word in metric for word in _HIGHER_IS_BETTER) and "share" not in metric


def point_key(values: Sequence[Any]) -> tuple[Any, ...]:
    """A point's values as plain Python values, so that keys from Parquet and from JSON compare equal."""
    return tuple(v.item() if isinstance(v, np.generic) else v for v in values)


def point_flags(frame: pd.DataFrame, swept: Sequence[str]) -> dict[tuple[Any, ...], tuple[str, ...]]:
    """Per parameter point (its swept values), the flags of its runs: ``unstable`` if a replication was not
    stable (``stable == 0``), ``unfinished`` if one left work open (``op_unfinished``, or ``in_flight`` in
    results without operations, > 0). Points without a flag are left out."""
    open_col = "op_unfinished" if "op_unfinished" in frame and frame["op_unfinished"].notna().any() else None
    open_col = open_col or ("in_flight" if "in_flight" in frame else None)
    out: dict[tuple[Any, ...], tuple[str, ...]] = {}
    groups = frame.groupby(list(swept), sort=False, dropna=False) if swept else [((), frame)]
    for key, part in groups:
        flags = []
        if "stable" in part and (part["stable"] == 0).any():
            flags.append("unstable")
        if open_col is not None and (part[open_col] > 0).any():
            flags.append("unfinished")
        if flags:
            out[point_key(key if isinstance(key, tuple) else (key,))] = tuple(flags)
    return out


def describe_point(swept: Sequence[str], key: Sequence[Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in zip(swept, key, strict=True)) or "the only point"


def flag_failure(frame: pd.DataFrame, swept: Sequence[str], fail_on: Sequence[str]) -> str:
    """The one-line message of ``Experiment(fail_on=...)`` when some point carries one of those flags;
    ``""`` when none does."""
    ok = frame[frame["status"] == "ok"] if "status" in frame else frame
    wanted = {fail_on} if isinstance(fail_on, str) else set(fail_on)
    hits = [(k, f) for k, f in point_flags(ok, swept).items() if wanted & set(f)]
    if not hits:
        return ""
    shown = "; ".join(f"{describe_point(swept, k)} ({', '.join(f)})" for k, f in hits[:3])
    more = f"; and {len(hits) - 3} more" if len(hits) > 3 else ""
    return (
        f"{len(hits)} point(s) flagged {' or '.join(sorted(wanted))} (the experiment's fail_on): "
        f"{shown}{more}"
    )


def stand_ins(
    frame: pd.DataFrame, swept: Sequence[str], not_applicable: Sequence[Mapping[str, Any]]
) -> pd.DataFrame:
    """``frame`` plus, for each point that was not run, its control's runs relabelled as that point, with
    ``against`` naming the control (``"broker_crash = off"``): what the variant amounts to there."""
    if "against" not in frame:
        frame = frame.assign(against="")
    parts = [frame]
    for entry in not_applicable:
        point, control = entry["point"], entry["control"]
        at = {**point, **control}
        part = frame[frame["against"] == ""]
        for col in swept:
            part = part[part[col] == at[col]]
        label = ", ".join(f"{k} = {v}" for k, v in control.items())
        parts.append(part.assign(**{k: point[k] for k in control}, against=label))
    return pd.concat(parts, ignore_index=True)


def line_factor(frame: pd.DataFrame, swept: Sequence[str]) -> str | None:
    """What a report compares (the lines of its figures): ``pattern`` if swept, else the first swept key
    that is not a number; None if every swept key is a number."""
    if "pattern" in swept:
        return "pattern"
    return next((c for c in swept if categorical(frame, c)), None)


def _winners(
    frame: pd.DataFrame,
    line: str,
    others: Sequence[str],
    metric: str,
    skip: set[tuple[Any, ...]],
    swept: Sequence[str],
) -> tuple[dict[Any, list[int]], int, int]:
    """For one metric, over the conditions (values of ``others``): per line, at how many conditions it is
    the best of the lines neither flagged nor n/a there, and at how many of those it beats the runner-up by
    a paired 95 % interval that excludes 0; then how many conditions were compared and how many tied."""
    wins: dict[Any, list[int]] = {}
    compared = ties = 0
    sign = -1.0 if higher_is_better(metric) else 1.0
    groups = frame.groupby(list(others), sort=False, dropna=False) if others else [((), frame)]
    for cond, part in groups:
        at = dict(zip(others, cond if isinstance(cond, tuple) else (cond,), strict=True))
        means = {}
        for name, rows in part.groupby(line, sort=False):
            key = point_key([name if c == line else at[c] for c in swept])
            if key not in skip and rows[metric].notna().any():
                means[name] = float(rows[metric].mean())
        if len(means) < 2:
            continue
        compared += 1
        best, second = sorted(means, key=lambda n: sign * means[n])[:2]
        if math.isclose(means[best], means[second], rel_tol=1e-9, abs_tol=1e-12):
            ties += 1
            continue
        a = part[part[line] == best].set_index("seed")[metric]
        b = part[part[line] == second].set_index("seed")[metric]
        half, n = _paired_half((a - b.reindex(a.index)).dropna())
        clear = n > 1 and abs(means[best] - means[second]) > half
        tally = wins.setdefault(best, [0, 0])
        tally[0] += 1
        tally[1] += int(clear)
    return wins, compared, ties


def _finding(metric: str, wins: dict[str, list[int]], compared: int, ties: int) -> str:
    word = "highest" if higher_is_better(metric) else "lowest"
    ranked = sorted(wins.items(), key=lambda kv: (-kv[1][0], -kv[1][1]))
    (top, (n, clear)), rest = ranked[0], ranked[1:]
    if not rest and not ties:
        return (
            f"- **{metric}**: {top} is {word} at {'every one' if n == compared else n} of the {compared} "
            f"conditions, {_clearly(clear, n)}."
        )
    shares = [f"{top} at {n} ({_clearly(clear, n)})"]
    shares += [f"{name} at {m} ({_clearly(c, m)})" for name, (m, c) in rest]
    tied = f"; the best two are equal at {ties}" if ties else ""
    return f"- **{metric}**: no single {word}: " + ", ".join(shares) + f" of the {compared} conditions{tied}."


def _clearly(clear: int, n: int) -> str:
    if clear == n:
        return "each by a paired 95 % interval" if n > 1 else "by a paired 95 % interval"
    if clear == 0:
        return "none by a paired 95 % interval"
    return f"{clear} of them by a paired 95 % interval"


def supports(
    frame: pd.DataFrame,
    swept: Sequence[str],
    metrics: Sequence[str],
    flags: Mapping[tuple[Any, ...], tuple[str, ...]],
    not_applicable: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any],
) -> str:
    """The report's opening, from the data, as Markdown: a sentence saying what was compared, one bullet
    per headline metric (which line — pattern — is best at how many conditions, and at how many by a
    paired 95 % interval), then the caveats: flagged points, points that do not apply, quick mode."""
    line = line_factor(frame, swept)
    out = ["**What this supports.**"]
    if line is not None and frame[line].nunique() > 1:
        others = [c for c in swept if c != line]
        where = " × ".join(others) if others else "one condition"
        # a line to which a variant does not apply competes with its control runs there
        every = stand_ins(frame, swept, not_applicable)
        skip = set(point_flags(every, swept))
        found, equal = [], []
        for metric in metrics:
            if metric in frame:
                wins, compared, ties = _winners(every, line, others, metric, skip, swept)
                wins = {value_label(line, k): v for k, v in wins.items()}
                if compared and ties == compared:
                    equal.append(metric)
                elif compared:
                    found.append(_finding(metric, wins, compared, ties))
        if equal:
            found.append(f"- **{', '.join(equal)}**: the best two are equal at every condition compared.")
        if found:
            total = len(every.drop_duplicates(others)) if others else 1
            na_note = (
                f" A {line} to which a variant does not apply is compared through its control runs there."
                if not_applicable
                else ""
            )
            out[0] += (
                f" Each {line} against the others on the same seeds, at each of the {total} conditions "
                f"({where}); flagged points are left out.{na_note}"
            )
            out += ["", *found]
    ranked = ranking(frame, swept, meta.get("rank_by") or (), flags, not_applicable)
    if ranked:  # the answer first, then the metric-by-metric tally
        out[1:1] = ["", *ranked]
    caveats = []
    if flags:
        shown = "; ".join(f"{describe_point(swept, k)} ({', '.join(f)})" for k, f in list(flags.items())[:4])
        more = f" and {len(flags) - 4} more" if len(flags) > 4 else ""
        caveats.append(
            f"- {len(flags)} point(s) are flagged — {shown}{more}: their figures depend on the run length, "
            "support no conclusion and are left out above."
        )
    if not_applicable:
        caveats.append("- " + not_applicable_text(not_applicable))
    if meta.get("quick"):
        caveats.append("- A quick run (short runs, few replications): a smoke test, not a result.")
    out += ["", "**Caveats.**", "", *caveats] if caveats else ["", "No point is flagged."]
    return "\n".join(out)


def _shown(metric: str, value: float) -> str:
    """A value as the report shows it: latencies in ms, others as they are."""
    from sim.analysis.report import unit  # the report's units; imported here: report imports this module

    scale, suffix = (1000.0, " ms") if unit(metric) == "ms" else (1.0, "")
    value *= scale
    return f"{value:.3g}{suffix}" if abs(value) < 1000 else f"{value:,.0f}{suffix}"


def _equal_to_best(part: pd.DataFrame, line: str, names: Sequence[Any], metric: str) -> list[Any]:
    """Among ``names`` (lines at one condition), the best on ``metric`` by its mean and every line whose
    paired 95 % interval of the difference from the best (per seed) includes 0, the best first."""
    sign = -1.0 if higher_is_better(metric) else 1.0
    means = {n: float(part.loc[part[line] == n, metric].mean()) for n in names}
    best = min(names, key=lambda n: sign * means[n])
    ref = part[part[line] == best].set_index("seed")[metric]
    equal = [best]
    for name in names:
        if name == best:
            continue
        mine = part[part[line] == name].set_index("seed")[metric]
        half, n = _paired_half((mine - ref.reindex(mine.index)).dropna())
        if math.isclose(means[name], means[best], rel_tol=1e-9, abs_tol=1e-12) or not (
            n > 1 and abs(means[name] - means[best]) > half
        ):
            equal.append(name)
    return sorted(equal, key=lambda n: sign * means[n])  # the best first (a stable sort: ties keep order)


def ranking(
    frame: pd.DataFrame,
    swept: Sequence[str],
    rank_by: Sequence[str],
    flags: Mapping[tuple[Any, ...], tuple[str, ...]],
    not_applicable: Sequence[Mapping[str, Any]] = (),
) -> list[str]:
    """The lines (:func:`line_factor`) ranked at each condition on ``rank_by`` in turn, as Markdown bullets:
    the first metric keeps the best line and every line not told apart from it by a paired 95 % interval
    (on a lower-is-better count, the lines 0 in every run alone, when there are any), the next metric ranks
    those, and so on; the last bullet counts, per line, the conditions where it is
    among the best. Flagged points are left out and named; a line with no value of a metric there drops out
    of that step (named too). ``[]`` without a line factor or ``rank_by``."""
    line = line_factor(frame, swept)
    metrics = [m for m in rank_by if m in frame]
    if line is None or not metrics or frame[line].nunique() < 2:
        return []
    others = [c for c in swept if c != line]
    every = stand_ins(frame, swept, not_applicable)
    skip = set(flags) | set(point_flags(every, swept))
    out: list[str] = []
    best_at: dict[Any, int] = {}
    compared = 0
    groups = every.groupby(others, sort=False, dropna=False) if others else [((), every)]
    for cond, part in groups:
        at = dict(zip(others, cond if isinstance(cond, tuple) else (cond,), strict=True))
        names: list[Any] = []
        left_out: list[Any] = []
        for name in part[line].unique():
            key = point_key([name if c == line else at[c] for c in swept])
            (left_out if key in skip else names).append(name)
        where = ", ".join(f"{k} = {v}" for k, v in at.items()) or "the only condition"
        steps = []
        for metric in metrics:
            valued = [n for n in names if part.loc[part[line] == n, metric].notna().any()]
            if len(valued) < 2:
                break
            word = "highest" if higher_is_better(metric) else "lowest"
            runs = {n: part.loc[part[line] == n, metric].dropna() for n in valued}
            mean = {n: float(runs[n].mean()) for n in valued}
            # 0 in every run is a record, not a mean: a line seen above 0 at all (a loss, a duplicate) is
            # not ranked with it, however rarely that happened for a paired interval to exclude 0
            clean = [] if higher_is_better(metric) else [n for n in valued if (runs[n] == 0).all()]
            equal = clean or _equal_to_best(part, line, valued, metric)
            kept = ", ".join(f"{value_label(line, n)} ({_shown(metric, mean[n])})" for n in equal)
            dropped = [n for n in valued if n not in equal]
            text = f"{word} {metric}: {kept}"
            if clean:
                text += " (0 in every run)"
                if dropped:
                    seen = ", ".join(
                        f"{value_label(line, n)} ({_shown(metric, mean[n])}; above 0 in "
                        f"{int((runs[n] > 0).sum())} of {len(runs[n])} runs)"
                        for n in sorted(dropped, key=lambda n: mean[n])
                    )
                    text += f"; {len(dropped)} other(s) above 0 in some run: {seen}"
                dropped = []
            elif len(equal) > 1:
                text += " (not told apart by paired 95 % intervals)"
                unsure = [n for n in equal[1:] if not math.isclose(mean[n], mean[equal[0]], abs_tol=1e-12)]
                if unsure:  # a difference the replications are too few to confirm or rule out
                    verb = "differs" if len(unsure) == 1 else "differ"
                    text += f", though {', '.join(value_label(line, n) for n in unsure)} {verb} on average"
            if dropped:
                worst = max(dropped, key=lambda n: (-1.0 if higher_is_better(metric) else 1.0) * mean[n])
                text += (
                    f"; {len(dropped)} other(s) clearly worse, up to {value_label(line, worst)} "
                    f"({_shown(metric, mean[worst])})"
                )
            no_value = [value_label(line, n) for n in names if n not in valued]
            if no_value:
                text += f"; no value for {', '.join(no_value)}"
            steps.append(text)
            names = equal
        if not steps:
            continue
        compared += 1
        for name in names:
            best_at[name] = best_at.get(name, 0) + 1
        shown = ", ".join(value_label(line, n) for n in names)
        flagged = ", ".join(value_label(line, n) for n in left_out)
        flagged = f" Left out, flagged: {flagged}." if flagged else ""
        out.append(f"- **{where}**: " + "; then ".join(steps) + f". **Best: {shown}**.{flagged}")
    if not out:
        return []
    tally = sorted(best_at.items(), key=lambda kv: -kv[1])
    shares = ", ".join(f"{value_label(line, n)} at {k}" for n, k in tally)
    never = [value_label(line, n) for n in every[line].unique() if n not in best_at]
    none = f"; {', '.join(never)} at none" if never else ""
    out.append(f"- **Among the best** (of the {compared} conditions ranked): {shares}{none}.")
    head = (
        f"**Ranked** at each condition on {', then '.join(metrics)}: each step keeps the best {line} and "
        "those a paired 95 % interval (same seeds) does not tell apart from it; on a count where lower is "
        "better, the lines 0 in every run are kept alone."
    )
    return [head, "", *out]


def not_applicable_text(entries: Sequence[Mapping[str, Any]]) -> str:
    """``broker_crash = on does not apply to pattern=point_to_point, ... (not run: ...)``, one sentence."""
    by_variant: dict[tuple[str, str], list[str]] = {}
    for entry in entries:
        point, control = entry["point"], entry["control"]
        for factor in control:
            rest = {k: v for k, v in point.items() if k != factor}
            who = str(rest.get("pattern", describe_point(list(rest), list(rest.values()))))
            by_variant.setdefault((factor, str(point[factor])), []).append(who)
    parts = []
    for (factor, value), where in by_variant.items():
        control = next(str(e["control"][factor]) for e in entries if factor in e["control"])
        where = list(dict.fromkeys(where))
        parts.append(
            f"{factor} = {value} does not apply to {', '.join(where)}; those points were not run "
            f"(they would repeat {factor} = {control})"
        )
    return "; ".join(parts) + "."


def categorical(frame: pd.DataFrame, col: str) -> bool:
    """Whether a swept column is a category (words, True/False) rather than a number."""
    return not pd.api.types.is_numeric_dtype(frame[col]) or pd.api.types.is_bool_dtype(frame[col])


def value_label(col: str | None, value: Any) -> str:
    """A value as a legend, tick or text label: a word stands for itself (``queue``, ``reject``); a bare
    number or ``True``/``False`` says what it is (``durable=True``)."""
    if col is None or (isinstance(value, str) and not value.lstrip("-").replace(".", "").isdigit()):
        return str(value)
    return f"{col.rsplit('.', 1)[-1]}={value}"


def ci_half(values: pd.Series) -> float:
    """Half-width of the 95 % Student t interval of the mean of ``values`` (NaN dropped); NaN for fewer
    than two values."""
    x = values.dropna().to_numpy(dtype=np.float64)
    if x.size < 2:
        return math.nan
    return float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


def _paired_half(diffs: pd.Series) -> tuple[float, int]:
    """Half-width of the 95 % Student t interval of per-seed differences, and their number."""
    return ci_half(diffs), int(diffs.notna().sum())
