"""Plug-in patterns: named by ``file.py:Class`` or by an entry point, validated, run, swept and hashed like
built-ins; their failures name the scenario key (and, for a failure in their code, show its frames).

Every plug-in here is written to ``tmp_path``: no file under ``sim/`` changes to add one.
"""

from __future__ import annotations

import math
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from sim.config.scenario import Scenario
from sim.core.errors import SimError
from sim.patterns import registry
from sim.patterns.registry import PluginError, pattern_class
from sim.run.simulate import simulate
from sim.sweep.engines import execute, run_all
from sim.sweep.experiment import Experiment, config_hash

ECHO = '''
"""A test plug-in: point-to-point under another name, with options and a measure of its own."""
from sim.core.errors import SimError
from sim.patterns import Measure, Operation, PointToPoint
from sim.patterns.base import check_keys


class Echo:
    """Point-to-point under another name, recording how many messages it was asked to copy."""

    name = "echo"
    measures = (Measure("echo_marks", "samples", "s", "a mark the plug-in recorded"),)
    operation = Operation("a message delivered to its consumer")

    def __init__(self, fanout=1, fail=""):
        self.fanout = fanout
        self.fail = fail

    @classmethod
    def from_options(cls, options):
        check_keys(options, ("fanout", "fail", "sloppy"))
        fanout = options.get("fanout", 1)
        if isinstance(fanout, bool) or not isinstance(fanout, int) or fanout < 1:
            raise SimError("fanout", fanout, "a whole number >= 1")
        if "sloppy" in options:
            return cls(options["missing"])  # a plug-in's own bug: KeyError
        return cls(fanout, options.get("fail", ""))

    def install(self, world):
        if self.fail == "install":
            world.node("nowhere-" + str(self.fanout))
        PointToPoint().install(world)
        marks = [float(self.fanout), 2.0 * self.fanout]
        world.reporters.append(lambda: {"echo_marks": marks})
        if self.fail == "run":
            world.ctx.env.process(self._later(world.ctx.env))

    def _later(self, env):
        yield env.timeout(0.25)
        self.explode()

    def explode(self):
        return 1 / 0
'''


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scenario folder with ``patterns/echo.py`` and ``echo.toml`` naming it by a relative path."""
    write(tmp_path, "patterns/echo.py", ECHO)
    write(
        tmp_path,
        "echo.toml",
        """
        pattern = "patterns/echo.py:Echo"
        duration = "1s"
        [echo]
        fanout = 3
        """,
    )
    return tmp_path


def load_error(call: object) -> SimError:
    with pytest.raises(SimError) as info:
        call()  # type: ignore[operator]
    return info.value


# -- by path -------------------------------------------------------------------------------------------------


def test_a_plugin_named_by_path_runs_from_a_scenario_file(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # relative to the scenario's folder, not here
    scenario = Scenario.from_toml(project / "echo.toml")
    assert scenario.pattern == f"{project / 'patterns' / 'echo.py'}:Echo"
    assert scenario.options == {"echo": {"fanout": 3}}
    result = simulate(scenario)
    # the plug-in delegates to point-to-point: the same offered workload, the same numbers
    builtin = simulate(scenario.with_updates({"pattern": "point_to_point"}))
    for key in ("offered", "delivered", "latency_p50", "op_completed", "transmissions"):
        assert result.summary[key] == builtin.summary[key]
    assert result.summary["offered"] > 50
    # its declared samples are summarized like a built-in's
    assert result.summary["echo_marks_mean"] == 4.5
    assert result.summary["echo_marks_p50"] == 4.5
    assert "echo_marks_mean" not in builtin.summary
    assert result.check() == []


def test_a_scenario_built_in_python_takes_a_relative_path_from_the_working_directory(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "patterns")
    scenario = Scenario(pattern="echo.py:Echo", duration="1s", echo={"fanout": 2})
    assert scenario.pattern == f"{project / 'patterns' / 'echo.py'}:Echo"
    assert simulate(scenario).summary["echo_marks_mean"] == 3.0
    # a scenario written out and read back keeps the absolute path: it runs from any folder
    monkeypatch.chdir(project)
    again = Scenario.from_dict(scenario.to_dict())
    assert again == scenario


def test_sweeping_pattern_over_a_builtin_and_a_plugin(project: Path) -> None:
    plugin = Scenario.from_toml(project / "echo.toml")
    exp = Experiment("mix", base=plugin, grid={"pattern": ["point_to_point", plugin.pattern]})
    runs = exp.runs()
    assert [r.scenario.pattern for r in runs] == ["point_to_point", plugin.pattern]
    assert runs[0].scenario.options == {}  # the plug-in's table goes with it
    assert runs[1].scenario.options == {"echo": {"fanout": 3}}
    # and the other way: a built-in base, the plug-in with its table as a labelled variant
    base = Scenario(duration="1s")
    variants = {"p2p": {}, "echo": {"pattern": plugin.pattern, "echo": {"fanout": 5}}}
    runs = Experiment("mix2", base=base, grid={"design": variants}).runs()
    assert runs[1].scenario.options == {"echo": {"fanout": 5}}
    assert base.with_updates({"pattern": plugin.pattern, "echo.fanout": 4}).options == {"echo": {"fanout": 4}}


# -- by entry point ------------------------------------------------------------------------------------------


def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str = "echo_plugin:Echo") -> None:
    """An installed distribution ``echo-dist 1.2`` registering ``echo`` in the ``sim.patterns`` group."""
    site = tmp_path / "site"
    write(site, "echo_plugin.py", ECHO)
    write(site, "echo_dist-1.2.dist-info/METADATA", "Metadata-Version: 2.1\nName: echo-dist\nVersion: 1.2\n")
    write(site, "echo_dist-1.2.dist-info/entry_points.txt", f"[sim.patterns]\necho = {value}\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "echo_plugin", raising=False)  # another test's installation
    monkeypatch.setattr(registry, "_ENTRY_CLASSES", {})


def test_a_plugin_named_by_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed(tmp_path, monkeypatch)
    scenario = Scenario(pattern="echo", duration="1s", echo={"fanout": 2})
    assert simulate(scenario).summary["echo_marks_mean"] == 3.0
    where = registry.source("echo")
    assert (where.kind, where.origin) == ("entry point", "entry point of echo-dist 1.2")
    assert where.path == str(tmp_path / "site" / "echo_plugin.py")
    listed = {name: (src.origin, doc) for name, src, doc in registry.available()}
    assert listed["echo"] == (
        "entry point of echo-dist 1.2",
        "Point-to-point under another name, recording how many messages it was asked to copy.",
    )
    assert listed["queue"][0] == "built-in"
    assert registry.digest("echo") == registry.digest(f"{tmp_path / 'site' / 'echo_plugin.py'}:Echo")


def test_an_entry_point_that_does_not_load_is_listed_with_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed(tmp_path, monkeypatch, value="echo_plugin:Missing")
    listed = {name: doc for name, _, doc in registry.available()}
    assert listed["echo"].startswith("cannot be used: an entry point that loads (echo_plugin:Missing")
    error = load_error(lambda: Scenario(pattern="echo"))
    assert str(error).startswith("pattern = 'echo': expected an entry point that loads (echo_plugin:Missing")


def test_a_run_of_an_entry_point_replays_only_on_the_code_that_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay record keeps the digest of an installed plug-in's code; replay refuses other code."""
    from sim.sweep.replay import replay
    from sim.sweep.runner import run_experiment
    from sim.sweep.store import ResultStore, read_parquet, write_parquet

    installed(tmp_path, monkeypatch)
    exp = Experiment("ep", base=Scenario(pattern="echo", duration="1s"), grid={"echo.fanout": [1, 2]})
    folder = tmp_path / "results"
    runs = run_experiment(exp, out=folder, engine="serial", quiet=True)
    records = ResultStore(folder).replays()
    assert {r["pattern_code"] for r in records.values()} == {registry.digest("echo")}
    first = str(runs["run_id"].iloc[0])
    assert replay(folder, first).summary["echo_marks_mean"] == 1.5 * runs["echo.fanout"].iloc[0]
    module = tmp_path / "site" / "echo_plugin.py"
    module.write_text(module.read_text(encoding="utf-8") + "\n# another release\n", encoding="utf-8")
    error = load_error(lambda: replay(folder, first))
    assert error.field == "pattern" and error.value == "echo"
    then = next(iter(records.values()))["pattern_code"]
    assert str(error) == (
        f"pattern = 'echo': expected the plug-in code that ran {first} (sha256 {then[:12]}; installed now: "
        f"sha256 {registry.digest('echo')[:12]}): install the version that ran it to replay this run"
    )
    shutil.rmtree(folder / "runs")  # the records as replay.parquet keeps them: the digest is kept too
    assert {r["pattern_code"] for r in ResultStore(folder).replays().values()} == set(
        r["pattern_code"] for r in records.values()
    )
    assert load_error(lambda: replay(folder, first)).field == "pattern"
    table = read_parquet(folder / "replay.parquet")  # as a sim that kept no digest wrote it
    write_parquet(table.drop(columns="pattern_code"), folder / "replay.parquet")
    assert "the folder predates them" in str(load_error(lambda: replay(folder, first)))


