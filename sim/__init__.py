"""``sim``: a discrete-event simulator for messaging patterns in distributed systems.

>>> from sim import Scenario, simulate
>>> result = simulate(Scenario(duration="1s", workload={"rate": "50/s"}))
>>> result.summary["delivery_ratio"]
1.0

The package reads as the design, bottom up: ``core`` (the seam to SimPy's scheduler, the run context,
messages, the ledger, random streams, units), ``topology``, ``model`` (links, routing, network, nodes,
workload, brokers, faults), ``patterns``, ``config`` (validated scenarios), ``run`` (one run: build, simulate,
checks, metrics), ``sweep`` (many runs), ``analysis`` (reports, figures, regression, validation) and ``cli``.
The names below are the public API; they are imported on first use, so ``import sim`` (and ``sim --help``)
stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Experiment",
    "InvariantError",
    "RunResult",
    "Scenario",
    "SimContext",
    "SimError",
    "__version__",
    "build_topology",
    "run_experiment",
    "simulate",
    "write_report",
]

_WHERE = {
    "Experiment": "sim.sweep.experiment",
    "InvariantError": "sim.core.errors",
    "RunResult": "sim.run.simulate",
    "Scenario": "sim.config.scenario",
    "SimContext": "sim.core.context",
    "SimError": "sim.core.errors",
    "build_topology": "sim.topology",
    "run_experiment": "sim.sweep.runner",
    "simulate": "sim.run.simulate",
    "write_report": "sim.analysis.report",
}

if TYPE_CHECKING:
    from sim.analysis.report import write_report
    from sim.config.scenario import Scenario
    from sim.core.context import SimContext
    from sim.core.errors import InvariantError, SimError
    from sim.run.simulate import RunResult, simulate
    from sim.sweep.experiment import Experiment
    from sim.sweep.runner import run_experiment
    from sim.topology import build_topology


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (``dir(sim)``), not the subpackages."""
    return sorted(__all__)
