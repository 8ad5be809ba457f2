"""Rerun one run of a results folder exactly, from the folder alone.

A results folder stores, per run, its scenario as the sweep built it, its seed, the ``sim`` version and the
content of every file it read (:mod:`sim.sweep.store`). :func:`replay` runs that scenario again on the stored
bytes (not on the files as they are on disk now), so its summary equals the stored row figure for figure;
:func:`differences` says where it does not.

>>> from pathlib import Path
>>> try:
...     replay(Path("no/such/folder"), "0-0-00000000")
... except SimError as e:
...     print(e.field)
results folder
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.core.errors import SimError
from sim.sweep.store import BOOKKEEPING, REPLAY, ResultStore, run_id

if TYPE_CHECKING:
    from sim.run.simulate import RunResult

__all__ = ["differences", "replay", "stored_run"]

_SHOWN = 5  # run ids listed when the one asked for is unknown


@dataclasses.dataclass(frozen=True)
class StoredRun:
    """One run as a results folder holds it: its row (parameters, bookkeeping, metrics) and replay record."""

    row: dict[str, Any]
    record: dict[str, Any]
    swept: tuple[str, ...] = ()
    """The row's parameter columns (the others are bookkeeping and metrics)."""

    @property
    def run_id(self) -> str:
        return str(self.record["run_id"])


def _id(row: Mapping[str, Any]) -> str:
    given = row.get("run_id")
    if isinstance(given, str) and given:
        return given
    return run_id(int(row["point"]), int(row["replication"]), str(row["config_hash"]))


def _matches(rows: Iterable[dict[str, Any]], wanted: str) -> list[dict[str, Any]]:
    """The rows ``wanted`` names: its run id, its config hash, or ``<point>-<replication>``."""
    rows = list(rows)
    exact = [r for r in rows if wanted in (_id(r), str(r["config_hash"]))]
    if exact:
        return exact
    return [r for r in rows if _id(r).startswith(f"{wanted}-") and wanted.count("-") == 1]


def stored_run(folder: Path, wanted: str) -> StoredRun:
    """The run of ``folder`` called ``wanted`` (a run id, a config hash, or ``<point>-<replication>`` when
    one run has it), with its replay record.

    Raises
    ------
    SimError
        When the folder is not a results folder, the id names no run or several, or the folder predates
        stored runs (written before ``sim`` stored what a replay needs).
    """
    folder = Path(folder)
    store = ResultStore(folder)
    if not folder.is_dir():
        raise SimError("results folder", str(folder), "a folder written by 'sim run'")
    rows = store.rows()
    if not rows:
        raise SimError("results folder", str(folder), "a folder written by 'sim run' (no runs are stored)")
    rows.sort(key=lambda r: (int(r["point"]), int(r["replication"])))
    found = _matches(rows, wanted)
    if not found:
        some = ", ".join(_id(r) for r in rows[:_SHOWN]) + (" ..." if len(rows) > _SHOWN else "")
        raise SimError("run id", wanted, f"a run id of {folder} (see runs.parquet or report.md): {some}")
    if len(found) > 1:
        names = ", ".join(str(r["config_hash"]) for r in found[:_SHOWN])
        raise SimError("run id", wanted, f"one run; it names {len(found)}, give a config hash: {names}")
    row = found[0]
    record = row.get(REPLAY)  # a journal entry carries its record: replay.parquet is not read
    if not isinstance(record, dict):
        replays = store.replays()
        record = replays.get(str(row["config_hash"]))
        if record is None:
            whose = "this folder" if not replays else f"run {_id(row)}"
            raise SimError(
                "results folder",
                str(folder),
                f"runs stored for replay ({whose} predates them: run the same sweep again, which stores "
                "what they need without running them, or with --fresh)",
            )
    # meta.json names the parameters of the latest sweep only (its factors, which may be labels); a run of
    # an earlier grid, still in the journal, has its own settings as columns: those are parameters too
    swept = _meta(folder).get("swept")
    named = [k for k in row if k.split(".")[0] in record["scenario"] and k not in BOOKKEEPING]
    swept = list(dict.fromkeys([*(swept if isinstance(swept, list) else []), *named]))
    return StoredRun({k: v for k, v in row.items() if not k.startswith("_")}, record, tuple(swept))