# -- engines and results keys --------------------------------------------------------------------------------


def test_a_sweep_on_the_processes_engine_gives_the_serial_rows(project: Path) -> None:
    plugin = Scenario.from_toml(project / "echo.toml")
    exp = Experiment("e", base=plugin, grid={"echo.fanout": [1, 2]}, replications=1)
    payloads = [
        {
            "scenario": s.scenario.to_dict(),
            "params": s.params,
            "point": s.point,
            "replication": s.replication,
            "seed": s.seed,
            "config_hash": s.config_hash,
        }
        for s in exp.runs()
    ]
    rows: dict[str, list[dict[str, object]]] = {"serial": [], "processes": []}
    for engine, out in rows.items():
        run_all(payloads, out.append, engine=engine, workers=2)
        out.sort(key=lambda r: str(r["config_hash"]))
    for serial, parallel in zip(rows["serial"], rows["processes"], strict=True):
        assert serial["status"] == parallel["status"] == "ok", (serial["error"], parallel["error"])
        assert plain(serial) == plain(parallel)
    assert sorted(r["echo_marks_mean"] for r in rows["processes"]) == [1.5, 3.0]


def plain(row: dict[str, object]) -> dict[str, object]:
    """A row without its wall time, NaN as None (NaN != NaN)."""
    return {
        k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items() if k != "wall_time"
    }


