"""``sim``: a discrete-event simulator for messaging patterns in distributed systems.

>>> from sim import Scenario, simulate
>>> result = simulate(Scenario(duration="1s", workload={"rate": "50/s"}))
>>> result.summary["delivery_ratio"]
1.0

Names are imported on first use, so ``import sim`` (and ``sim --help``) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "InvariantError",
    "RunResult",
    "Scenario",
    "SimContext",
    "SimError",
    "__version__",
    "simulate",
]

_WHERE = {
    "InvariantError": "sim.errors",
    "SimError": "sim.errors",
    "SimContext": "sim.context",
    "Scenario": "sim.scenario",
    "RunResult": "sim.run",
    "simulate": "sim.run",
}

if TYPE_CHECKING:
    from sim.context import SimContext
    from sim.errors import InvariantError, SimError
    from sim.run import RunResult, simulate
    from sim.scenario import Scenario


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
