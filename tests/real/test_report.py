"""The calibration report, the validation page's section and the fault prediction, without a broker."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.analysis.validation import real_brokers_section
from sim.real.faults import predict_faults
from sim.real.fit import Profile
from sim.real.load import LoadSpec, Measurement, busy
from sim.real.predict import Observed, side_by_side
from sim.real.report import BUSY, error_summary, machine_state, write_report


def _table() -> pd.DataFrame:
    rows = []
    for load, p50, sim in [(0.1, 1.0, 1.1), (0.5, 2.0, 1.0), (0.7, 3.0, 3.0), (0.9, 9.0, 4.0)]:
        rows.append(
            {"setting": "rabbitmq-plain", "broker": "rabbitmq", "label": "queue", "load": load,
             "offered": 1000 * load, "saturation_fit": 1000.0, "p50_ms": p50, "p50_sim_ms": sim,
             "p99_ms": 2 * p50, "p99_sim_ms": 2 * sim, "throughput": 1000 * load,
             "throughput_sim": 990 * load, "lateness_p99_ms": 20.0 if load > 0.8 else 1.0, "delivered": 1.0}
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_error_summary_counts_p50_within_20_percent_below_70_percent_load() -> None:
    assert error_summary(_table()) == (1, 2)  # +10 % counts, -50 % does not; 70 % and 90 % are not below


def test_report_has_the_table_the_figures_and_the_fault_rows(tmp_path: Path) -> None:
    faults = pd.DataFrame(
        [{"setting": "rabbitmq-plain", "fault": "crash", "downtime_s": 3.5, "sent": 1800,
          "publish_errors": 1000, "confirmed": 0, "delivered": 790, "lost": 1010, "lost_confirmed": 0,
          "duplicates": 0, "lost_sim": 1050.0, "duplicates_sim": 0.0}]
    )  # fmt: skip
    write_report(tmp_path, _table(), faults, {"rabbitmq": "3.10"})
    text = (tmp_path / "report.md").read_text()
    assert "**1 of 2** p50" in text
    assert "| rabbitmq-plain | 50 % | 500 | 2.00 | 1.00 | -50 % |" in text
    assert "| rabbitmq-plain | crash | 3.50 | 1800 | 1000 | 1010 | 0 | 1050 | 0 | 0 |" in text
    assert "a stall of the process): rabbitmq-plain 90 %." in text  # where the publisher fell behind
    assert (
        "- rabbitmq-plain: 1010 lost against 1050 predicted (prediction +4%); 1000 of the lost were" in text
    )
    assert (tmp_path / "figures" / "rabbitmq-plain.png").stat().st_size > 10_000


def test_validation_page_section_lists_points_below_70_percent(tmp_path: Path) -> None:
    assert real_brokers_section(tmp_path / "none.csv") == []
    _table().to_csv(tmp_path / "c.csv", index=False)
    lines = real_brokers_section(tmp_path / "c.csv")
    rows = [line for line in lines if line.startswith("| rabbitmq")]
    assert rows == [
        "| rabbitmq-plain | 10% | 100 | 1 | 1.1 | +10% |",
        "| rabbitmq-plain | 50% | 500 | 2 | 1 | -50% |",
    ]


def test_sim_loses_what_arrives_while_the_broker_is_down(tmp_path: Path) -> None:
    profile = Profile(
        {"service": {"dist": "lognormal", "mean": 0.0003, "cv": 1.0}, "persist": 0.0, "servers": 1},
        {"dist": "lognormal", "mean": 0.0005, "cv": 0.5},
        {"broker": "rabbitmq"},
    )
    profile.write(tmp_path / "p.toml")
    spec = LoadSpec("rabbitmq", "amqp://127.0.0.1:1", rate=300.0, duration=6.0)
    crash = predict_faults(tmp_path / "p.toml", spec, "crash", 1.0)
    assert crash["lost_sim"] == pytest.approx(300, rel=0.25) and crash["duplicates_sim"] == 0
    pause = predict_faults(tmp_path / "p.toml", spec, "pause", 0.5)
    assert pause == {"lost_sim": 0.0, "duplicates_sim": 0.0}


def test_a_load_point_sets_measured_beside_predicted_in_ms_and_per_second() -> None:
    measured = Observed(offered=100.0, p50=0.002, p99=0.010, throughput=99.0, delivered=1.0)
    predicted = Observed(offered=100.0, p50=0.0025, p99=0.008, throughput=100.0, delivered=1.0)
    assert side_by_side(measured, predicted) == pytest.approx(
        {"p50_ms": 2.0, "p50_sim_ms": 2.5, "p99_ms": 10.0, "p99_sim_ms": 8.0, "throughput": 99.0,
         "throughput_sim": 100.0}
    )  # fmt: skip


def test_rows_taken_on_a_busy_machine_are_flagged_and_left_out_of_the_summary(tmp_path: Path) -> None:
    """On 2 cores: during the 10 % point's run other processes used 0.05 cores (quiet), during the 50 %
    point's 0.3 (busy: above a tenth of the cores), the 70 % point's fit had no record (unknown); the 90 %
    point is quiet. Its load average of 1.5 does not make it busy: the broker and its clients raise it."""
    table = _table().assign(
        others_cpu=[0.05, 0.3, 0.0, 0.2],
        fit_others_cpu=[0.02, 0.02, float("nan"), 0.02],
        load_avg=[0.4, 0.4, 0.2, 1.5],
        cores=2,
    )
    assert list(machine_state(table)) == ["quiet", "busy", "unknown", "quiet"]
    assert error_summary(table) == (1, 1)  # the busy 50 % point (-50 %) is left out
    write_report(tmp_path, table, None, {"rabbitmq": "3.10"}, ["Measured at night."])
    text = (tmp_path / "report.md").read_text()
    head = text.split("## Prediction")[0]
    assert f"**1 of 4 rows were {BUSY}**" in head and "**The load is unknown for 1 of 4 rows**" in head
    assert "Measured at night." in head
    assert "| rabbitmq-plain | 50 % | 500 | 2.00 | 1.00 | -50 % |" in text and "| -1 % | ⚠ busy |" in text
    assert "| 10 % | 100 | 1.00 | 1.10 | +10 % |" in text and "| -1 % |  |" in text
    assert "**1 of 1** p50" in text and f"1 rows {BUSY}, left out" in text
    assert "| 70 % | 700 | 3.00 | 3.00 | +0 % | 6.0 | 6.0 | +0 % | 700 | 693 | -1 % | ? |" in text


def test_a_measurement_is_busy_by_other_processes_cpu_not_by_its_load_average(tmp_path: Path) -> None:
    meta = {"spec": {}, "machine": {"cores": 2}, "load_average": {"start": 0.5, "end": 1.25}}
    m = Measurement(pd.DataFrame(), meta | {"others_cpu": 0.05})
    assert m.load == 1.25 and m.others == 0.05 and m.busy is False
    assert Measurement(pd.DataFrame(), meta | {"others_cpu": 0.25}).busy is True
    assert Measurement(pd.DataFrame(), meta).busy is None  # no record of the others' CPU: unknown
    assert busy(0.2, 2) is False and busy(0.21, 2) is True


def test_validation_page_section_leaves_out_points_taken_on_a_busy_machine(tmp_path: Path) -> None:
    table = _table().assign(others_cpu=[0.05, 0.3, 0.0, 0.0], fit_others_cpu=0.02, cores=2)
    table.assign(machine=machine_state(table)).to_csv(tmp_path / "c.csv")
    rows = [line for line in real_brokers_section(tmp_path / "c.csv") if line.startswith("| rabbitmq")]
    assert rows == ["| rabbitmq-plain | 10% | 100 | 1 | 1.1 | +10% |"]


def test_calibration_curves_have_units_and_the_fitted_saturation() -> None:
    from sim.analysis.figures import calibration_curves

    lat, thr = calibration_curves(_table()).axes
    assert lat.get_ylabel() == "latency from due time (ms)" and lat.get_yscale() == "log"
    assert lat.get_xlabel() == thr.get_xlabel() == "offered load (messages/s)"
    assert thr.get_ylabel() == "delivered (messages/s)"
    assert [line.get_label() for line in lat.lines][-1] == "fitted saturation"
    assert np.array_equal(lat.lines[-1].get_xdata(), [1000.0, 1000.0])


def test_cpu_watch_counts_other_processes_not_this_one_nor_the_broker() -> None:
    """Over one window, a process spinning for 1 s (not this one's child: started through one that exits
    at once) counts as about a core of others' CPU unless its pid is the broker's: two watches, one told
    its pid, differ by it, whatever else runs meanwhile (a parallel test worker). This process and its
    threads are always its own."""
    import os
    import subprocess
    import sys
    import time

    from sim.real.load import CpuWatch

    spin = "import time; t = time.monotonic()\nwhile time.monotonic() - t < 1.0: pass"
    launch = (
        "import subprocess, sys; null = subprocess.DEVNULL; "
        f"print(subprocess.Popen([sys.executable, '-c', {spin!r}], stdout=null, stderr=null).pid)"
    )
    pid = int(subprocess.run([sys.executable, "-c", launch], capture_output=True, check=True).stdout)
    stranger, broker = CpuWatch(), CpuWatch(lambda: [pid])
    stranger.start()
    broker.start()
    time.sleep(0.6)
    with_it, without = stranger.stop(), broker.stop()
    assert 0.4 < with_it - without < 1.2  # the spinner's core, over 0.6 s
    time.sleep(0.5)  # the spinner is done
    assert os.getpid() in CpuWatch()._sample()[2]


def test_assert_predicts_forgives_one_stall_not_a_model_that_is_off() -> None:
    from . import assert_predicts

    def point(p50: float) -> Observed:
        return Observed(offered=100.0, p50=p50, p99=3 * p50, throughput=100.0, delivered=1.0)

    measured = iter([point(0.010), point(0.002)])  # a stall of the machine, then a quiet attempt
    assert_predicts(lambda: (next(measured), point(0.0021)))
    tries: list[int] = []

    def off() -> tuple[Observed, Observed]:  # the model twice the measurement, every time
        tries.append(1)
        return point(0.002), point(0.004)

    with pytest.raises(AssertionError, match=re.escape("in 3 attempts: p50 +100% (measured 2.00 ms)")):
        assert_predicts(off)
    assert len(tries) == 3


def test_fault_rows_are_judged_by_their_own_run(tmp_path: Path) -> None:
    """A fault row has no fit of its own: with its run's record it is quiet or busy, never unknown."""
    row = {"setting": "rabbitmq-plain", "fault": "pause", "downtime_s": 0.5, "sent": 100,
           "publish_errors": 0, "confirmed": 100, "delivered": 100, "lost": 0, "lost_confirmed": 0,
           "duplicates": 0, "lost_sim": 0.0, "duplicates_sim": 0.0, "cores": 2}  # fmt: skip
    faults = pd.DataFrame([row | {"others_cpu": 0.0}, row | {"fault": "crash", "others_cpu": 0.5}])
    table = _table().assign(others_cpu=0.0, fit_others_cpu=0.0, cores=2)
    write_report(tmp_path, table, faults, {"rabbitmq": "3.10"})
    text = (tmp_path / "report.md").read_text()
    assert f"**1 of 6 rows were {BUSY}**" in text and "unknown" not in text.split("## Prediction")[0]
    assert "| rabbitmq-plain | pause | 0.50 | 100 | 0 | 0 | 0 | 0 | 0 | 0 |  |" in text
    assert "| rabbitmq-plain | crash | 0.50 | 100 | 0 | 0 | 0 | 0 | 0 | 0 | ⚠ busy |" in text


def test_validation_page_names_the_campaign_notes_only_when_there_are_some(tmp_path: Path) -> None:
    _table().to_csv(tmp_path / "c.csv", index=False)
    assert "second campaign" not in "\n".join(real_brokers_section(tmp_path / "c.csv"))
    (tmp_path / "notes.md").write_text("Two campaigns.")
    assert "second campaign" in "\n".join(real_brokers_section(tmp_path / "c.csv"))