def test_a_worker_runs_the_plugin_text_the_sweep_sent(project: Path) -> None:
    """A worker without the file (a dask worker elsewhere) runs the bytes in the payload."""
    data = Scenario.from_toml(project / "echo.toml").to_dict()
    gone = project / "moved" / "echo.py"
    data["pattern"] = f"{gone}:Echo"
    text = (project / "patterns" / "echo.py").read_bytes()
    payload = {"scenario": data, "params": {}, "point": 0, "replication": 0, "seed": 0, "config_hash": "x"}
    assert execute(payload)["status"] == "failed"
    row = execute({**payload, "plugins": {str(gone): text}, "check": True})
    assert row["status"] == "ok", row["error"]
    assert row["echo_marks_mean"] == 4.5
    assert row["_violations"] == {}  # the check (sim explore's) ran with the plug-in lent too
    with pytest.raises(SimError, match="does not exist"):  # the text was lent for that run only
        pattern_class(f"{gone}:Echo")


def test_editing_the_plugin_file_changes_the_config_hash(project: Path) -> None:
    scenario = Scenario.from_toml(project / "echo.toml")
    before = config_hash(scenario)
    assert config_hash(Scenario.from_toml(project / "echo.toml")) == before
    path = project / "patterns" / "echo.py"
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert config_hash(scenario) != before
    assert registry.digest("queue") == ""  # built-ins add nothing: their hashes are unchanged
    assert registry.sources("queue") == {}
    assert registry.sources(scenario.pattern) == {str(path): path.read_bytes()}


