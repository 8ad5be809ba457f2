"""Do the three plug-in examples keep their promises when nodes crash?

The three patterns of experiments/patterns/, written as SimPy processes and loaded from their files, each
run from its own scenario file (experiments/scenarios/<name>.toml: its topology, workload, guarantee and
table): a broadcast to six peers, a scatter-gather that waits for 3 replies of 5, and an orchestrated saga
with compensation. The factor is the fault schedule: the scenario's own (a consumer or a worker crashes;
the saga's nemesis, an orchestrator crash and a slow spell), none, or a nemesis crashing the producers
(100 ms down about every second). Every run is checked against its delivery guarantee (``check=True``):
the ``violations`` column counts each run's broken promises. They hold under the scenarios' own faults;
under producer crashes the broadcast loses copies its producer had not seen acknowledged (crash_lost) and
scatter-gather the replies that reach a caller while it is down (node_down), while the saga, at most once,
promises no delivery. Each plug-in's own counts (``broadcasts``; ``calls``, ``gathered``,
``spare_replies``; ``sagas``, ``committed``, ``compensated``, ``inconsistent``) are headline figures,
titled with their units (``sim list metrics --scenario FILE`` lists them).

Run it: ``sim run experiments/plugin_patterns.py`` (``--quick`` for a smoke run).
"""

from pathlib import Path
from typing import Any

from sim import Experiment, Scenario

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
PLUGINS = ("broadcast", "scatter_gather", "saga")
RUN = {"duration": "10s", "warmup": "1s", "drain": "5s"}  # the same length for every plug-in


def from_file(name: str) -> dict[str, Any]:
    """The settings of experiments/scenarios/<name>.toml (its plug-in by absolute path), without its length
    and seed: those are the experiment's."""
    settings = Scenario.from_toml(SCENARIOS / f"{name}.toml").to_dict()
    for key in ("seed", *RUN):
        settings.pop(key)
    return settings


BASE = Scenario.from_toml(SCENARIOS / f"{PLUGINS[0]}.toml").with_updates(RUN)

EXPERIMENT = Experiment(
    name="plugin_patterns",
    description=__doc__.strip().splitlines()[0],
    base=BASE,
    grid={
        # each label sets a whole scenario file: pattern, topology, links, workload, guarantee, faults, table
        "plugin": {name: from_file(name) for name in PLUGINS},
        "faults_from": {
            "scenario": {},  # the scenario file's own faults and nemeses
            "none": {"faults": [], "nemesis": []},
            "producer_crashes": {  # a nemesis: each producer down for 100 ms about every second
                "faults": [],
                "nemesis": [{"kind": "crash", "targets": ["producers"], "mttf": "1s", "mttr": "100ms"}],
            },
        },
    },
    replications=5,
    seed=17,
    quick={"duration": "8s", "drain": "3s"},
    quick_replications=2,
    check=True,
    headline=[
        "op_success_ratio",
        "op_latency_p99",
        "violations",
        "broadcasts",
        "calls",
        "gathered",
        "spare_replies",
        "sagas",
        "committed",
        "compensated",
        "inconsistent",
    ],
)

if __name__ == "__main__":
    import sys

    from sim.cli.run import main

    sys.exit(main(EXPERIMENT))
