"""The results folder of an experiment, written so that nothing finished is ever lost.

``runs/<config_hash>.json`` — one file per finished run, written atomically as it finishes (the journal);
``runs.parquet`` — every run, one row each, consolidated from the journal; ``series.parquet`` — each run's
small curves for reports (latency CDF, broker backlog over time), long format; ``summary.csv`` — means per
parameter point; ``meta.json`` — versions, git commit, engine, times; ``ledgers/<config_hash>.parquet`` with
``--save-ledgers``. Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from sim.errors import SimError

__all__ = ["BOOKKEEPING", "ResultStore", "atomic_write", "write_parquet"]

BOOKKEEPING = ("point", "replication", "seed", "config_hash", "status", "error", "wall_time")


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

    def clear(self) -> None:
        """Start over (``--fresh``): remove stored runs and everything derived from them."""
        for name in ("runs", "ledgers", "figures"):
            shutil.rmtree(self.folder / name, ignore_errors=True)
        for name in (
            "runs.parquet",
            "series.parquet",
            "summary.csv",
            "meta.json",
            "report.md",
            "report.html",
        ):
            (self.folder / name).unlink(missing_ok=True)

    def record(self, row: Mapping[str, Any]) -> None:
        """Journal one finished run."""
        text = json.dumps(_json_safe(row), sort_keys=True, default=_json_default)
        atomic_write(self.journal / f"{row['config_hash']}.json", text)

    def rows(self) -> list[dict[str, Any]]:
        """Every stored run: the consolidated table, overridden by newer journal entries."""
        rows: dict[str, dict[str, Any]] = {}
        if self.parquet.exists():
            try:
                for record in pd.read_parquet(self.parquet).to_dict("records"):
                    rows[str(record["config_hash"])] = {str(k): v for k, v in record.items()}
            except Exception as exc:
                raise SimError(
                    "results file", str(self.parquet), f"a readable Parquet file ({exc})"
                ) from None
        if self.journal.is_dir():
            for path in sorted(self.journal.glob("*.json")):
                try:
                    row = _from_json(json.loads(path.read_text()))
                except (OSError, ValueError):
                    continue  # a half-written file cannot exist (atomic writes); skip anything foreign
                rows[str(row["config_hash"])] = row
        return list(rows.values())

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
        frame = pd.DataFrame(rows)
        if frame.empty:
            return frame
        self._write_series(curves)
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
                previous = pd.read_parquet(old)
                frame = pd.concat([previous[~previous["config_hash"].isin(frame["config_hash"])], frame])
            write_parquet(frame.astype({"x": "float64", "y": "float64"}), old)

    def series(self) -> pd.DataFrame:
        """Every stored run's curves: columns config_hash, series, x, y (empty if none)."""
        path = self.folder / "series.parquet"
        if not path.exists():
            return pd.DataFrame(columns=["config_hash", "series", "x", "y"])
        return pd.read_parquet(path)

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
