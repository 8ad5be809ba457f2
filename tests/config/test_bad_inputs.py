"""Every bad input is refused the same way: exit status 2, one line ``sim: error: <field> = <value>: expected
...`` on stderr naming the field, nothing on stdout, no traceback, and no file written.

One table of cases across scenario files, ``--set``, topology files (Python, GraphML, node-link JSON),
experiment scripts, fault schedules and command-line arguments. Each case runs the command in-process
(``sim.cli.main.main``) in its own empty folder, which is listed before and after; a few run as a process
too, to show that nothing reaches the process level (no traceback, no other exit status). Bad broker and
pattern settings are also checked through ``simulate`` (the ``SimError`` names the field first).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sim import Scenario, simulate
from sim.cli.main import main
from sim.core.errors import SimError

ROOT = Path(__file__).resolve().parents[2]
SIM = Path(sys.executable).with_name("sim")


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    field: str
    """The field the error line must name first (``sim: error: <field> = ``)."""
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    mention: str = ""
    """Text the line must also contain (the bad id, the cause)."""


# -- builders ---------------------------------------------------------------------------------------
def scenario(id: str, toml: str | bytes, fld: str, mention: str = "", **files: str | bytes) -> Case:
    return Case(id, ("simulate", "s.toml"), fld, {"s.toml": toml, **files}, mention)


def setting(id: str, sets: list[str], fld: str, mention: str = "") -> Case:
    argv = ["simulate", "s.toml"]
    for item in sets:
        argv += ["--set", item]
    return Case(id, tuple(argv), fld, {"s.toml": 'duration = "1s"\n'}, mention)


def topology(id: str, name: str, content: str | bytes, fld: str, mention: str = "", params: str = "") -> Case:
    toml = f'duration = "1s"\n[topology]\nname = "{name}"\n' + (f"params = {params}\n" if params else "")
    return Case(id, ("simulate", "s.toml"), fld, {"s.toml": toml, name: content}, mention)


STAR = 'duration = "2s"\n[topology]\nname = "star"\nparams = { n = 3 }\n'
QUEUE = STAR + 'pattern = "queue"\n[broker]\nnode = "hub"\n'


def fault(id: str, body: str, fld: str, mention: str = "", head: str = STAR) -> Case:
    return scenario(id, head + body, fld, mention)


HEAD = """\
import sys
from sim.sweep.experiment import Experiment, Sample
from sim.config.scenario import Scenario
BASE = Scenario(duration="1s", drain="0s")
"""


def experiment(id: str, body: str, fld: str, mention: str = "", *extra: str) -> Case:
    return Case(id, ("run", "exp.py", "--engine", "serial", *extra), fld, {"exp.py": HEAD + body}, mention)


GOOD_EXP = 'EXPERIMENT = Experiment("t", base=BASE)\n'


def run_args(id: str, extra: list[str], fld: str, mention: str = "", **files: str | bytes) -> Case:
    return Case(id, ("run", "exp.py", *extra), fld, {"exp.py": HEAD + GOOD_EXP, **files}, mention)


def command(id: str, argv: list[str], fld: str, mention: str = "", **files: str | bytes) -> Case:
    return Case(id, tuple(argv), fld, files, mention)


PY_OK = "import networkx as nx\ndef build():\n    return nx.Graph([('a', 'b')])\n"
GRAPHML = """<?xml version="1.0" encoding="UTF-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key id="d0" for="edge" attr.name="loss" attr.type="double"/>
  <graph edgedefault="undirected">
{body}
  </graph>
