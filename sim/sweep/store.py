"""The results folder of an experiment, written so that nothing finished is ever lost.

``runs/<config_hash>.json`` — one file per finished run, written atomically as it finishes (the journal);
``runs.parquet`` — every run, one row each, consolidated from the journal; ``series.parquet`` — each run's
small curves for reports (the broker backlog over time), long format; ``replay.parquet`` — what it takes to
rerun each run exactly (its scenario as the sweep built it, seed, ``sim`` version and the digests of the files
it read), one row per run; ``inputs/<sha256>`` — the content of those files, each stored once;
``summary.csv`` — means per parameter point; ``meta.json`` — versions, git commit, engine, times;
``ledgers/<config_hash>.parquet`` with ``--save-ledgers``. Every file is written to a temporary name and
renamed into place; a run's inputs are stored before its journal entry, and its replay record travels in it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from sim.core.errors import SimError

__all__ = [
    "BOOKKEEPING",
    "OWN_FILES",
    "OWN_FOLDERS",
    "REPLAY",
    "ResultStore",
    "atomic_write",
    "read_parquet",
    "run_id",
    "write_parquet",
]

BOOKKEEPING = ("point", "replication", "seed", "config_hash", "run_id", "status", "error", "wall_time")

OWN_FILES = frozenset(
    {
        "runs.parquet",
        "series.parquet",
        "replay.parquet",
        "summary.csv",
        "meta.json",
        "statistics.csv",
        "differences.csv",
        "report.md",
        "report.html",
    }
)
"""The files ``sim run`` and ``sim report`` write at the top of a results folder."""
_HASH = r"[0-9a-f]{8,64}"
OWN_FOLDERS = {
    "runs": re.compile(rf"{_HASH}\.json|\.{_HASH}\.json\..+\.tmp"),
    "ledgers": re.compile(rf"{_HASH}\.parquet|\.{_HASH}\.parquet\..+\.tmp"),
    "inputs": re.compile(r"[0-9a-f]{64}|\.[0-9a-f]{64}\..+\.tmp"),
    "figures": re.compile(
        r"(latency_cdf|latency_percentiles|cost|reliability|backlog|metrics_vs_\w+)(\.tmp)?\.png"
    ),
}
"""Subfolders ``sim`` writes into, with the names of the files it puts there (temporary files included)."""
_OWN_TEMP = re.compile(r"\.(" + "|".join(re.escape(n) for n in sorted(OWN_FILES)) + r")\..+\.tmp")


REPLAY = "_replay"
"""The key of a journal entry that holds its run's replay record (consolidated into ``replay.parquet``)."""


def run_id(point: int, replication: int, config_hash: str) -> str:
    """A run's id: ``<point>-<replication>-<first 8 digits of its config hash>``, e.g. ``3-0-9f2c41d7``.

    Stable (the same experiment gives its runs the same ids on every machine and every rerun: the config
    hash covers the scenario, its seed, the topology file's content and the ``sim`` version) and readable
    (the parameter point and the replication come first).

    >>> run_id(3, 0, "9f2c41d7e8a0b1c2")
    '3-0-9f2c41d7'
    """
    return f"{int(point)}-{int(replication)}-{config_hash[:8]}"


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame to Parquet atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_parquet(path: Path) -> pd.DataFrame:
    """Read a Parquet file ``sim`` wrote; SimError naming it if it is damaged or not Parquet at all."""
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types (ArrowInvalid, OSError, ...) for a bad file
        message = " ".join(str(exc).split())
        raise SimError("results file", str(path), f"a readable Parquet file ({message})") from None


def _replay_from_table(record: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "run_id": str(record["run_id"]),
        "sim": str(record["sim"]),
        "seed": int(record["seed"]),
        "scenario": json.loads(record["scenario"]),
        "files": json.loads(record["files"]),
        **({"pattern_code": code} if isinstance(code := record.get("pattern_code"), str) and code else {}),
    }


def _json_safe(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = {"float": str(v)}  # nan / inf / -inf survive the round trip
        out[k] = v
    return out


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a results row")


def _from_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: float(v["float"]) if isinstance(v, dict) and set(v) == {"float"} else v for k, v in row.items()
    }