def _meta(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a sweep killed before its end has no meta.json yet: its runs are still replayable
    return meta if isinstance(meta, dict) else {}


def replay(folder: Path, run_id: str, *, trace: bool = False, stored: StoredRun | None = None) -> RunResult:
    """Run the run ``run_id`` of the results folder ``folder`` again, from what the folder stores.

    The scenario is the one the sweep ran (overrides applied, its seed), and every file it read (the
    topology) is the stored content, written to a temporary folder for the run. ``trace`` records the
    hop-level trace (which changes no figure). The result's ``scenario`` is the stored one (with ``trace``).
    ``stored``: the run as :func:`stored_run` gave it already (the folder's tables are then not read again).

    Raises
    ------
    SimError
        As :func:`stored_run`; when the running ``sim`` is not the version that wrote the run; and, for a run
        of an installed plug-in pattern (an entry point), when its code is not the code that ran.
    """
    import sim
    from sim.config.scenario import Scenario
    from sim.patterns.registry import provided
    from sim.run.build import topology_search_path
    from sim.run.simulate import simulate

    if stored is None:
        stored = stored_run(folder, run_id)
    record = stored.record
    if record["sim"] != sim.__version__:
        raise SimError(
            "sim version",
            sim.__version__,
            f"{record['sim']}, the version that ran {stored.run_id} (install it to replay this run)",
        )
    _same_plugin_code(stored)
    store = ResultStore(Path(folder))
    files = dict(record["files"])
    plugin = files.pop("pattern", None)  # a plug-in file runs as its stored text, under its own path
    code = {plugin["path"]: store.input_file(plugin["sha256"])} if plugin else {}
    with tempfile.TemporaryDirectory(prefix="sim-replay-") as tmp, provided(code):
        scenario = Scenario.from_dict(record["scenario"])
        if trace:
            scenario = scenario.with_updates({"trace": True})
        moved: dict[str, str] = {}
        for i, (key, file) in enumerate(sorted(files.items())):
            # the file keeps its name (a topology without a name of its own is named after its file)
            where = Path(tmp) / str(i) / Path(file["path"]).name
            where.parent.mkdir()
            where.write_bytes(store.input_file(file["sha256"]))
            moved[key] = str(where)
        result = simulate(scenario.with_updates(moved) if moved else scenario, search=topology_search_path())
    return dataclasses.replace(result, scenario=scenario)


def _same_plugin_code(stored: StoredRun) -> None:
    """Refuse to replay a run of an installed plug-in (an entry point) on other code than the one that ran:
    a plug-in file is stored in the folder, an installed one only as the digest of its code."""
    from sim.patterns import PATTERNS
    from sim.patterns.registry import digest, is_file_ref

    pattern = stored.record["scenario"].get("pattern", "")
    if not isinstance(pattern, str) or pattern in PATTERNS or is_file_ref(pattern):
        return
    then = stored.record.get("pattern_code")
    if not then:
        raise SimError(
            "pattern",
            pattern,
            f"a record of the plug-in code that ran {stored.run_id} (the folder predates them: "
            "run the sweep again with --fresh)",
        )
    now = digest(pattern)
    if now != then:
        raise SimError(
            "pattern",
            pattern,
            f"the plug-in code that ran {stored.run_id} ({_short(then)}; installed now: {_short(now)}): "
            "install the version that ran it to replay this run",
        )


def _short(code: str) -> str:
    """A code digest as shown: a SHA-256 by its first 12 digits, a distribution's version as it is."""
    return f"sha256 {code[:12]}" if len(code) == 64 else code


def differences(
    summary: Mapping[str, float], row: Mapping[str, Any], swept: Iterable[str] = ()
) -> list[tuple[str, Any, Any]]:
    """``(metric, stored, now)`` for every metric where ``summary`` and the stored ``row`` differ: a value
    that is not equal (NaN equals NaN), a metric of the summary the row lacks, or a metric the row has
    (not NaN) that the summary lacks. ``swept``: the row's parameter columns, which are not metrics.

    >>> differences({"lost": 0.0, "latency_p99": float("nan")}, {"lost": 0.0, "latency_p99": float("nan")})
    []
    >>> differences({"lost": 1.0}, {"lost": 0.0, "status": "ok"})
    [('lost', 0.0, 1.0)]
    """
    out: list[tuple[str, Any, Any]] = []
    for key, now in summary.items():
        if key not in row:
            out.append((key, None, now))
        elif not _same(row[key], now):
            out.append((key, row[key], now))
    skip = {*BOOKKEEPING, *swept}
    for key, stored in row.items():
        if key in summary or key in skip or key.startswith("_") or not isinstance(stored, int | float):
            continue
        if not (isinstance(stored, float) and math.isnan(stored)):
            out.append((key, stored, None))
    return out


def _same(stored: Any, now: Any) -> bool:
    try:
        if math.isnan(stored) and math.isnan(now):
            return True
    except TypeError:
        return False
    return bool(stored == now)