</graphml>
"""


def graphml(body: str) -> str:
    return GRAPHML.format(body=body)


BAD_PARQUET = b"PAR1 this is not a parquet file"


def _good_runs() -> bytes:
    """A small runs.parquet as ``sim run`` writes it (two patterns, two replications each)."""
    import io

    import pandas as pd

    rows = [
        {
            "pattern": p,
            "point": i,
            "replication": r,
            "seed": 100 + r,
            "config_hash": f"{i:08x}{r:08x}",
            "status": "ok",
            "error": "",
            "op_success_ratio": 1.0,
            "op_latency_p50": 0.002 + i / 1000,
            "op_latency_p99": 0.005 + i / 1000,
            "op_msgs_per_op": 7.0 + 7 * i,
            "op_duplicates_per_op": 0.0,
            "op_unfinished": 0.0,
            "stable": 1.0,
        }
        for i, p in enumerate(("point_to_point", "queue"))
        for r in range(2)
    ]
    out = io.BytesIO()
    pd.DataFrame(rows).to_parquet(out, index=False)
    return out.getvalue()


GOOD_RUNS = _good_runs()
GOOD_META = '{"experiment": "made", "swept": ["pattern"]}'

CASES: list[Case] = [
    # -- scenario files ---------------------------------------------------------------------------
    scenario("not utf-8", 'duration = "1s"\n\xff\xfe = 1\n'.encode("latin-1"), "scenario file", "UTF-8"),
    scenario("not toml", "duration = = 1\n", "scenario file", "valid TOML"),
    command("missing scenario file", ["simulate", "nowhere.toml"], "scenario file"),
    command("scenario file is a folder", ["simulate", "."], "scenario file"),
    scenario("unknown top-level key", "durtion = 1\n", "durtion"),
    scenario("unknown pattern", 'pattern = "gossip"\n', "pattern"),
    scenario("pattern not a string", "pattern = 3\n", "pattern"),
    scenario("negative duration", "duration = -1\n", "duration"),
    scenario("duration as a list", "duration = [1, 2]\n", "duration"),
    scenario("zero duration", "duration = 0\n", "duration"),
    scenario("duration without a number", 'duration = "long"\n', "duration"),
    scenario("duration beyond 1e7 s", 'duration = "1e9s"\n', "duration", "1e+07"),
    scenario("drain beyond 1e7 s", 'drain = "200d"\n', "drain"),
    scenario("infinite drain", 'drain = "inf"\n', "drain"),
    scenario("warm-up as long as the run", 'duration = "1s"\nwarmup = "1s"\n', "warmup"),
    scenario("negative seed", "seed = -1\n", "seed"),
    scenario("fractional seed", "seed = 1.5\n", "seed"),
    scenario("seed as text", 'seed = "7"\n', "seed"),
    scenario("trace as yes", 'trace = "yes"\n', "trace", "true or false"),
    scenario("trace as 1", "trace = 1\n", "trace"),
    scenario("links not a table", "links = 3\n", "links", "a table"),
    scenario("negative latency", '[links]\nlatency = "-1ms"\n', "links.latency"),
    scenario("loss above 1", "[links]\nloss = 1.5\n", "links.loss"),
    scenario("loss as a word", '[links]\nloss = "high"\n', "links.loss"),
    scenario("loss as a boolean", "[links]\nloss = true\n", "links.loss"),
    scenario("zero bandwidth", "[links]\nbandwidth = 0\n", "links.bandwidth"),
    scenario("unknown latency distribution", '[links]\nlatency = { dist = "weird" }\n', "links.latency.dist"),
    scenario("unknown links key", '[links]\ndelay = "1ms"\n', "links.delay"),
    scenario("zero servers", "[nodes]\nservers = 0\n", "nodes.servers"),
    scenario("role in the nodes table", '[nodes]\nrole = "db"\n', "nodes.role"),
    scenario("zero rate", "[workload]\nrate = 0\n", "workload.rate"),
    scenario("rate as a word", '[workload]\nrate = "fast"\n', "workload.rate"),
    scenario("negative size", "[workload]\nsize = -1\n", "workload.size"),
    scenario("zero producers", "[workload]\nproducers = 0\n", "workload.producers"),
    scenario(
        "a producer listed twice", STAR + '[workload]\nproducers = ["h0", "h0"]\n', "workload.producers"
    ),
    scenario("producer not in the topology", '[workload]\nproducers = ["zz"]\n', "workload.producers", "zz"),
    scenario("more consumers than hosts", "[workload]\nconsumers = 9\n", "workload.consumers"),
    scenario("unknown arrivals", '[workload]\narrivals = "bursty"\n', "workload.arrivals"),
    scenario("zipf exponent as text", '[workload]\nzipf_s = "1"\n', "workload.zipf_s"),
    scenario("unknown guarantee", '[delivery]\nguarantee = "exactly_once"\n', "delivery.guarantee"),
    scenario("backoff below 1", "[delivery]\nbackoff = 0.5\n", "delivery.backoff"),
    scenario("zero attempts", "[delivery]\nmax_attempts = 0\n", "delivery.max_attempts"),
    scenario(
        "zero ack timeout with acks",
        '[delivery]\nguarantee = "at_least_once"\nack_timeout = 0\n',
        "delivery.ack_timeout",
    ),
    scenario("durable as no", '[broker]\ndurable = "no"\n', "broker.durable", "true or false"),
    scenario("confirms as text", '[broker]\nconfirms = "true"\n', "broker.confirms"),
    scenario("negative broker capacity", "[broker]\ncapacity = -1\n", "broker.capacity"),
    scenario("broker node not in the topology", 'pattern = "queue"\n[broker]\nnode = "zz"\n', "broker.node"),
    scenario("queue pattern without a broker", 'pattern = "queue"\n', "broker.node"),
    scenario("zero max hops", "[network]\nmax_hops = 0\n", "network.max_hops"),
    scenario("empty queue name", '[queue]\nqueue = ""\n', "queue.queue"),
    scenario("via_broker as yes", '[request_reply]\nvia_broker = "yes"\n', "request_reply.via_broker"),
    scenario("options not a table", "options = 3\n", "options"),
    scenario("topology not a table", "topology = []\n", "topology"),
    scenario("unknown topology", '[topology]\nname = "lien"\n', "topology.name", "lien"),
    scenario("topology name not a string", "[topology]\nname = 3\n", "topology.name"),
    scenario(
        "bad generator parameter", '[topology]\nname = "ring"\nparams = { n = 2 }\n', "topology.params.n"
    ),
    scenario(
        "unknown generator parameter",
        '[topology]\nname = "tree"\nparams = { depht = 3 }\n',
        "topology.params.depht",
    ),
    # -- --set --------------------------------------------------------------------------------------
    setting("set without =", ["links.loss"], "--set"),
    setting("set without a key", ["=3"], "--set"),
    setting("set an unknown key", ["links.los=0.1"], "links.los"),
    setting("set an unknown table", ["nosuch.key=1"], "nosuch.key"),
    setting("set below a value", ["links.loss.x=1"], "links.loss.x"),
    setting("set loss above 1", ["links.loss=2"], "links.loss"),
    setting("set trace to yes", ["trace=yes"], "trace"),
    setting("set durable to 1", ["broker.durable=1"], "broker.durable"),
    setting("set duration to a word", ["duration=forever"], "duration"),
    setting("set zero producers", ["workload.producers=0"], "workload.producers"),
    setting("set an unknown guarantee", ["delivery.guarantee=exactly"], "delivery.guarantee"),
    setting("set a negative seed", ["seed=-3"], "seed"),
    setting("set a bad topology size", ["topology.params.n=0"], "topology.params.n"),
    setting("set faults to a number", ["faults=3"], "faults"),
    # -- topology files: Python -----------------------------------------------------------------
    topology("python syntax error", "t.py", "def build(:\n    pass\n", "topology.file", "SyntaxError"),
    topology(
        "python import error", "t.py", "import no_such_module_xyz\n", "topology.file", "ModuleNotFoundError"
    ),
    topology("python exits at import", "t.py", "import sys\nsys.exit(3)\n", "topology.file", "sys.exit(3)"),
    topology(
        "python exits in build",
        "t.py",
        "import sys\ndef build():\n    sys.exit()\n",
        "topology.file",
        "sys.exit(None)",
    ),
    topology(
        "python build raises", "t.py", "def build():\n    return {}['rack']\n", "topology.file", "KeyError"
    ),
    topology("python without build", "t.py", "X = 1\n", "topology.file", "defining build"),
    topology(
        "python build returns a number", "t.py", "def build():\n    return 3\n", "topology.file", "not int"
    ),
    topology("python unknown parameter", "t.py", PY_OK, "topology.params.size", params="{ size = 2 }"),
    topology(
        "python multigraph",
        "t.py",
        "import networkx as nx\ndef build():\n    return nx.MultiGraph([('a', 'b'), ('a', 'b')])\n",
        "topology",
        "multigraph",
    ),
    topology(
        "python edge loss above 1",
        "t.py",
        "import networkx as nx\ndef build():\n    g = nx.Graph()\n    g.add_edge('a', 'b', loss=2)\n"
        "    return g\n",
        "topology.edges[a-b].loss",
    ),
    topology(
        "python unknown role",
        "t.py",
        "import networkx as nx\ndef build():\n    g = nx.Graph([('a', 'b')])\n"
        "    g.nodes['a']['role'] = 'db'\n    return g\n",
        "topology.nodes[a].role",
    ),
    # -- topology files: GraphML -----------------------------------------------------------------
    topology("graphml not xml", "t.graphml", "not xml at all", "topology.file", "GraphML"),
    topology("graphml truncated", "t.graphml", "<graphml><graph", "topology.file", "ParseError"),
    topology(
        "graphml edge to an undeclared node",
        "t.graphml",
        graphml('<node id="a"/><node id="b"/><edge source="a" target="zz"/>'),
        "topology.file",
        "'zz' is not a node",
    ),
    topology(
        "graphml node declared twice",
        "t.graphml",
        graphml('<node id="a"/><node id="a"/><node id="b"/><edge source="a" target="b"/>'),
        "topology.file",
        "'a' repeats one",
    ),
    topology(
        "graphml loss above 1",
        "t.graphml",
        graphml('<node id="a"/><node id="b"/><edge source="a" target="b"><data key="d0">1.5</data></edge>'),
        "topology.edges[a-b].loss",
    ),
    topology(
        "graphml with parameters",
        "t.graphml",
        graphml('<node id="a"/>'),
        "topology.params.n",
        params="{ n = 2 }",
    ),
    # -- topology files: node-link JSON ----------------------------------------------------------
    topology("json invalid", "t.json", '{"nodes": [', "topology.file", "JSONDecodeError"),
    topology("json top level a list", "t.json", "[1, 2]", "topology.file", '"nodes"'),
    topology("json node without id", "t.json", '{"nodes": [{"name": "x"}]}', "topology.file", '"id"'),
    topology(
        "json edge to an undeclared node",
        "t.json",
        '{"nodes": [{"id": "a"}, {"id": "b"}], "edges": [{"source": "a", "target": "ghost"}]}',
        "topology.file",
        "edges[0].target = 'ghost' is not a node",
    ),
    topology(
        "json old links to an undeclared node",
        "t.json",
        '{"nodes": [{"id": "a"}], "links": [{"source": "x", "target": "a"}]}',
        "topology.file",
        "links[0].source = 'x'",
    ),
    topology(
        "json duplicate node id",
        "t.json",
        '{"nodes": [{"id": "a"}, {"id": "b"}, {"id": "a", "role": "broker"}], "edges": []}',
        "topology.file",
        "nodes[2].id = 'a' repeats one",
    ),
    topology(
        "json id and its text twice",
        "t.json",
        '{"nodes": [{"id": 1}, {"id": "1"}], "edges": []}',
        "topology.file",
        "repeats one",
    ),
    topology(
        "json directed as text",
        "t.json",
        '{"directed": "yes", "nodes": [{"id": "a"}, {"id": "b"}], "edges": [{"source": "a", "target": "b"}]}',
        "topology.file",
        "true or false",
    ),
    topology("json edges not a list", "t.json", '{"nodes": [{"id": "a"}], "edges": 3}', "topology.file"),
    topology(
        "json with parameters", "t.json", '{"nodes": [{"id": "a"}]}', "topology.params.n", params="{ n = 2 }"
    ),
    topology("json empty graph", "t.json", '{"nodes": [], "edges": []}', "topology", "at least one node"),
    # -- topology names: never a file the user did not point at -----------------------------------
    scenario(
        "name shadowed by a local topologies folder",
        '[topology]\nname = "mine"\n',
        "topology.name",
        "to use topologies/mine.py, write its path",
        **{"topologies/mine.py": "import sys\nsys.exit(5)\n"},
    ),
    scenario(
        "name reaching out of the project folder",
        '[topology]\nname = "../topologies/microservice_mesh"\n',
        "topology.name",
    ),
    scenario(
        "topology file of an unknown kind",
        '[topology]\nname = "t.yaml"\n',
        "topology.name",
        **{"t.yaml": "x"},
    ),
    scenario("missing topology file", '[topology]\nname = "gone.py"\n', "topology.name", "gone.py"),
    # -- experiment scripts ----------------------------------------------------------------------
    command("missing experiment script", ["run", "nowhere.py"], "experiment file"),
    command("experiment script not python", ["run", "s.toml"], "experiment file", **{"s.toml": "x = 1\n"}),
    experiment("script syntax error", "def (:\n", "experiment file", "SyntaxError"),
    experiment("script raises at import", "raise RuntimeError('boom')\n", "experiment file", "boom"),
    experiment("script exits at import", "sys.exit(4)\n", "experiment file", "sys.exit(4)"),
    experiment("script exits with 0", "sys.exit(0)\n", "experiment file", "sys.exit(0)"),
    experiment("script without EXPERIMENT", "X = 1\n", "experiment file"),
    experiment("EXPERIMENT not an Experiment", "EXPERIMENT = 3\n", "experiment file"),
    experiment(
        "experiment() raises", "def experiment():\n    raise ValueError('nope')\n", "experiment file", "nope"
    ),
    experiment(
        "experiment() exits", "def experiment():\n    sys.exit(2)\n", "experiment file", "sys.exit(2)"
    ),
    experiment(
        "grid key not a string",
        'EXPERIMENT = Experiment("t", base=BASE, grid={1: [1, 2]})\n',
        "experiment.grid",
    ),
    experiment(
        "points not mappings",
        'EXPERIMENT = Experiment("t", base=BASE, points=[1, 2])\n',
        "experiment.points[0]",
    ),
    experiment(
        "points a string", 'EXPERIMENT = Experiment("t", base=BASE, points="ab")\n', "experiment.points"
    ),
    experiment("base a dict", 'EXPERIMENT = Experiment("t", base={"duration": 1})\n', "experiment.base"),
    experiment(
        "grid values empty", 'EXPERIMENT = Experiment("t", base=BASE, grid={"seed": []})\n', "grid.seed"
    ),
    experiment(
        "grid values a string",
        'EXPERIMENT = Experiment("t", base=BASE, grid={"pattern": "queue"})\n',
        "grid.pattern",
    ),
    experiment(
        "zero replications",
        'EXPERIMENT = Experiment("t", base=BASE, replications=0)\n',
        "experiment.replications",
    ),
    experiment(
        "replications as text",
        'EXPERIMENT = Experiment("t", base=BASE, replications="2")\n',
        "experiment.replications",
    ),
    experiment(
        "zero quick replications",
        'EXPERIMENT = Experiment("t", base=BASE, quick_replications=0)\n',
        "experiment.quick_replications",
    ),
    experiment(
        "bad quick override",
        'EXPERIMENT = Experiment("t", base=BASE, quick={"duration": "soon"})\n',
        "experiment.quick.duration",
    ),
    experiment("name with a slash", 'EXPERIMENT = Experiment("a/b", base=BASE)\n', "experiment.name"),
    experiment("name not a string", "EXPERIMENT = Experiment(3, base=BASE)\n", "experiment.name"),
    experiment(
        "negative experiment seed", 'EXPERIMENT = Experiment("t", base=BASE, seed=-1)\n', "experiment.seed"
    ),
    experiment(
        "sample of zero points",
        'EXPERIMENT = Experiment("t", base=BASE, sample=Sample(0, {"links.loss": (0.0, 0.1)}))\n',
        "sample.n",
    ),
    experiment(
        "bad value at a grid point",
        'EXPERIMENT = Experiment("t", base=BASE, grid={"links.loss": [0.0, 2.0]})\n',
        "point 1 (links.loss=2.0): links.loss",
    ),
    experiment(
        "unknown key in the grid",
        'EXPERIMENT = Experiment("t", base=BASE, grid={"links.los": [0.1]})\n',
        "point 0 (links.los=0.1): links.los",
    ),
    experiment(
        "scenario error inside the script",
        'EXPERIMENT = Experiment("t", base=Scenario(trace="yes"))\n',
        "trace",
    ),
    # -- fault schedules ---------------------------------------------------------------------------
    fault(
        "unknown fault action",
        '[[faults]]\nat = 0.5\naction = "explode"\ntarget = "h0"\n',
        "faults[0].action",
    ),
    fault("fault without at", '[[faults]]\naction = "crash"\ntarget = "h0"\n', "faults[0].at"),
    fault("fault after the run", '[[faults]]\nat = "5s"\naction = "crash"\ntarget = "h0"\n', "faults[0].at"),
    fault(
        "fault on a missing node",
        '[[faults]]\nat = 0.5\naction = "crash"\ntarget = "zz"\n',
        "faults[0].target",
    ),
    fault(
        "fault target a number", '[[faults]]\nat = 0.5\naction = "crash"\ntarget = 3\n', "faults[0].target"
    ),
    fault(
        "broker target without a broker",
        '[[faults]]\nat = 0.5\naction = "crash"\ntarget = "broker"\n',
        "faults[0].target",
        "no broker here",
    ),
    fault(
        "nemesis on a broker without a broker",
        '[[nemesis]]\nkind = "crash"\ntargets = "broker"\n',
        "nemesis[0].targets",
    ),
    fault(
        "missing link", '[[faults]]\nat = 0.5\naction = "link_down"\ntarget = "h0-h1"\n', "faults[0].target"
    ),
    fault(
        "for on a recover",
        '[[faults]]\nat = 0.5\naction = "recover"\ntarget = "h0"\nfor = 1\n',
        "faults[0].for",
    ),
    fault(
        "one_way as yes",
        '[[faults]]\nat = 0.5\naction = "partition"\ngroups = [["h0"]]\none_way = "yes"\n',
        "faults[0].one_way",
    ),
    fault(
        "crash a crashed node",
        '[[faults]]\nat = 0.5\naction = "crash"\ntarget = "h0"\n'
        '[[faults]]\nat = 0.7\naction = "crash"\ntarget = "h0"\n',
        "faults[1].action",
    ),
    fault(
        "clash at the end of a for window",
        '[[faults]]\nat = 0.5\naction = "pause"\ntarget = "h0"\nfor = 1\n'
        '[[faults]]\nat = 0.6\naction = "crash"\ntarget = "h0"\n',
        "faults[0].for",
        "(resume)",
    ),
    fault(
        "partition with an unknown node",
        '[[faults]]\nat = 0.5\naction = "partition"\ngroups = [["zz"]]\n',
        "faults[0].groups",
    ),
    fault("loss window without p", '[[faults]]\nat = 0.5\naction = "loss"\ntarget = "all"\n', "faults[0].p"),
    scenario("faults not a list", "faults = 3\n", "faults", "a list"),
    fault("unknown nemesis kind", '[[nemesis]]\nkind = "meteor"\n', "nemesis[0].kind"),
    fault("nemesis with zero mttf", '[[nemesis]]\nkind = "crash"\nmttf = 0\n', "nemesis[0].mttf"),
    fault(
        "nemesis stop before start",
        '[[nemesis]]\nkind = "crash"\nstart = "1s"\nstop = "0.5s"\n',
        "nemesis[0].stop",
    ),
    # -- command-line arguments --------------------------------------------------------------------
    command("unknown command", ["gossip"], "command"),
    command("simulate without a file", ["simulate"], "file"),
    command("unknown option", ["simulate", "s.toml", "--bogus"], "arguments", **{"s.toml": ""}),
    command("list of something unknown", ["list", "bogus"], "what"),
    run_args("unknown engine", ["--engine", "fast"], "--engine"),
    run_args("zero workers", ["--engine", "serial", "--workers", "0"], "--workers"),
    run_args("workers as a word", ["--workers", "x"], "--workers"),
    run_args("scheduler without dask", ["--engine", "serial", "--scheduler", "tcp://host:1"], "--scheduler"),
    run_args("out without a value", ["--out"], "--out"),
    run_args("empty out", ["--engine", "serial", "--out", ""], "--out", "not an empty path"),
    run_args("blank out with fresh", ["--engine", "serial", "--fresh", "--out", " "], "--out"),
    run_args("out below /dev/null", ["--engine", "serial", "--out", "/dev/null/out"], "--out", "/dev/null"),
    run_args("out is a file", ["--engine", "serial", "--out", "taken"], "--out", "not a folder", taken="x"),
    run_args("out below a file", ["--engine", "serial", "--out", "taken/sub"], "--out", taken="x"),
    run_args("out where nothing can be made", ["--engine", "serial", "--out", "/proc/sim-out"], "--out"),
    command("report of a missing folder", ["report", "nowhere"], "results folder"),
    command("report of a folder without runs", ["report", "r"], "results folder", **{"r/notes.txt": "x"}),
    command(
        "report of a damaged runs.parquet",
        ["report", "r"],
        "results file",
        "runs.parquet",
        **{"r/runs.parquet": BAD_PARQUET},
    ),
    command(
        "report of a damaged series.parquet",
        ["report", "r"],
        "results file",
        "series.parquet",
        **{"r/runs.parquet": GOOD_RUNS, "r/meta.json": GOOD_META, "r/series.parquet": BAD_PARQUET},
    ),
    command(
        "report of a damaged meta.json",
        ["report", "r"],
        "results file",
        "meta.json",
        **{"r/runs.parquet": GOOD_RUNS, "r/meta.json": "{not json"},
    ),
    command("topology show of an unknown name", ["topology", "show", "lien"], "topology.name"),
    command(
        "topology show with a bad parameter",
        ["topology", "show", "line", "--param", "n=0"],
        "topology.params.n",
    ),
    command(
        "topology show with an unknown parameter",
        ["topology", "show", "line", "--param", "size=3"],
        "topology.params.size",
    ),
    command("topology show with a seed as a word", ["topology", "show", "line", "--seed", "x"], "--seed"),
    command(
        "topology show of a file that exits",
        ["topology", "show", "t.py"],
        "topology.file",
        "sys.exit",
        **{"t.py": "import sys\nsys.exit(1)\n"},
    ),
]


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted(
        (str(p.relative_to(folder)), p.stat().st_size if p.is_file() else -1) for p in folder.rglob("*")
    )


def _prepare(case: Case, folder: Path) -> None:
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def _check(case: Case, status: int | None, out: str, err: str) -> None:
    assert status == 2, f"exit status {status}; stderr: {err!r}"
    assert "Traceback" not in out + err
    assert out == "", f"nothing on stdout, got {out!r}"
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), f"one line on stderr, got {err!r}"
    assert lines[0].startswith(f"sim: error: {case.field} = "), lines[0]
    assert ": expected " in lines[0], lines[0]
    assert case.mention in lines[0], f"{case.mention!r} not in {lines[0]!r}"


def test_the_table_is_large_and_its_ids_unique() -> None:
    assert len(CASES) >= 80
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _prepare(case, tmp_path)
    monkeypatch.chdir(tmp_path)
    before = _listing(tmp_path)
    try:
        status: int | None = main(list(case.argv))
    except SystemExit as exc:  # argparse's own errors exit through the parser
        status = exc.code if isinstance(exc.code, int) else None
    out, err = capsys.readouterr()
    _check(case, status, out, err)
    assert _listing(tmp_path) == before, "files were written"


# a few through a real process: no traceback and no other status reach the shell
PROCESS = ["not utf-8", "script exits at import", "report of a damaged runs.parquet"]


@pytest.mark.parametrize("name", PROCESS)
def test_bad_input_in_a_process(name: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == name)
    _prepare(case, tmp_path)
    before = _listing(tmp_path)
    done = subprocess.run(
        [str(SIM), *case.argv], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    _check(case, done.returncode, done.stdout, done.stderr)
    assert _listing(tmp_path) == before


@pytest.mark.parametrize(
    ("argv", "fld"),
    [(["--out", ""], "--out"), (["--engine", "fast"], "--engine")],
    ids=["empty out", "engine"],
)
def test_python_script_answers_like_sim_run(tmp_path: Path, argv: list[str], fld: str) -> None:
    """``python experiment.py [options]`` goes through sim.cli.run.main, not the sim command: same
    answers."""
    script = tmp_path / "exp.py"
    script.write_text(
        HEAD + GOOD_EXP + "if __name__ == '__main__':\n    from sim.cli.run import main\n"
        "    sys.exit(main(EXPERIMENT))\n",
        encoding="utf-8",
    )
    before = _listing(tmp_path)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, str(script), "--engine", "serial", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    _check(Case(fld, (), fld), done.returncode, done.stdout, done.stderr)
    assert _listing(tmp_path) == before


@pytest.mark.parametrize(
    ("updates", "field"),
    [
        ({"pattern": "queue", "topology.name": "line"}, "broker.node"),
        (
            {
                "pattern": "event_driven",
                "event_driven": {"handlers": [{"name": "a", "emits": ["b"]}, {"name": "b", "emits": ["a"]}]},
            },
            "event_driven.handlers",
        ),
        (
            {"pattern": "event_driven", "event_driven": {"handlers": [{"name": "a", "node": "mars"}]}},
            "event_driven.handlers[0].node",
        ),
        (
            {"pattern": "event_driven", "event_driven": {"handlers": [{"name": "a", "emits": ["zz"]}]}},
            "event_driven.handlers[0].emits",
        ),
        ({"workload.consumers": 0}, "workload.consumers"),
        ({"broker.overflow": "explode"}, "broker.overflow"),
        ({"request_reply": {"timeout": "-1s"}}, "request_reply.timeout"),
        ({"queue": {"nope": 1}}, "queue.nope"),
        ({"pattern": "queue", "broker.node": "h9"}, "broker.node"),
    ],
)
def test_bad_broker_and_pattern_settings(updates: dict[str, object], field: str) -> None:
    base = Scenario(duration="1s", topology={"name": "star", "params": {"n": 3}}, broker={"node": "hub"})
    if updates.get("topology.name") == "line":
        base = Scenario(duration="1s", topology={"name": "line", "params": {"n": 3}})
        updates = {"pattern": "queue"}
    with pytest.raises(SimError) as err:
        simulate(base.with_updates(updates))
    assert str(err.value).startswith(field), str(err.value)
