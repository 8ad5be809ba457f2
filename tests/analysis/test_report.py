"""Reports: statistics with Student-t intervals, paired differences on shared seeds, files and figures."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.analysis.regression import compare
from sim.analysis.report import aggregate, paired_differences, write_report
from sim.config.scenario import Scenario
from sim.core.errors import SimError
from sim.sweep.experiment import Experiment
from sim.sweep.runner import run_experiment

BASE = Scenario(
    duration="2s",
    warmup="0.2s",
    topology={"name": "star", "params": {"n": 4}},
    links={"latency": {"dist": "exponential", "mean": "1ms"}},
    workload={"producers": ["h0"], "consumers": ["h1", "h3"], "rate": "100/s"},
    broker={"node": "h2"},
)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    exp = Experiment(
        "report_test",
        base=BASE,
        grid={"pattern": ["point_to_point", "queue"], "links.loss": [0.0, 0.05]},
        replications=3,
        seed=7,
    )
    run_experiment(exp, out=folder, engine="serial", quiet=True)
    return folder


def test_aggregate_matches_student_t(results: Path) -> None:
    frame = pd.read_parquet(results / "runs.parquet")
    agg = aggregate(frame, ["pattern", "links.loss"], ["latency_mean"])
    row = agg[(agg["pattern"] == "queue") & (agg["links.loss"] == 0.05)].iloc[0]
    values = frame[(frame["pattern"] == "queue") & (frame["links.loss"] == 0.05)]["latency_mean"].to_numpy()
    assert row["n"] == 3
    assert row["mean"] == pytest.approx(values.mean())
    assert row["ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * values.std(ddof=1) / math.sqrt(3))


def test_paired_differences_use_the_same_seed(results: Path) -> None:
    frame = pd.read_parquet(results / "runs.parquet")
    diffs = paired_differences(frame, ["pattern", "links.loss"], ["latency_mean"], "point_to_point")
    row = diffs[(diffs["pattern"] == "queue") & (diffs["links.loss"] == 0.0)].iloc[0]
    a = frame[(frame["pattern"] == "queue") & (frame["links.loss"] == 0.0)].sort_values("seed")
    b = frame[(frame["pattern"] == "point_to_point") & (frame["links.loss"] == 0.0)].sort_values("seed")
    per_seed = a["latency_mean"].to_numpy() - b["latency_mean"].to_numpy()
    assert row["n"] == 3 and row["difference"] == pytest.approx(per_seed.mean())
    assert row["ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * per_seed.std(ddof=1) / math.sqrt(3))
    # the queue's detour through the broker on h2 adds two hops: it is slower, and the interval says so
    assert row["difference"] - row["ci95"] > 0


def test_write_report_files(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = write_report(results)
    out = capsys.readouterr().out
    assert "mean ± 95 % CI" in out and "queue" in out
    md = report.markdown.read_text()
    for name in re.findall(r"\(figures/([^)]+)\)", md):
        assert (results / "figures" / name).stat().st_size > 1000
    assert {p.name for p in report.figures} >= {"latency_percentiles.png", "cost.png", "reliability.png"}
    assert "Paired differences against point_to_point" in md
    html = report.html.read_text()
    assert html.count("data:image/png;base64,") == len(report.figures)
    assert "<table" in html and 'src="figures/' not in html  # self-contained
    stats_csv = pd.read_csv(results / "statistics.csv")
    assert {"metric", "n", "mean", "std", "ci95"} <= set(stats_csv.columns)


def test_report_bad_input(results: Path, tmp_path: Path) -> None:
    with pytest.raises(SimError, match=r"runs\.parquet is missing"):
        write_report(tmp_path)
    with pytest.raises(SimError, match=r"^--reference = 'pubsub'"):
        write_report(results, reference="pubsub", quiet=True)
    with pytest.raises(SimError, match=r"^--metric = 'speed'"):
        write_report(results, metrics=["speed"], quiet=True)


def test_compare_tolerances_and_vanished_metrics() -> None:
    base = pd.DataFrame(
        {
            "pattern": ["q", "q", "q"],
            "metric": ["a", "b", "c"],
            "n": 3,
            "mean": [1.0, 2.0, 3.0],
            "ci95": [0.1, 0.1, 0.1],
            "tolerance": ["ci", "rel:0.5", "abs:0.01"],
        }
    )
    fresh = base.drop(columns="tolerance").assign(mean=[1.05, 2.9, 3.02], ci95=[0.01, 0.01, 0.01])
    result = compare(base, fresh)
    assert result.table["status"].tolist() == ["ok", "ok", "regressed"]
    assert not result.ok and "1 of 3 figures out of tolerance" in result.describe()
    assert compare(base, base.drop(columns="tolerance")).ok
    with pytest.raises(SimError, match=r"^baseline metric = 'c'"):
        compare(base, fresh[fresh["metric"] != "c"])
    nan = base.assign(mean=np.nan)
    assert compare(nan, nan.drop(columns="tolerance")).ok  # "not applicable" on both sides is no regression


# -- flags, n/a points, headline choice, figures that state their conditions ------------------------------


def synthetic(folder: Path, meta: dict[str, object] | None = None, **changes: float) -> Path:
    """A results folder written by hand: pattern × links.loss × two replications, every metric made up.
    ``changes`` maps "pattern/loss/metric" to a value set in replication 1 of that point."""
    rng = np.random.default_rng(3)
    rows = []
    for point, (pattern, loss) in enumerate(
        [(p, loss) for p in ("point_to_point", "queue") for loss in (0.0, 0.05)]
    ):
        for rep in range(2):
            row: dict[str, object] = {
                "pattern": pattern,
                "links.loss": loss,
                "point": point,
                "replication": rep,
                "seed": 100 + rep,
                "config_hash": f"{point:08x}{rep:08x}",
                "status": "ok",
                "error": "",
                "wall_time": 0.1,
                "op_success_ratio": 1.0 - loss * rng.uniform(0, 1),
                "op_latency_p50": 0.002 + loss * rng.uniform(0, 0.1),
                "op_latency_p95": 0.004 + loss,
                "op_latency_p99": 0.005 + loss * 2,
                "op_latency_p999": 0.006 + loss * 3,
                "op_msgs_per_op": 7.0 + (pattern == "queue") * 7,
                "op_duplicates_per_op": loss,
                "op_unfinished": 0.0,
                "stable": 1.0,
                "delivery_ratio": 1.0,
                "in_flight": 0.0,
            }
            for key, value in changes.items():
                p, lo, metric = key.split("/")
                if (p, float(lo), rep) == (pattern, loss, 1):
                    row[metric] = value
            rows.append(row)
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(folder / "runs.parquet", index=False)
    (folder / "meta.json").write_text(
        json.dumps({"experiment": "synthetic", "swept": ["pattern", "links.loss"], **(meta or {})})
    )
    return folder


def _row(md: str, *cells: str) -> str:
    """The Markdown table row that starts with these cells (the first match)."""
    start = "| " + " | ".join(cells) + " |"
    found = [line for line in md.splitlines() if line.startswith(start)]
    assert found, f"no row starting {start!r}"
    return found[0]


def test_unstable_and_unfinished_points_are_flagged_in_the_tables(tmp_path: Path) -> None:
    folder = synthetic(
        tmp_path / "r", **{"queue/0.05/stable": 0.0, "point_to_point/0.05/op_unfinished": 12.0}
    )
    md = write_report(folder, quiet=True, figures=False).markdown.read_text()
    header = _row(md, "pattern", "links.loss", "flags")
    assert header.split(" | ")[3:5] == ["op_success_ratio", "op_latency_p50 (ms)"]  # the default headline
    assert _row(md, "queue", "0.05", "unstable")
    assert _row(md, "point_to_point", "0.05", "unfinished")
    assert _row(md, "queue", "0.0", "")  # an unflagged point has an empty cell
    assert "cannot support a conclusion" in md
    assert _row(md, "queue − point_to_point", "0.05", "unstable, point_to_point unfinished")
    opening = md.split("## Setup")[0]
    assert "What this supports" in opening and "2 point(s) are flagged" in opening


def test_fail_on_names_the_flagged_points(tmp_path: Path) -> None:
    from sim.analysis.report import flag_failure

    frame = pd.read_parquet(synthetic(tmp_path / "r", **{"queue/0.05/stable": 0.0}) / "runs.parquet")
    swept = ["pattern", "links.loss"]
    assert flag_failure(frame, swept, ("unfinished",)) == ""
    message = flag_failure(frame, swept, ("unstable", "unfinished"))
    assert message.startswith("1 point(s) flagged unfinished or unstable") and "pattern=queue" in message
    assert "\n" not in message


def test_results_without_operations_fall_back_to_obligation_figures(tmp_path: Path) -> None:
    from sim.analysis.report import headline_metrics

    frame = pd.read_parquet(synthetic(tmp_path / "r") / "runs.parquet")
    old = frame.drop(columns=[c for c in frame.columns if c.startswith("op_")])
    assert headline_metrics(frame, None)[0] == "op_success_ratio"
    assert headline_metrics(old, None) == [
        "delivery_ratio",
        "latency_p50",
        "latency_p99",
        "msgs_per_delivery",
        "duplicates",
        "in_flight",
    ]
    assert headline_metrics(old, ["latency_mean"]) == ["latency_mean"]


def test_the_experiments_headline_is_the_reports(tmp_path: Path) -> None:
    folder = synthetic(tmp_path / "r", meta={"headline": ["op_latency_p99", "op_success_ratio"]})
    md = write_report(folder, quiet=True, figures=False).markdown.read_text()
    assert "| pattern | links.loss | op_latency_p99 (ms) | op_success_ratio |" in md.splitlines()


def test_not_applicable_points_show_as_na_in_both_tables(tmp_path: Path) -> None:
    na = [{"point": {"pattern": "point_to_point", "links.loss": 0.05}, "control": {"links.loss": 0.0}}]
    folder = synthetic(tmp_path / "r", meta={"not_applicable": na})
    frame = pd.read_parquet(folder / "runs.parquet")
    frame = frame[~((frame["pattern"] == "point_to_point") & (frame["links.loss"] == 0.05))]
    frame.to_parquet(folder / "runs.parquet", index=False)  # as if the sweep had not run it
    md = write_report(folder, quiet=True, figures=False).markdown.read_text()
    assert _row(md, "point_to_point", "0.05", "n/a", "n/a", "n/a")
    # the queue is compared with the reference's control runs, and the row says so
    row = _row(md, "queue − point_to_point (its links.loss = 0.0 runs)", "0.05")
    assert "n/a" not in row
    assert "links.loss = 0.05 does not apply to point_to_point" in md


def test_figures_name_what_they_hold_fixed_and_cover_every_condition(tmp_path: Path) -> None:
    from sim.analysis.figures import build_all

    frame = pd.read_parquet(synthetic(tmp_path / "r", **{"queue/0.05/stable": 0.0}) / "runs.parquet")
    frame = pd.concat([frame.assign(**{"workload.rate": 10}), frame.assign(**{"workload.rate": 20})])
    swept = ["pattern", "links.loss", "workload.rate"]
    flags = {("queue", 0.05, 10): ("unstable",), ("queue", 0.05, 20): ("unstable",)}
    drawn = {
        d.name: d
        for d in build_all(
            frame,
            swept,
            pd.DataFrame(columns=["series"]),
            flags=flags,
            metrics=["op_success_ratio", "op_latency_p99"],
        )
    }
    trend = drawn["metrics_vs_links_loss"]
    assert trend.fixed == {"workload.rate": 10}
    assert "held fixed: workload.rate = 10" in trend.figure._suptitle.get_text()
    assert "held fixed: links.loss = 0.0" in drawn["metrics_vs_workload_rate"].figure._suptitle.get_text()
    ratio, latency = trend.figure.axes[:2]
    assert ratio.get_ylim() == pytest.approx((-0.02, 1.02))  # a ratio on its full range
    assert "(ms" in latency.get_ylabel() and ratio.get_xlabel() == "links.loss (loss probability per link)"
    # a flagged point is drawn hollow: its marker's face is white
    hollow = [ln for ln in ratio.lines if ln.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and hollow[0].get_xdata()[0] == 0.05
    tails = drawn["latency_percentiles"]
    titles = [ax.get_title() for ax in tails.figure.axes if ax.get_visible()]
    assert titles == [
        f"links.loss = {loss}, workload.rate = {rate}" for loss in (0.0, 0.05) for rate in (10, 20)
    ]
    assert tails.figure.axes[0].get_xlabel().startswith("percentile (log scale")
    for d in drawn.values():
        assert "held fixed:" in d.figure._suptitle.get_text(), d.name
        for ax in d.figure.axes:
            if ax.get_visible():
                assert "(" in ax.get_ylabel() or not ax.get_ylabel(), (d.name, ax.get_ylabel())


def test_confidence_bands_stay_in_the_metrics_range() -> None:
    from sim.analysis.figures import ci_band

    spread = pd.DataFrame({"x": [0.0, 0.0, 1.0, 1.0], "y": [0.001, 0.2, 0.9, 1.0]})
    mean, low, high = ci_band(spread, "op_latency_p99")
    assert mean[0] - 12.7 * 0.14 / 1.41 < 0  # the unclipped band would reach below zero
    assert (low >= 0).all() and low[0] == 0.0
    mean, low, high = ci_band(spread, "op_success_ratio")
    assert (high <= 1.0).all() and high[1] == 1.0 and (low >= 0).all()


def test_time_plots_shade_fault_windows_and_tails_sit_on_a_log_percentile_axis(tmp_path: Path) -> None:
    from matplotlib.patches import Rectangle

    from sim.analysis.figures import build_all

    frame = pd.read_parquet(synthetic(tmp_path / "r") / "runs.parquet").assign(backlog_max=1.0)
    frame.loc[7, "backlog_max"] = 50.0  # queue at 5 % loss (point 3), replication 1: the run shown
    series = pd.DataFrame(
        {
            "config_hash": frame.loc[7, "config_hash"],
            "series": "backlog",
            "x": [0.0, 1.0, 2.0],
            "y": [0, 50, 0],
        }
    )
    windows = {"3": [[0.5, 1.5, "crash broker"]], "0": [[0.1, 0.2, "crash other"]]}
    drawn = {d.name: d for d in build_all(frame, ["pattern", "links.loss"], series, windows=windows)}
    ax = drawn["backlog"].figure.axes[0]
    spans = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(spans) == 1  # the shown run's window, not another point's
    assert (spans[0].get_x(), spans[0].get_x() + spans[0].get_width()) == pytest.approx((0.5, 1.5))
    assert "crash broker" in [t.get_text().strip() for t in ax.texts]
    assert "pattern = queue, links.loss = 0.05, replication 1" in drawn["backlog"].figure._suptitle.get_text()
    tail = drawn["latency_percentiles"].figure.axes[0]
    x = tail.lines[0].get_xdata()
    assert x == pytest.approx(np.log10(1 / (1 - np.array([0.5, 0.95, 0.99, 0.999]))))
    assert [t.get_text() for t in tail.get_xticklabels()] == ["50", "90", "95", "99", "99.9"]


def test_a_headline_metric_with_no_values_is_a_column_of_dashes_beside_flags(tmp_path: Path) -> None:
    folder = synthetic(tmp_path / "r", **{"queue/0.05/stable": 0.0})
    runs = pd.read_parquet(folder / "runs.parquet").assign(rtt_p99=math.nan)  # no request/reply here
    runs.to_parquet(folder / "runs.parquet", index=False)
    md = write_report(folder, quiet=True, figures=False, metrics=["rtt_p99"]).markdown
    text = md.read_text()
    assert _row(text, "queue", "0.05", "unstable")
    assert _row(text, "queue", "0.0", "")