def test_a_moved_project_keeps_its_plugin_runs_config_hashes(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # the key holds the plug-in's code and file name, not the folder it sits in: a checkout elsewhere reuses
    # its stored runs (a topology file is keyed the same way)
    moved = tmp_path_factory.mktemp("moved") / "project"
    shutil.copytree(project, moved)
    here, there = Scenario.from_toml(project / "echo.toml"), Scenario.from_toml(moved / "echo.toml")
    assert here.pattern != there.pattern
    assert config_hash(here) == config_hash(there)


def test_an_edited_plugin_file_runs_as_edited(project: Path) -> None:
    scenario = Scenario.from_toml(project / "echo.toml")
    assert simulate(scenario).summary["echo_marks_mean"] == 4.5
    path = project / "patterns" / "echo.py"
    path.write_text(path.read_text(encoding="utf-8").replace("2.0 * self.fanout", "4.0 * self.fanout"))
    assert simulate(scenario).summary["echo_marks_mean"] == 7.5


def test_a_run_replays_on_the_plugin_text_it_ran(project: Path) -> None:
    from sim.sweep.replay import differences, replay
    from sim.sweep.runner import run_experiment

    plugin = Scenario.from_toml(project / "echo.toml")
    exp = Experiment("replayed", base=plugin, grid={"echo.fanout": [1, 2]})
    folder = project / "results"
    runs = run_experiment(exp, out=folder, engine="serial", quiet=True)
    path = project / "patterns" / "echo.py"
    path.write_text(path.read_text(encoding="utf-8").replace("2.0 * self.fanout", "9.0 * self.fanout"))
    assert len(runs) == 2
    for row in runs.to_dict("records"):
        result = replay(folder, str(row["run_id"]))
        assert result.summary["echo_marks_mean"] == row["echo_marks_mean"] == 1.5 * row["echo.fanout"]
        assert differences(result.summary, row, ["echo.fanout"]) == []
    path.unlink()  # the stored text is enough
    assert replay(folder, str(runs["run_id"].iloc[0])).summary["echo_marks_mean"] == 1.5


def test_a_plugin_file_in_latin_1_is_swept_and_replayed(project: Path) -> None:
    """A plug-in is shipped and stored as its bytes: one that is not UTF-8 (a PEP 263 coding line, Latin-1
    bytes) runs in a sweep on a worker and replays as it runs under ``sim simulate``."""
    from sim.sweep.replay import differences, replay
    from sim.sweep.runner import run_experiment

    path = project / "patterns" / "echo.py"
    text = "# -*- coding: latin-1 -*-\n# d\u00e9j\u00e0 vu\n" + textwrap.dedent(ECHO)
    path.write_bytes(text.encode("latin-1"))
    plugin = Scenario.from_toml(project / "echo.toml")
    assert simulate(plugin).summary["echo_marks_mean"] == 4.5
    assert registry.sources(plugin.pattern) == {str(path): path.read_bytes()}
    exp = Experiment("latin", base=plugin, grid={"echo.fanout": [1, 2]})
    folder = project / "results"
    runs = run_experiment(exp, out=folder, engine="processes", workers=2, quiet=True)
    assert list(runs["status"]) == ["ok", "ok"], list(runs["error"])
    path.unlink()  # the stored bytes are enough
    for row in runs.to_dict("records"):
        result = replay(folder, str(row["run_id"]))
        assert result.summary["echo_marks_mean"] == 1.5 * row["echo.fanout"]
        assert differences(result.summary, row, ["echo.fanout"]) == []


# -- errors --------------------------------------------------------------------------------------------------


def test_a_missing_file_names_pattern(project: Path) -> None:
    error = load_error(lambda: Scenario(pattern=f"{project}/patterns/nope.py:Echo"))
    assert error.field == "pattern"
    assert "nope.py does not exist" in str(error)


def test_a_missing_class_names_pattern_and_what_the_file_defines(project: Path) -> None:
    error = load_error(lambda: Scenario(pattern=f"{project}/patterns/echo.py:Saga"))
    assert str(error) == (
        f"pattern = '{project}/patterns/echo.py:Saga': expected a class Saga in echo.py "
        "(classes defined there: Echo)"
    )


def test_a_path_without_a_class_names_pattern(project: Path) -> None:
    error = load_error(lambda: Scenario(pattern=f"{project}/patterns/echo.py"))
    assert error.field == "pattern"
    assert "'file.py:ClassName'" in str(error)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("    def install(self, world):", "Echo has no install"),
        ('    name = "echo"', "Echo has no name"),
        ("    operation = Operation", "Echo has no operation"),
    ],
)
def test_a_class_missing_part_of_the_protocol_says_which(tmp_path: Path, change: str, says: str) -> None:
    text = textwrap.dedent(ECHO)
    renamed = (
        change.replace("install", "installs").replace("name =", "label =").replace("operation =", "op =")
    )
    assert change in text
    path = write(tmp_path, "broken.py", text.replace(change, renamed))
    error = load_error(lambda: Scenario(pattern=f"{path}:Echo"))
    assert error.field == "pattern"
    assert "the pattern protocol: name, measures, operation, from_options, install" in str(error)
    assert says in str(error)


def test_a_plugin_may_not_take_a_builtin_name(tmp_path: Path) -> None:
    path = write(tmp_path, "clash.py", textwrap.dedent(ECHO).replace('name = "echo"', 'name = "queue"'))
    error = load_error(lambda: Scenario(pattern=f"{path}:Echo"))
    assert "not a built-in pattern or scenario key (Echo.name = 'queue')" in str(error)


def test_a_bad_option_names_the_plugin_table_key(project: Path) -> None:
    scenario = Scenario.from_toml(project / "echo.toml")
    error = load_error(lambda: scenario.with_updates({"echo.fanout": 0}))
    assert str(error) == "echo.fanout = 0: expected a whole number >= 1"
    error = load_error(lambda: scenario.with_updates({"echo.fanuot": 2}))
    assert str(error) == "echo.fanuot = 2: expected one of the keys fanout, fail, sloppy"
    # a table of a plug-in that is not the scenario's pattern has no owner to validate it
    error = load_error(lambda: Scenario(echo={"fanout": 2}))
    assert error.field == "echo"