class ResultStore:
    """The results folder of one experiment."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.journal = self.folder / "runs"
        self.parquet = self.folder / "runs.parquet"
        self.inputs = self.folder / "inputs"
        self.replay_table = self.folder / "replay.parquet"

    def own_files(self) -> list[Path]:
        """The files ``sim`` wrote in this folder (and only those): what ``--fresh`` removes."""
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.iterdir() if p.name in OWN_FILES or _OWN_TEMP.fullmatch(p.name)]
        for sub, pattern in OWN_FOLDERS.items():
            if (self.folder / sub).is_dir():
                found += [p for p in (self.folder / sub).iterdir() if pattern.fullmatch(p.name)]
        report = self.folder / "report.md"
        if report.is_file():  # the figures the last report drew, whatever their names
            with contextlib.suppress(OSError, UnicodeDecodeError):
                drawn = re.findall(r"\]\(figures/([\w.-]+\.png)\)", report.read_text(encoding="utf-8"))
                found += [self.folder / "figures" / name for name in drawn]
        return sorted({p for p in found if p.is_file() and not p.is_symlink()})

    def clear(self, *, keep_ledgers: Collection[str] = ()) -> None:
        """Start over (``--fresh``): remove stored runs and everything derived from them.

        Only files ``sim`` writes are removed (:meth:`own_files`); ``runs/``, ``ledgers/`` and ``figures/``
        go too when that leaves them empty. Anything else in the folder stays. ``keep_ledgers``: config
        hashes whose ledger files stay (the runs of a sweep under way write theirs before being recorded).
        """
        for path in self.own_files():
            if path.parent.name == "ledgers" and path.name.lstrip(".").split(".")[0] in keep_ledgers:
                continue
            path.unlink(missing_ok=True)
        for sub in OWN_FOLDERS:
            with contextlib.suppress(OSError):  # absent, or still holding someone else's files
                (self.folder / sub).rmdir()

    def record(self, row: Mapping[str, Any], inputs: Mapping[str, bytes] | None = None) -> None:
        """Journal one finished run; ``inputs`` (content by SHA-256) are stored first, each file once, so
        that a run in the journal always finds the files its replay record names."""
        for digest, data in (inputs or {}).items():
            path = self.inputs / digest
            if not path.is_file():
                atomic_write(path, data)
        text = json.dumps(_json_safe(row), sort_keys=True, default=_json_default)
        atomic_write(self.journal / f"{row['config_hash']}.json", text)

    def add_replays(self, records: Mapping[str, Mapping[str, Any]], inputs: Mapping[str, bytes]) -> None:
        """Store the replay records (by config hash) of runs stored before runs had them, and the files
        they name (content by SHA-256), files first; ``replay.parquet`` keeps the records it had."""
        for digest, data in inputs.items():
            path = self.inputs / digest
            if not path.is_file():
                atomic_write(path, data)
        self._write_replays(records)

    def input_file(self, digest: str) -> bytes:
        """The stored content of a file a run read (by its SHA-256); SimError if it is missing or altered."""
        path = self.inputs / digest
        try:
            data = path.read_bytes()
        except OSError:
            raise SimError("results file", str(path), "the stored content of a file the run read") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise SimError("results file", str(path), "the content its name is the SHA-256 of (it changed)")
        return data

    def replays(self) -> dict[str, dict[str, Any]]:
        """Every stored run's replay record, by config hash: ``replay.parquet``, overridden by the journal."""
        out: dict[str, dict[str, Any]] = {}
        if self.replay_table.exists():
            for record in read_parquet(self.replay_table).to_dict("records"):
                out[str(record["config_hash"])] = _replay_from_table(record)
        for row in self._journal():
            if isinstance(row.get(REPLAY), dict):
                out[str(row["config_hash"])] = row[REPLAY]
        return out

    def rows(self) -> list[dict[str, Any]]:
        """Every stored run: the consolidated table, overridden by newer journal entries."""
        rows: dict[str, dict[str, Any]] = {}
        if self.parquet.exists():
            frame = read_parquet(self.parquet)
            if "config_hash" not in frame.columns:
                raise SimError("results file", str(self.parquet), "a runs table written by sim run")
            for record in frame.to_dict("records"):
                rows[str(record["config_hash"])] = {str(k): v for k, v in record.items()}
        for row in self._journal():
            rows[str(row["config_hash"])] = row
        return list(rows.values())

    def _journal(self) -> list[dict[str, Any]]:
        out = []
        if self.journal.is_dir():
            for path in sorted(self.journal.glob("*.json")):
                try:
                    data = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue  # a half-written file cannot exist (atomic writes); skip anything foreign
                if isinstance(data, dict) and "config_hash" in data:
                    out.append(_from_json(data))
        return out

    def done(self) -> set[str]:
        """Config hashes of runs that finished without error (they are skipped on a rerun)."""
        return {str(r["config_hash"]) for r in self.rows() if r.get("status") == "ok"}

    def consolidate(self, swept: Iterable[str], keep: set[str] | None = None) -> pd.DataFrame:
        """Write ``runs.parquet`` from the stored runs (those in ``keep``, the experiment's config hashes,
        when given; older runs stay in the journal); returns the table, swept parameters first."""
        rows = self.rows()
        if keep is not None:
            rows = [r for r in rows if str(r["config_hash"]) in keep]
        curves = [(str(r["config_hash"]), r.pop("_series", None)) for r in rows]
        replays = {str(r["config_hash"]): r.pop(REPLAY, None) for r in rows}
        for r in rows:  # rows stored before runs had ids get theirs (the same formula)
            if not isinstance(r.get("run_id"), str):
                r["run_id"] = run_id(r["point"], r["replication"], str(r["config_hash"]))
        frame = pd.DataFrame(rows)
        if frame.empty:
            return frame
        self._write_series(curves)
        self._write_replays({k: v for k, v in replays.items() if isinstance(v, dict)})
        swept = [c for c in swept if c in frame.columns]
        for col in swept:  # lists, tables and mixed types become text: groupable and storable
            values = frame[col].tolist()
            if any(isinstance(v, list | dict | tuple) for v in values) or len({type(v) for v in values}) > 1:
                frame[col] = [json.dumps(v, sort_keys=True) if not isinstance(v, str) else v for v in values]
        rest = [c for c in frame.columns if c not in swept and c not in BOOKKEEPING]
        frame = frame[swept + [c for c in BOOKKEEPING if c in frame.columns] + rest]
        for col in ("point", "replication", "seed"):
            frame[col] = frame[col].astype("int64")
        for col in [*rest, "wall_time"]:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
        frame["error"] = frame["error"].fillna("").astype(str)
        frame = frame.sort_values(["point", "replication"], kind="stable").reset_index(drop=True)
        write_parquet(frame, self.parquet)
        return frame

    def _write_series(self, curves: list[tuple[str, Any]]) -> None:
        parts = []
        for config, series in curves:
            for name, (xs, ys) in (series or {}).items():
                parts.append(pd.DataFrame({"config_hash": config, "series": name, "x": xs, "y": ys}))
        old = self.folder / "series.parquet"
        if parts:
            frame = pd.concat(parts, ignore_index=True)
            if old.exists():  # curves of runs consolidated earlier, whose journal entries are gone
                previous = read_parquet(old)
                frame = pd.concat([previous[~previous["config_hash"].isin(frame["config_hash"])], frame])
            write_parquet(frame.astype({"x": "float64", "y": "float64"}), old)

    def _write_replays(self, replays: Mapping[str, Mapping[str, Any]]) -> None:
        """``replay.parquet``: one row per run, the scenario and the files as JSON text (compressed by
        Parquet: the scenarios of a sweep differ in a few values)."""
        if not replays:
            return
        frame = pd.DataFrame(
            [
                {
                    "config_hash": config,
                    "run_id": str(r["run_id"]),
                    "sim": str(r["sim"]),
                    "seed": int(r["seed"]),
                    "scenario": json.dumps(r["scenario"], sort_keys=True),
                    "files": json.dumps(r.get("files", {}), sort_keys=True),
                    "pattern_code": str(r.get("pattern_code", "")),  # an installed plug-in's code digest
                }
                for config, r in replays.items()
            ]
        )
        if self.replay_table.exists():  # runs consolidated earlier, whose journal entries are gone
            previous = read_parquet(self.replay_table)
            frame = pd.concat([previous[~previous["config_hash"].isin(frame["config_hash"])], frame])
        write_parquet(frame.sort_values("config_hash").reset_index(drop=True), self.replay_table)

    def series(self) -> pd.DataFrame:
        """Every stored run's curves: columns config_hash, series, x, y (empty if none)."""
        path = self.folder / "series.parquet"
        if not path.exists():
            return pd.DataFrame(columns=["config_hash", "series", "x", "y"])
        return read_parquet(path)

    def write_meta(self, meta: Mapping[str, Any]) -> None:
        atomic_write(self.folder / "meta.json", json.dumps(meta, indent=2, sort_keys=True, default=str))

    def write_summary(self, frame: pd.DataFrame, swept: list[str]) -> None:
        """``summary.csv``: per parameter point, mean and standard deviation of every metric over the
        successful replications, and their count."""
        ok = frame[frame["status"] == "ok"]
        metrics = [c for c in ok.columns if c not in swept and c not in BOOKKEEPING]
        if ok.empty:
            table = pd.DataFrame(columns=swept)
        elif swept:
            grouped = ok.groupby(swept, sort=False, dropna=False)[metrics]
            parts: list[pd.DataFrame | pd.Series] = [
                grouped.size().rename("replications"),
                grouped.mean().add_suffix("_mean"),
                grouped.std().add_suffix("_std"),
            ]
            table = pd.concat(parts, axis=1).copy().reset_index()
        else:
            means, stds = ok[metrics].mean().add_suffix("_mean"), ok[metrics].std().add_suffix("_std")
            table = pd.concat([pd.Series({"replications": len(ok)}), means, stds]).to_frame().T
        atomic_write(self.folder / "summary.csv", table.to_csv(index=False))
