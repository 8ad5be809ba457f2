"""Run an experiment: expand it, skip what is stored, execute the rest on an engine, store every row as it
finishes, then consolidate ``runs.parquet``, ``summary.csv``, ``meta.json`` (and the report)."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from sim.core.errors import SimError, failure
from sim.run.build import topology_search_path
from sim.sweep.engines import ENGINES, run_all
from sim.sweep.experiment import Experiment, RunSpec, check_figures, input_files
from sim.sweep.progress import Progress
from sim.sweep.store import REPLAY, ResultStore

__all__ = ["check_out", "load_experiment", "run_experiment"]

log = logging.getLogger("sim.sweep.runner")
_PACKAGES = (
    "simpy",
    "numpy",
    "pandas",
    "networkx",
    "pydantic",
    "scipy",
    "pyarrow",
    "dask",
    "distributed",
    "matplotlib",
)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("sim", *_PACKAGES):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _git_sha(where: Path) -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def run_experiment(
    exp: Experiment,
    *,
    quick: bool = False,
    out: Path | str | None = None,
    engine: str = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    fresh: bool = False,
    save_ledgers: bool = False,
    quiet: bool = False,
    base_dir: Path | None = None,
) -> pd.DataFrame:
    """Run every run of ``exp`` not already stored; returns the table of all stored runs.

    Raises SimError before anything runs if a parameter point is invalid or the engine is unusable.
    """
    specs = exp.runs(quick=quick)  # validates every point first
    if engine not in ENGINES:
        raise SimError("--engine", engine, "one of " + ", ".join(ENGINES))
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SimError("--workers", workers, "a whole number >= 1")
    if scheduler is not None and engine != "dask":
        raise SimError("--scheduler", scheduler, "no scheduler unless --engine dask")
    # before the first run: a folder that cannot be written is found now, not after the runs
    folder = check_out(out if out is not None else Path("results") / exp.name)
    store = ResultStore(folder)
    # --fresh: every run is run again, and the stored ones are removed when the first new one is stored, so
    # that a sweep refused before it starts (an unreachable scheduler) or interrupted at once loses nothing
    done = set() if fresh else store.done()
    todo = [s for s in specs if s.config_hash not in done]
    if done:  # runs stored before runs had replay records get theirs: same config hash, same inputs
        have = store.replays()
        older = [s for s in specs if s.config_hash in done and s.config_hash not in have]
        if older:
            store.add_replays(*_replay_records(older))
    stale = fresh
    search = [str(p) for p in topology_search_path()]
    payloads = [
        {
            "scenario": s.scenario.to_dict(),
            "params": s.params,
            "point": s.point,
            "replication": s.replication,
            "seed": s.seed,
            "config_hash": s.config_hash,
            "search": search,
            "ledger_path": str(folder / "ledgers" / f"{s.config_hash}.parquet") if save_ledgers else "",
            **({"check": True} if exp.check else {}),  # Experiment(check=True): violations per run
        }
        for s in todo
    ]
    started = datetime.now(UTC).isoformat(timespec="seconds")
    if len(todo) < len(specs):
        log.info(
            "%d of %d runs already stored in %s; running %d",
            len(specs) - len(todo),
            len(specs),
            folder,
            len(todo),
        )
    progress = Progress(len(todo), quiet=quiet)
    replays, contents = _replay_records(todo)

    def on_row(row: dict[str, Any]) -> None:
        nonlocal stale
        if stale:
            store.clear(keep_ledgers={s.config_hash for s in todo} if save_ledgers else ())
            stale = False
        replay = replays[row["config_hash"]]
        row["run_id"] = replay["run_id"]
        row[REPLAY] = replay
        if "_violations" in row:  # Experiment(check=True): the run's broken promises, as numbers
            row.update(check_figures(row.pop("_violations")))
        store.record(row, {f["sha256"]: contents[f["sha256"]] for f in replay["files"].values()})
        progress.update(row["status"] == "ok")
        if row["status"] != "ok":
            log.warning(
                "run %s (point %d, replication %d) failed: %s",
                row["config_hash"],
                row["point"],
                row["replication"],
                row["error"],
            )

    refused = False
    try:
        run_all(payloads, on_row, engine=engine, workers=workers, scheduler=scheduler)
    except SimError:
        refused = progress.done == 0  # turned down before any run (an unreachable scheduler)
        raise
    finally:
        if not refused:  # when nothing ran, nothing is recorded: not even meta.json
            swept = exp.swept()
            frame = store.consolidate(swept, keep={s.config_hash for s in specs})
            if not frame.empty:
                store.write_summary(frame, swept)
            store.write_meta(
                {
                    "experiment": exp.name,
                    "description": exp.description,
                    "quick": quick,
                    "engine": engine,
                    "workers": workers,
                    "seed": exp.seed,
                    "replications": exp.replications,
                    "swept": swept,
                    "runs": len(specs),
                    "ran": progress.done,
                    "failed": progress.failed,
                    "started": started,
                    "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                    "versions": _versions(),
                    "git_sha": _git_sha(base_dir or Path.cwd()),
                    "platform": platform.platform(),
                    **exp.report_meta(quick=quick),
                }
            )
    return frame


def _replay_records(specs: list[RunSpec]) -> tuple[dict[str, dict[str, Any]], dict[str, bytes]]:
    """Each run's replay record (by config hash) and the content of the files they read (by SHA-256),
    read now, before the runs: each file once, however many runs read it."""
    import sim
    from sim.patterns import PATTERNS
    from sim.patterns.registry import digest as code_digest
    from sim.patterns.registry import is_file_ref

    records: dict[str, dict[str, Any]] = {}
    contents: dict[str, bytes] = {}
    digests: dict[Path, str] = {}
    codes: dict[str, str] = {}  # an installed plug-in's code digest, by pattern (replay refuses other code)
    for spec in specs:
        files = {}
        for key, path in input_files(spec.scenario).items():
            digest = digests.get(path)
            if digest is None:
                try:
                    data = path.read_bytes()
                except OSError:
                    continue  # the run fails reading it too, and is recorded as failed
                digest = digests[path] = hashlib.sha256(data).hexdigest()
                contents[digest] = data
            files[key] = {"path": str(path), "sha256": digest}
        records[spec.config_hash] = {
            "run_id": spec.run_id,
            "sim": sim.__version__,
            "seed": spec.seed,
            "scenario": spec.scenario.to_dict(),
            "files": files,
        }
        pattern = spec.scenario.pattern
        if pattern not in PATTERNS and not is_file_ref(pattern):  # a file plug-in is stored in files
            if pattern not in codes:
                codes[pattern] = code_digest(pattern)
            records[spec.config_hash]["pattern_code"] = codes[pattern]
    return records, contents


def check_out(out: Path | str) -> Path:
    """The results folder ``out``, if it can be created (or written) here; SimError otherwise.

    Nothing is created: the folder appears with the first stored run.
    """
    if not str(out).strip():  # '' would mean the working directory, and --fresh would clear it
        raise SimError("--out", str(out), "a folder for the results, not an empty path")
    folder = Path(out)
    probe = folder
    while not probe.exists() and probe != probe.parent:  # the nearest folder that exists
        if probe.is_symlink():
            raise SimError("--out", str(out), f"a folder that can be created ({probe} is a broken link)")
        probe = probe.parent
    if not probe.is_dir():
        raise SimError("--out", str(out), f"a folder that can be created ({probe} is not a folder)")
    try:  # the one sure test, for root too: make a folder there, and remove it
        os.rmdir(tempfile.mkdtemp(prefix=".sim-probe-", dir=probe))
    except OSError as exc:
        raise SimError("--out", str(out), f"a folder that can be written ({probe}: {exc.strerror})") from None
    return folder


def load_experiment(path: Path) -> Experiment:
    """The ``EXPERIMENT`` (or ``experiment()``) defined by an experiment script."""
    if not path.is_file():
        raise SimError("experiment file", str(path), "an existing .py file defining EXPERIMENT")
    spec = importlib.util.spec_from_file_location(f"sim_experiment_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise SimError("experiment file", str(path), "a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ beside the script
    try:
        spec.loader.exec_module(module)
    except SimError:
        raise
    except (Exception, SystemExit) as exc:  # a script may fail in any way, sys.exit() included
        raise SimError(
            "experiment file", str(path), f"a script that imports cleanly ({failure(exc)})"
        ) from None
    finally:
        sys.dont_write_bytecode = dont_write
    found = getattr(module, "EXPERIMENT", None)
    if found is None and callable(getattr(module, "experiment", None)):
        try:
            found = module.experiment()
        except SimError:
            raise
        except (Exception, SystemExit) as exc:
            raise SimError(
                "experiment file", str(path), f"an experiment() that returns an Experiment ({failure(exc)})"
            ) from None
    if not isinstance(found, Experiment):
        raise SimError("experiment file", str(path), "a script defining EXPERIMENT = Experiment(...)")
    return found
