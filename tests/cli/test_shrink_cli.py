"""``sim shrink SCENARIO --out FILE``: the minimal scenario written as TOML, what was removed, progress on
stderr, and one-line refusals (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.cli import shrink as command
from sim.cli.main import main
from sim.config.scenario import Scenario
from sim.config.toml import scenario_toml
from sim.core.errors import SimError
from sim.run import checks
from sim.run import shrink as module

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "experiments" / "scenarios" / "faults_demo.toml"

FAILING = Scenario(
    pattern="pubsub",
    duration=0.6,
    drain=5,
    seed=3,
    topology={"name": "star", "params": {"n": 4}},
    workload={"producers": ["h0", "h1"], "consumers": ["h2", "h3"], "rate": "100/s"},
    delivery={"guarantee": "at_least_once", "ack_timeout": "10ms"},
    broker={"node": "hub"},
    faults=[
        {"at": 0.05, "action": "latency", "target": "h0-hub", "add": "2ms", "for": 0.1},
        {"at": 0.1, "action": "pause", "target": "h3", "for": 0.05},
        {"at": 0.18, "action": "crash", "target": "h2", "for": 0.04},
        {"at": 0.25, "action": "crash", "target": "hub", "for": 0.05},
        {"at": 0.3, "action": "duplicate", "target": "h1-hub", "probability": 0.2, "for": 0.1},
    ],
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    path = tmp_path / "failing.toml"
    path.write_text(scenario_toml(FAILING), encoding="utf-8")
    return path


def test_shrink_writes_the_minimal_scenario(
    failing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "min.toml"
    code, stdout, stderr = run(capsys, "shrink", str(failing), "--out", str(out))
    assert code == 0
    minimal = Scenario.from_toml(out)
    assert [(f.at, f.action, f.target, f.for_) for f in minimal.faults] == [(0.18, "crash", "h2", 0.005)]
    assert minimal.workload.consumers == ["h2"]
    lines = stdout.splitlines()
    assert lines[0].startswith("shrunk in ") and "(at most 200)" in lines[0]
    assert "  faults: 1 of 5 fault entries kept; removed: latency h0-hub at 0.05 s for 0.1 s;" in stdout
    assert "still breaks no_loss: obligation " in stdout and f"minimal scenario: {out}" in stdout
    progress = [line for line in stderr.splitlines() if line.startswith("shrink: run ")]
    steps = [line for line in lines if line.startswith("  ")]
    assert len(progress) == len(steps) >= 4 and progress[0].endswith(steps[0].strip())
    assert out.read_text().startswith(f"# The smallest scenario `sim shrink` found from {failing}:")
    flow = tmp_path / "min_flow"  # the minimal run's message flow, beside the file
    assert f"flow diagram: {flow / 'flow.html'}, {flow / 'trace.json'}" in lines
    assert "<html" in (flow / "flow.html").read_text()[:200].lower()
    events = json.loads((flow / "trace.json").read_text())["traceEvents"]
    assert {e.get("args", {}).get("name") for e in events if e.get("ph") == "M"} >= {"h0", "h2", "hub"}
    # the file is a scenario `sim simulate` runs, and its check fails on the same rule
    code, stdout, _ = run(capsys, "simulate", str(out), "--check")
    assert code == 1 and "violation(s) of no_loss" in stdout


def test_a_diagram_too_large_is_not_drawn_but_the_scenario_is_written(
    failing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sim.analysis.flow

    def refuse(*args: object, **kwargs: object) -> list[Path]:
        raise SimError("arrows", 30000, "at most 20000 arrows")

    monkeypatch.setattr(sim.analysis.flow, "write_views", refuse)
    out = tmp_path / "min.toml"
    code, stdout, _ = run(capsys, "shrink", str(failing), "--out", str(out), "--max-runs", "3")
    assert code == 0 and Scenario.from_toml(out).faults
    assert stdout.splitlines()[-1] == (
        "flow diagram: not drawn (arrows = 30000: expected at most 20000 arrows); see sim trace --window"
    )
    assert not (tmp_path / "min_flow").exists()


def test_the_shipped_demo_with_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo_min.toml"
    set_ = "delivery.guarantee=at_most_once"
    code, stdout, _ = run(capsys, "shrink", str(DEMO), "--set", set_, "--out", str(out))
    assert code == 0 and "nemesis: 1 nemesis made explicit: 2 fault(s) drawn" in stdout
    minimal = Scenario.from_toml(out)
    assert [f.action for f in minimal.faults] == ["duplicate"] and minimal.nemesis == []
    assert minimal.delivery.guarantee == "at_most_once"
    assert f"--set {set_}:" in out.read_text().splitlines()[0]


def test_a_passing_run_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "min.toml"
    code, stdout, stderr = run(capsys, "shrink", str(DEMO), "--out", str(out))
    assert code == 2 and stdout == "" and not out.exists()
    assert stderr == (
        f"sim: error: scenario file = {DEMO}: expected a run that fails its check "
        "(every at_least_once promise held: nothing to shrink)\n"
    )


def test_the_bound_is_reported(failing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "min.toml"
    code, stdout, _ = run(capsys, "shrink", str(failing), "--out", str(out), "--max-runs", "2")
    assert code == 0
    assert (
        stdout.splitlines()[0]
        == "shrunk in 2 runs (at most 2); the bound stopped it, a smaller one may exist"
    )
    assert Scenario.from_toml(out) == FAILING  # nothing smaller was found in two runs


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "min.txt"], "--out = 'min.txt': expected a .toml file for the minimal scenario"),
        (["--out", "m.toml", "--max-runs", "0"], "--max-runs = 0: expected a whole number >= 1"),
        (["--out", "m.toml", "--rule", "fifo"], "rule = 'fifo': expected a rule the run breaks: no_loss"),
    ],
)
def test_bad_arguments(
    failing: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, stderr = run(capsys, "shrink", str(failing), *argv)
    assert code == 2 and stderr == f"sim: error: {message}\n"


def test_an_unknown_rule_is_refused_by_the_parser(failing: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["shrink", str(failing), "--out", "m.toml", "--rule", "nope"])
    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        "sim: error: --rule = 'nope': expected one of no_duplicates, no_loss, no_delivery_while_down, fifo\n"
    )


def test_constants_kept_for_a_fast_help_match_the_library() -> None:
    assert command.RULES == checks.RULES
    assert command.MAX_RUNS == module.MAX_RUNS
    assert command.flow_folder(Path("out/min.toml")) == Path("out/min_flow")


@pytest.mark.parametrize(
    ("make", "out_name", "why"),
    [
        ("taken", "taken/min.toml", "{tmp}/taken is not a folder"),  # its folder is a file
        ("min_flow", "min.toml", "{tmp}/min_flow is not a folder"),  # its flow folder is a file
    ],
)
def test_an_out_that_cannot_be_written_is_refused_before_any_run(
    make: str,
    out_name: str,
    why: str,
    failing: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the scenario was run")

    monkeypatch.setattr(module, "shrink", no_run)
    (tmp_path / make).write_text("not a folder\n")
    out = tmp_path / out_name
    code, stdout, stderr = run(capsys, "shrink", str(failing), "--out", str(out))
    assert (code, stdout) == (2, "")
    assert stderr == (
        f"sim: error: --out = '{out}': expected a .toml file whose folder and flow folder (min_flow/) can be "
        f"written; a folder that can be created ({why.format(tmp=tmp_path)})\n"
    )


def test_an_out_that_is_a_folder_is_refused(
    failing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "min.toml"
    out.mkdir()
    code, _, stderr = run(capsys, "shrink", str(failing), "--out", str(out))
    assert (
        code == 2
        and stderr
        == f"sim: error: --out = '{out}': expected a .toml file for the minimal scenario, not a folder\n"
    )


def test_making_nemeses_explicit_plans_only_the_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    # the nemeses' schedule is the built world's (its injector's actions): only the explicit candidate is
    # planned again, to compare
    calls: list[Scenario] = []

    def counted(scenario: Scenario, *args: object, **kwargs: object) -> object:
        calls.append(scenario)
        return real(scenario, *args, **kwargs)

    real = module.plan
    monkeypatch.setattr(module, "plan", counted)
    scenario = FAILING.with_updates(
        {
            "faults": [],
            "nemesis": [{"kind": "crash", "targets": "consumers", "mttf": "200ms", "mttr": "30ms"}],
        }
    )
    found = module.shrink(scenario, max_runs=1)
    assert found.steps[0].change.startswith("1 nemesis made explicit: ")
    assert len(calls) == 1 and calls[0].nemesis == [] and calls[0].faults
