"""The refactoring gate: fingerprints of the ledgers and summaries of 140 fixed runs, to compare commits.

Five patterns (the example scenarios, 1.5 s, with random link delays, 1 % loss and links that do not
serialize, so that cut-through and the order of draws matter) x (no fault, each fault kind, a no-op fault
near the end, a crash nemesis) x two seeds, traced and not for two of them. A refactoring that should change
no number must leave every fingerprint equal::

    python tests/gates/fingerprint.py > after.json                       # on the new code
    git worktree add /tmp/before <commit> && PYTHONPATH=/tmp/before python tests/gates/fingerprint.py \\
        /tmp/before > before.json                                         # on the old code
    cmp before.json after.json

The argument is the checkout whose ``experiments/scenarios`` to read (default: this one). Takes ~30 s.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

PATTERNS = ("point_to_point", "queue", "pubsub", "request_reply", "event_driven")
WINDOW = {"at": "0.3s", "for": "200ms"}
FAULTS: dict[str, list[dict[str, Any]]] = {
    "none": [],
    "crash": [{**WINDOW, "action": "crash", "target": "consumers"}],
    "pause": [{**WINDOW, "action": "pause", "target": "consumers"}],
    "link_down": [{**WINDOW, "action": "link_down", "target": "all"}],
    "partition": [{**WINDOW, "action": "partition", "groups": [["producers"]]}],
    "latency": [{**WINDOW, "action": "latency", "target": "all", "add": "2ms", "factor": 1.5}],
    "loss": [{**WINDOW, "action": "loss", "target": "all", "p": 0.2}],
    "loss_ge": [
        {
            **WINDOW,
            "action": "loss",
            "target": "all",
            "p_gb": 0.05,
            "p_bg": 0.25,
            "loss_good": 0.0,
            "loss_bad": 0.8,
        }
    ],
    "duplicate": [{**WINDOW, "action": "duplicate", "target": "all", "probability": 0.2}],
    "reorder": [{**WINDOW, "action": "reorder", "target": "all", "jitter": "3ms"}],
    "late_noop": [{"at": "1.49s", "action": "latency", "target": "all", "add": "1ms", "for": "1ms"}],
}
LINKS = {"latency": {"dist": "exponential", "mean": "1ms"}, "loss": 0.01, "bandwidth": "inf"}
NEMESIS = [{"kind": "crash", "targets": "consumers", "mttf": "400ms", "mttr": "50ms"}]
UNSTABLE = ("wall_time", "wall_seconds", "events_per_second")  # not functions of the seed


def digest(columns: dict[str, np.ndarray], summary: dict[str, float]) -> str:
    """16 hex digits of a hash over every ledger column (name, dtype, bytes) and the summary."""
    h = hashlib.sha256()
    for name in sorted(columns):
        a = np.ascontiguousarray(columns[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(a.tobytes() if a.dtype != object else repr(a.tolist()).encode())
    items = sorted(
        (k, round(v, 12) if isinstance(v, float) else v) for k, v in summary.items() if k not in UNSTABLE
    )
    h.update(repr(items).encode())
    return h.hexdigest()[:16]


def fingerprints(root: Path) -> dict[str, str]:
    from sim import Scenario, simulate

    out = {}
    for pattern in PATTERNS:
        base = Scenario.from_toml(root / "experiments" / "scenarios" / f"{pattern}.toml").model_dump(
            by_alias=True
        )
        for seed in (1, 2):
            common = {
                "duration": 1.5,
                "warmup": 0.1,
                "drain": 5.0,
                "seed": seed,
                "links": {**base["links"], **LINKS},
            }
            cases = [(name, faults, [], trace) for name, faults in FAULTS.items() for trace in (False, True)]
            cases = [c for c in cases if not c[3] or c[0] in ("none", "crash")]
            cases.append(("nemesis", [], NEMESIS, False))
            for name, faults, nemesis, trace in cases:
                data = {**base, **common, "faults": faults, "nemesis": nemesis, "trace": trace}
                result = simulate(Scenario.from_dict(data))
                out[f"{pattern}/{name}/seed{seed}/trace{int(trace)}"] = digest(result.columns, result.summary)
    return out


if __name__ == "__main__":
    json.dump(
        fingerprints(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")),
        sys.stdout,
        indent=1,
        sort_keys=True,
    )
    sys.stdout.write("\n")
