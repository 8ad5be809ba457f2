"""Bad fault inputs are refused with a SimError naming the field; the CLI turns them into one line and exit 2.

Shape errors (unknown action, missing or extra parameters, bad numbers) are caught by ``Scenario``; names
(nodes, links, selectors) and contradictions between actions (crash a crashed node, overlapping windows)
are caught when the run is built, before anything is simulated. Also: ``sim simulate --check``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from sim.cli.main import main
from sim.config.scenario import Scenario
from sim.core.errors import SimError
from sim.run.simulate import simulate

BASE: dict[str, Any] = {
    "pattern": "point_to_point",
    "duration": "2s",
    "drain": "1s",
    "seed": 1,
    "topology": {"name": "star", "params": {"n": 3}},
    "workload": {"producers": ["h0"], "consumers": ["h1"], "rate": "50/s"},
}
BROKERED: dict[str, Any] = {**BASE, "pattern": "queue", "broker": {"node": "hub"}}

CRASH = {"at": 0.5, "action": "crash", "target": "h0"}
LOSS = {"at": 0.5, "action": "loss", "target": "all"}

# (id, faults, nemesis, field named first in the message)
BAD: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]], str]] = [
    # names
    ("missing node", [{**CRASH, "target": "nope"}], [], "faults[0].target"),
    ("missing node in a list", [{**CRASH, "target": ["h0", "nope"]}], [], "faults[0].target"),
    ("missing link", [{"at": 0.5, "action": "link_down", "target": "h0-h1"}], [], "faults[0].target"),
    (
        "missing one-way link",
        [{"at": 0.5, "action": "link_down", "target": "h0->h1"}],
        [],
        "faults[0].target",
    ),
    ("link named like a node", [{"at": 0.5, "action": "link_down", "target": "h0"}], [], "faults[0].target"),
    ("window on a node", [{**LOSS, "target": "h0", "p": 0.1}], [], "faults[0].target"),
    ("crash on a link", [{**CRASH, "target": "h0-hub"}], [], "faults[0].target"),
    ("unknown selector", [{**CRASH, "target": "role:nothing"}], [], "faults[0].target"),
    (
        "missing node in a group",
        [{"at": 0.5, "action": "partition", "groups": [["zz"]]}],
        [],
        "faults[0].groups",
    ),
    # actions and targets
    ("unknown action", [{**CRASH, "action": "explode"}], [], "faults[0].action"),
    ("missing action", [{"at": 0.5, "target": "h0"}], [], "faults[0].action"),
    ("missing at", [{"action": "crash", "target": "h0"}], [], "faults[0].at"),
    ("missing target", [{"at": 0.5, "action": "crash"}], [], "faults[0].target"),
    ("missing window target", [{"at": 0.5, "action": "loss", "p": 0.1}], [], "faults[0].target"),
    ("target not a string", [{**CRASH, "target": 3}], [], "faults[0].target"),
    (
        "target for partition",
        [{"at": 0.5, "action": "partition", "target": "h0", "groups": [["h0"]]}],
        [],
        "faults[0].target",
    ),
    (
        "target for heal",
        [
            {"at": 0.5, "action": "partition", "groups": [["h0"]]},
            {"at": 0.6, "action": "heal", "target": "h0"},
        ],
        [],
        "faults[1].target",
    ),
    ("partition without groups", [{"at": 0.5, "action": "partition"}], [], "faults[0].groups"),
    ("unknown key", [{**CRASH, "colour": "red"}], [], "faults[0].colour"),
    # contradictions
    ("crash twice", [CRASH, {**CRASH, "at": 0.6}], [], "faults[1].action"),
    ("crash during a crash's for", [{**CRASH, "for": 1}, {**CRASH, "at": 0.6}], [], "faults[1].action"),
    ("recover while up", [{**CRASH, "action": "recover"}], [], "faults[0].action"),
    ("resume without pause", [{**CRASH, "action": "resume"}], [], "faults[0].action"),
    (
        "pause twice",
        [{**CRASH, "action": "pause"}, {**CRASH, "at": 0.6, "action": "pause"}],
        [],
        "faults[1].action",
    ),
    (
        "pause a crashed node",
        [{**CRASH, "for": 1}, {**CRASH, "at": 0.6, "action": "pause"}],
        [],
        "faults[1].action",
    ),
    ("link_up while up", [{"at": 0.5, "action": "link_up", "target": "h0-hub"}], [], "faults[0].action"),
    (
        "link_down twice",
        [
            {"at": 0.5, "action": "link_down", "target": "h0-hub"},
            {"at": 0.6, "action": "link_down", "target": "hub->h0"},
        ],
        [],
        "faults[1].action",
    ),
    ("heal without partition", [{"at": 0.5, "action": "heal"}], [], "faults[0].action"),
    (
        "partition twice",
        [
            {"at": 0.5, "action": "partition", "groups": [["h0"]]},
            {"at": 0.6, "action": "partition", "groups": [["h1"]]},
        ],
        [],
        "faults[1].action",
    ),
    (
        "two loss windows on a link",
        [
            {**LOSS, "target": "h0-hub", "p": 0.1, "for": 1},
            {**LOSS, "at": 0.6, "target": "hub->h0", "p": 0.2},
        ],
        [],
        "faults[1].action",
    ),
    (
        "loss window inside one on all",
        [{**LOSS, "p": 0.1}, {**LOSS, "at": 1.0, "target": "h0-hub", "p": 0.2, "for": 0.1}],
        [],
        "faults[1].action",
    ),
    (
        "two latency windows",
        [
            {"at": 0.5, "action": "latency", "target": "all", "add": "1ms"},
            {"at": 0.7, "action": "latency", "target": "all", "factor": 2},
        ],
        [],
        "faults[1].action",
    ),
    # times
    ("at = duration", [{**CRASH, "at": 2}], [], "faults[0].at"),
    ("at beyond the run", [{**CRASH, "at": "3s"}], [], "faults[0].at"),
    ("negative at", [{**CRASH, "at": -1}], [], "faults[0].at"),
    ("negative at string", [{**CRASH, "at": "-5ms"}], [], "faults[0].at"),
    ("at not a number", [{**CRASH, "at": math.nan}], [], "faults[0].at"),
    ("for = 0", [{**CRASH, "for": 0}], [], "faults[0].for"),
    ("negative for", [{**CRASH, "for": "-1s"}], [], "faults[0].for"),
    ("for on recover", [CRASH, {**CRASH, "at": 0.6, "action": "recover", "for": 1}], [], "faults[1].for"),
    (
        "for on heal",
        [{"at": 0.5, "action": "partition", "groups": [["h0"]]}, {"at": 0.6, "action": "heal", "for": 1}],
        [],
        "faults[1].for",
    ),
    # probabilities and window parameters
    ("p above 1", [{**LOSS, "p": 1.5}], [], "faults[0].p"),
    ("p below 0", [{**LOSS, "p": -0.1}], [], "faults[0].p"),
    ("p_gb above 1", [{**LOSS, "p_gb": 1.5, "p_bg": 0.5}], [], "faults[0].p_gb"),
    ("p_bg below 0", [{**LOSS, "p_gb": 0.5, "p_bg": -0.5}], [], "faults[0].p_bg"),
    ("loss_bad above 1", [{**LOSS, "p_gb": 0.5, "p_bg": 0.5, "loss_bad": 2}], [], "faults[0].loss_bad"),
    ("loss_good below 0", [{**LOSS, "p_gb": 0.5, "p_bg": 0.5, "loss_good": -1}], [], "faults[0].loss_good"),
    (
        "probability above 1",
        [{"at": 0.5, "action": "duplicate", "target": "all", "probability": 1.2}],
        [],
        "faults[0].probability",
    ),
    ("Gilbert–Elliott with only p_gb", [{**LOSS, "p_gb": 0.5}], [], "faults[0].p"),
    ("Gilbert–Elliott with only p_bg", [{**LOSS, "p_bg": 0.5}], [], "faults[0].p"),
    ("both p and Gilbert–Elliott", [{**LOSS, "p": 0.1, "p_gb": 0.5, "p_bg": 0.5}], [], "faults[0].p"),
    ("loss without parameters", [LOSS], [], "faults[0].p"),
    ("latency without parameters", [{"at": 0.5, "action": "latency", "target": "all"}], [], "faults[0].add"),
    (
        "negative latency factor",
        [{"at": 0.5, "action": "latency", "target": "all", "factor": -1}],
        [],
        "faults[0].factor",
    ),
    (
        "negative latency add",
        [{"at": 0.5, "action": "latency", "target": "all", "add": "-1ms"}],
        [],
        "faults[0].add",
    ),
    ("reorder without jitter", [{"at": 0.5, "action": "reorder", "target": "all"}], [], "faults[0].jitter"),
    (
        "duplicate without probability",
        [{"at": 0.5, "action": "duplicate", "target": "all"}],
        [],
        "faults[0].probability",
    ),
    # parameters that belong to another action
    ("p on crash", [{**CRASH, "p": 0.5}], [], "faults[0].p"),
    ("groups on crash", [{**CRASH, "groups": [["h0"]]}], [], "faults[0].groups"),
    ("jitter on loss", [{**LOSS, "p": 0.5, "jitter": "1ms"}], [], "faults[0].jitter"),
    ("one_way on loss", [{**LOSS, "p": 0.5, "one_way": True}], [], "faults[0].one_way"),
    ("probability on loss", [{**LOSS, "probability": 0.5}], [], "faults[0].probability"),
    (
        "add on reorder",
        [{"at": 0.5, "action": "reorder", "target": "all", "jitter": "1ms", "add": "1ms"}],
        [],
        "faults[0].add",
    ),
    # nemeses
    ("nemesis mttf = 0", [], [{"kind": "crash", "mttf": 0}], "nemesis[0].mttf"),
    ("nemesis negative mttf", [], [{"kind": "crash", "mttf": "-1s"}], "nemesis[0].mttf"),
    ("nemesis mttr = 0", [], [{"kind": "crash", "mttr": 0}], "nemesis[0].mttr"),
    ("unknown nemesis kind", [], [{"kind": "meteor"}], "nemesis[0].kind"),
    ("nemesis without kind", [], [{"mttf": 1}], "nemesis[0].kind"),
    ("unknown nemesis mode", [], [{"kind": "partition", "mode": "thirds"}], "nemesis[0].mode"),
    ("nemesis unknown selector", [], [{"kind": "crash", "targets": "role:nothing"}], "nemesis[0].targets"),
    ("nemesis missing node", [], [{"kind": "crash", "targets": ["zz"]}], "nemesis[0].targets"),
    ("partition nemesis of one node", [], [{"kind": "partition", "targets": ["h0"]}], "nemesis[0].targets"),
    ("nemesis fraction above 1", [], [{"kind": "flaky_links", "fraction": 2}], "nemesis[0].fraction"),
    ("nemesis loss above 1", [], [{"kind": "flaky_links", "loss": 2}], "nemesis[0].loss"),
    ("nemesis negative start", [], [{"kind": "crash", "start": "-1s"}], "nemesis[0].start"),
    ("nemesis unknown key", [], [{"kind": "crash", "colour": 1}], "nemesis[0].colour"),
]


def _scenario(
    faults: list[dict[str, Any]], nemesis: list[dict[str, Any]], base: dict[str, Any] = BASE
) -> dict[str, Any]:
    return {**base, "faults": faults, "nemesis": nemesis}


def _raises(data: dict[str, Any]) -> SimError:
    with pytest.raises(SimError) as info:
        simulate(Scenario.from_dict(data))
    return info.value


@pytest.mark.parametrize(("faults", "nemesis", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_fault_input_names_its_field(
    faults: list[dict[str, Any]], nemesis: list[dict[str, Any]], field: str
) -> None:
    err = _raises(_scenario(faults, nemesis))
    assert err.field == field
    assert str(err).startswith(f"{field} = ")
    assert "\n" not in str(err)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # nan, inf and -inf are spelled the same in TOML
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").isalnum() and key.isascii() else json.dumps(key)


def _write(path: Path, data: dict[str, Any]) -> Path:
    """``data`` as TOML: scalars and inline tables at the top, then ``[[faults]]`` and ``[[nemesis]]``."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if k not in ("faults", "nemesis")]
    for name in ("faults", "nemesis"):
        for entry in data.get(name, []):
            lines.append(f"\n[[{name}]]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in entry.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("faults", "nemesis", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_cli_prints_one_line_and_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    faults: list[dict[str, Any]],
    nemesis: list[dict[str, Any]],
    field: str,
) -> None:
    path = _write(tmp_path / "bad.toml", _scenario(faults, nemesis))
    assert main(["simulate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"sim: error: {field} = ")


def test_the_toml_writer_round_trips(tmp_path: Path) -> None:
    data = _scenario([{**LOSS, "p_gb": 0.1, "p_bg": 0.5, "for": "1s"}], [{"kind": "crash", "mttf": "1s"}])
    assert Scenario.from_toml(_write(tmp_path / "ok.toml", data)) == Scenario.from_dict(data)


def test_contradictions_are_found_before_anything_runs() -> None:
    # the Scenario is fine on its own; building the run finds the contradiction
    data = _scenario([CRASH, {**CRASH, "at": 1.5}], [])
    Scenario.from_dict(data)
    assert _raises(data).field == "faults[1].action"


def test_the_end_of_a_for_window_can_clash_too() -> None:
    # a crash for 1 s, recovered by hand before the window ends: the window's own recover finds h0 up
    err = _raises(_scenario([{**CRASH, "for": 1}, {**CRASH, "action": "recover", "at": 1.2}], []))
    assert (err.field, err.value) == ("faults[0].for", 1.0)
    assert "end (recover) is consistent with 'h0' being up at 1.5 s" in str(err)


# -- what is accepted ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "nodes"),
    [
        ("h2", "h2"),
        (["h2", "h0", "h2"], "h2,h0"),
        ("producers", "h0"),
        ("consumers", "h1"),
        ("broker", "hub"),
        ("hosts", "h0,h1,h2"),
        ("role:switch", "hub"),
        (["consumers", "broker"], "h1,hub"),
    ],
)
def test_node_selectors(target: str | list[str], nodes: str) -> None:
    result = simulate(Scenario.from_dict(_scenario([{**CRASH, "target": target, "for": 0.5}], [], BROKERED)))
    assert result.fault_log[0][1:3] == ("crash", nodes)
    assert result.fault_log[1][1:3] == ("recover", nodes)


@pytest.mark.parametrize(
    ("target", "links"),
    [
        ("h0-hub", "h0->hub,hub->h0"),
        ("hub->h0", "hub->h0"),
        (["h0-hub", "h1->hub"], "h0->hub,hub->h0,h1->hub"),
        ("all", "hub->h0,hub->h1,hub->h2,h0->hub,h1->hub,h2->hub"),
    ],
)
def test_link_targets(target: str | list[str], links: str) -> None:
    result = simulate(Scenario.from_dict(_scenario([{**LOSS, "target": target, "p": 0.1, "for": 0.5}], [])))
    assert result.fault_log == [(0.5, "loss", links, "p=0.1"), (1.0, "loss_end", links, "p=0.1")]


def test_faults_back_to_back_on_one_target_need_a_gap() -> None:
    # a 'for' window's end is applied after an action scheduled at the same instant, so this reads as a
    # crash of a crashed node; leave any gap between them instead
    back_to_back = [{**CRASH, "for": 0.5}, {**CRASH, "at": 1.0, "for": 0.5}]
    assert _raises(_scenario(back_to_back, [])).field == "faults[1].action"
    with_gap = [{**CRASH, "for": 0.5}, {**CRASH, "at": 1.001, "for": 0.5}]
    assert [a for _, a, *_ in simulate(Scenario.from_dict(_scenario(with_gap, []))).fault_log] == [
        "crash",
        "recover",
        "crash",
        "recover",
    ]


# -- accepted but should not be (bugs, recorded) ----------------------------------------------------
ACCEPTED = [
    ("empty target list", [{**CRASH, "target": []}], "faults[0].target"),
    ("empty link list", [{**LOSS, "target": [], "p": 0.5}], "faults[0].target"),
    ("loss_good with a Bernoulli p", [{**LOSS, "p": 0.1, "loss_good": 0.5}], "faults[0].loss_good"),
    ("empty partition group", [{"at": 0.5, "action": "partition", "groups": [[]]}], "faults[0].groups"),
    (
        "node in two partition groups",
        [{"at": 0.5, "action": "partition", "groups": [["h0", "h1"], ["h1"]]}],
        "faults[0].groups",
    ),
]


@pytest.mark.parametrize(("faults", "field"), [a[1:] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_meaningless_fault_is_refused(faults: list[dict[str, Any]], field: str) -> None:
    assert _raises(_scenario(faults, [])).field == field


def test_broker_selector_without_a_broker_names_the_fault() -> None:
    assert _raises(_scenario([{**CRASH, "target": "broker"}], [])).field == "faults[0].target"


def test_clash_at_the_end_of_a_for_window_names_the_fault() -> None:
    err = _raises(_scenario([{**CRASH, "action": "pause", "for": 1}, {**CRASH, "at": 0.6}], []))
    assert (err.field, err.value) == ("faults[0].for", 1.0)
    assert str(err) == (
        "faults[0].for = 1.0: expected a window whose end (resume) is consistent with 'h0' being not paused"
        " at 1.5 s"
    )


def test_nemesis_stop_before_start_is_refused() -> None:
    assert (
        _raises(_scenario([], [{"kind": "crash", "start": "1s", "stop": "0.5s"}])).field == "nemesis[0].stop"
    )


# -- sim simulate --check --------------------------------------------------------------------------
DUPLICATES = _scenario([{"at": 0, "action": "duplicate", "target": "all", "probability": 0.5}], [])


def test_check_exits_1_and_prints_the_first_violations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "dup.toml", DUPLICATES)
    assert main(["simulate", str(path), "--check"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("check: "))
    assert "violation(s) of no_duplicates" in lines[head]
    shown = lines[head + 1 :]
    assert 1 <= len(shown) <= 5
    assert all(
        line.strip().startswith("obligation ") and ": no_duplicates: delivered " in line for line in shown
    )


def test_check_exits_0_for_a_clean_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = _scenario(
        [
            {**CRASH, "target": "h2", "for": 0.5},
            {"at": 1, "action": "latency", "target": "all", "add": "1ms"},
        ],
        [],
    )
    path = _write(tmp_path / "clean.toml", clean)
    assert main(["simulate", str(path), "--check"]) == 0
    assert "check: every at_most_once promise held" in capsys.readouterr().out


def test_without_check_a_violation_does_not_change_the_exit_status(tmp_path: Path) -> None:
    assert main(["simulate", str(_write(tmp_path / "dup.toml", DUPLICATES))]) == 0


def test_check_json_lists_the_violations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "dup.toml", DUPLICATES)
    assert main(["simulate", str(path), "--check", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    violations = data["violations"]
    assert 0 < len(violations) <= data["summary"]["duplicates"]  # one per obligation delivered twice or more
    assert set(violations[0]) == {"obligation", "rule", "evidence"}
    assert {v["rule"] for v in violations} == {"no_duplicates"}
    clean = _write(tmp_path / "clean.toml", _scenario([], []))
    assert main(["simulate", str(clean), "--check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["violations"] == []


# -- the documented example ------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "experiments" / "scenarios" / "faults_demo.toml"


def test_the_documented_example_is_the_demo_file_and_keeps_its_promises() -> None:
    text = (ROOT / "docs" / "faults.md").read_text(encoding="utf-8")
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    assert block == DEMO.read_text(encoding="utf-8")
    scenario = Scenario.from_toml(DEMO)
    kinds = {f.action for f in scenario.faults}
    assert kinds >= {"crash", "pause", "partition", "link_down", "loss", "latency", "duplicate", "reorder"}
    result = simulate(scenario)
    assert result.check() == []
    assert result.summary["lost"] == result.summary["in_flight"] == 0
    assert result.summary["duplicates"] > 0
    assert result.summary["faults"] == 10
    assert len(result.fault_log) == 2 * 10  # eight scripted windows and two drawn crashes, each undone
