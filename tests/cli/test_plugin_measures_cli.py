"""A plug-in's own measures on the command line: ``sim simulate`` shows each under its own name with the unit
the plug-in declares (``Measure.unit``), even where a built-in pattern has a measure of the same name;
``sim list metrics --scenario FILE`` lists them with their meanings and units."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sim.cli.main import main

# point-to-point under another name, with three figures of its own: one named as request_reply's count
# of late replies (a built-in name, in another unit), one named as nothing built in, and samples
PLUGIN = '''
"""Point-to-point that counts its messages as pings."""
from sim.patterns import Measure, Operation, PointToPoint


class Pinger:
    """Point-to-point that counts its messages as pings."""

    name = "pinger"
    measures = (
        Measure("late_replies", "count", "pings", "pings the plug-in counted"),
        Measure("hops_seen", "count", "hops", "hops the plug-in counted"),
        Measure("lag", "samples", "s", "a lag the plug-in recorded"),
    )
    operation = Operation("a message delivered to its consumer")

    @classmethod
    def from_options(cls, options):
        return cls()

    def install(self, world):
        PointToPoint().install(world)
        world.reporters.append(lambda: {"late_replies": 7.0, "hops_seen": 3.0, "lag": [0.5, 1.5]})
'''


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    (tmp_path / "pinger.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    path = tmp_path / "pinger.toml"
    path.write_text('pattern = "pinger.py:Pinger"\nduration = "1s"\n', encoding="utf-8")
    return path


def summary_lines(out: str) -> dict[str, list[str]]:
    """``sim simulate``'s summary lines by figure: [value, unit words...]."""
    rows = {}
    for line in out.splitlines()[1:]:
        if line.startswith("  "):
            name, *rest = line.split()
            rows[name] = rest
    return rows


def test_simulate_shows_a_plugins_measures_with_their_declared_units(
    capsys: pytest.CaptureFixture[str], scenario: Path
) -> None:
    assert main(["simulate", str(scenario)]) == 0
    rows = summary_lines(capsys.readouterr().out)
    assert rows["late_replies"] == ["7", "pings"]  # not hidden as request_reply's, nor in its unit
    assert rows["hops_seen"] == ["3", "hops"]  # not "obligations", the default of an unknown name
    assert rows["lag_mean"] == ["1", "s"] and rows["lag_p50"] == ["1", "s"]
    for name in ("requests", "answered", "rtt_mean", "chains_started"):  # the built-ins' own stay hidden
        assert name not in rows
    assert rows["delivered"][1:] == ["obligations"] and rows["latency_p99"][1:] == ["s"]


def test_a_builtin_pattern_keeps_its_own_measures_and_units(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[2]
    scenario = root / "experiments" / "scenarios" / "request_reply.toml"
    assert main(["simulate", str(scenario), "--set", "duration=1s", "--set", "warmup=0.1s"]) == 0
    rows = summary_lines(capsys.readouterr().out)
    assert rows["requests"][1:] == ["requests"] and rows["late_replies"][1:] == ["requests"]
    assert rows["rtt_p99"][1:] == ["s"]
    assert "chains_started" not in rows


def test_list_metrics_with_a_scenario_adds_the_plugins_own(
    capsys: pytest.CaptureFixture[str], scenario: Path
) -> None:
    assert main(["list", "metrics", "--scenario", str(scenario)]) == 0
    out = capsys.readouterr().out
    head, _, own = out.partition(f"metrics of pinger (file {scenario.parent / 'pinger.py'}):\n")
    assert head.startswith("metrics:\n") and "latency_p99" in head
    lines = [line.split(maxsplit=1) for line in own.splitlines()]
    assert lines == [
        ["late_replies", "pings the plug-in counted, pings"],
        ["hops_seen", "hops the plug-in counted, hops"],
        ["lag_mean", "mean a lag the plug-in recorded, s"],
        ["lag_p50", "median a lag the plug-in recorded, s"],
        ["lag_p99", "99th percentile a lag the plug-in recorded, s"],
    ]
    assert main(["list", "metrics"]) == 0  # without a scenario: the built-in vocabulary only
    assert "metrics of" not in capsys.readouterr().out
    builtin = Path(__file__).resolve().parents[2] / "experiments" / "scenarios" / "queue.toml"
    assert main(["list", "metrics", "--scenario", str(builtin)]) == 0  # a built-in adds nothing
    assert "metrics of" not in capsys.readouterr().out


def test_list_patterns_and_metrics_read_the_scenario_once(
    capsys: pytest.CaptureFixture[str], scenario: Path
) -> None:
    assert main(["list", "--scenario", str(scenario)]) == 0
    out = capsys.readouterr().out
    assert "pinger" in out.split("topologies:")[0]  # the pattern, where it comes from
    assert out.rstrip().endswith("99th percentile a lag the plug-in recorded, s")