def test_a_plugin_failing_in_its_own_validation_names_its_table_with_its_frames(project: Path) -> None:
    scenario = Scenario.from_toml(project / "echo.toml")
    with pytest.raises(PluginError) as info:
        scenario.with_updates({"echo.sloppy": True})
    error = info.value
    assert str(error).startswith("echo = {")
    assert "expected a table its plug-in accepts (from_options it raised KeyError: 'missing')" in str(error)
    assert [f.name for f in error.frames] == ["from_options"]


def test_a_plugin_file_that_fails_to_import_shows_its_frames(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.py", "def helper():\n    raise RuntimeError('no config here')\n\nhelper()\n")
    with pytest.raises(PluginError) as info:
        Scenario(pattern=f"{path}:Echo")
    assert str(info.value) == (
        f"pattern = '{path}:Echo': expected a file that imports cleanly "
        "(it raised RuntimeError: no config here)"
    )
    assert [(f.lineno, f.name) for f in info.value.frames] == [(4, "<module>"), (2, "helper")]
    syntax = write(tmp_path, "syntax.py", "class Echo(:\n")
    error = load_error(lambda: Scenario(pattern=f"{syntax}:Echo"))
    assert "a file of valid Python (invalid syntax, line 1)" in str(error)


def test_an_exception_in_a_plugin_during_a_run_keeps_its_frames(project: Path) -> None:
    scenario = Scenario.from_toml(project / "echo.toml").with_updates({"echo.fail": "run"})
    with pytest.raises(PluginError) as info:
        simulate(scenario)
    error = info.value
    assert error.field == "pattern"
    assert "(it raised ZeroDivisionError: division by zero at echo.py:" in str(error)
    assert [f.name for f in error.frames] == ["_later", "explode"]
    assert all(f.filename == str(project / "patterns" / "echo.py") for f in error.frames)
    assert error.describe_frames()[-1] == "    return 1 / 0"
    assert isinstance(error.__cause__, ZeroDivisionError)  # the original, for a debugger


def test_a_core_error_reached_through_a_plugin_is_blamed_on_the_plugin(project: Path) -> None:
    scenario = Scenario.from_toml(project / "echo.toml").with_updates({"echo.fail": "install"})
    with pytest.raises(PluginError) as info:
        simulate(scenario)
    assert "SimError: node = 'nowhere-3'" in str(info.value)
    assert [f.name for f in info.value.frames] == ["install"]


def test_a_failing_run_in_a_sweep_says_where_in_the_plugin(project: Path) -> None:
    data = Scenario.from_toml(project / "echo.toml").with_updates({"echo.fail": "run"}).to_dict()
    row = execute(
        {"scenario": data, "params": {}, "point": 0, "replication": 0, "seed": 0, "config_hash": "x"}
    )
    assert row["status"] == "failed"
    assert str(row["error"]).startswith("PluginError: pattern = ")
    line = textwrap.dedent(ECHO).splitlines().index("        return 1 / 0") + 1
    assert str(row["error"]).endswith(
        f"(it raised ZeroDivisionError: division by zero at echo.py:{line}, in explode)"
    )


def test_builtin_failures_are_not_blamed_on_a_plugin() -> None:
    assert registry.plugin_failure("queue", ValueError("x")) is None
    assert not math.isnan(simulate(Scenario(duration="1s")).summary["offered"])


@pytest.mark.parametrize(
    ("measure", "taken"),
    [
        ('Measure("retries", "count", "resends", "messages sent again")', "retries"),  # a core count
        ('Measure("latency", "samples", "s", "end-to-end times")', "latency_mean"),  # its summary names
        ('Measure("violations", "count", "rules", "broken")', "violations"),  # a checked sweep's column
    ],
)
def test_a_plugin_measure_may_not_take_a_figure_sim_reports(project: Path, measure: str, taken: str) -> None:
    # else the plug-in's number would silently replace sim's (the run's 'retries', say) in every report
    text = textwrap.dedent(ECHO).replace(
        'Measure("echo_marks", "samples", "s", "a mark the plug-in recorded")', measure
    )
    write(project, "patterns/echo.py", text)
    scenario = Scenario.from_toml(project / "echo.toml")
    error = load_error(lambda: simulate(scenario))
    assert str(error).startswith(
        "pattern = "
    ) and f"measures take no figure sim reports (Echo.measures: '{taken}')" in str(error)
