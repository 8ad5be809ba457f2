"""Where runs execute: ``serial`` (this process), ``processes`` (a local pool, one worker per core, the
default) or ``dask`` (a ``distributed`` cluster at an address, or a LocalCluster). Every engine runs the same
function on the same plain inputs, so identical seeds give identical rows everywhere."""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sim.errors import SimError

__all__ = ["ENGINES", "execute", "run_all"]

ENGINES = ("serial", "processes", "dask")
log = logging.getLogger("sim.engines")
Row = dict[str, Any]


def execute(payload: dict[str, Any]) -> Row:
    """Run one scenario (given as plain data) and return its row; an exception becomes a failed row."""
    from sim.run import simulate
    from sim.scenario import Scenario

    row: Row = {k: payload[k] for k in ("point", "replication", "seed", "config_hash")}
    row.update(payload["params"])
    started = time.perf_counter()
    try:
        scenario = Scenario.from_dict(payload["scenario"])
        result = simulate(scenario, search=[Path(p) for p in payload.get("search", [])])
        row.update(result.summary)
        row["_series"] = {name: [list(x), list(y)] for name, (x, y) in result.series.items()}
        if payload.get("ledger_path"):
            from sim.store import write_parquet

            write_parquet(result.ledger, Path(payload["ledger_path"]))
        row.update(status="ok", error="")
    except Exception as exc:  # a failing run is recorded, and the sweep goes on
        last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {Path(last.filename).name}:{last.lineno}" if last else ""
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}{where}")
    row["wall_time"] = time.perf_counter() - started
    return row


def run_all(
    payloads: Sequence[dict[str, Any]],
    on_row: Callable[[Row], None],
    *,
    engine: str = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
) -> None:
    """Execute every payload on ``engine``, calling ``on_row`` (in this process) as each finishes."""
    if engine not in ENGINES:
        raise SimError("--engine", engine, "one of " + ", ".join(ENGINES))
    if workers is not None and workers < 1:
        raise SimError("--workers", workers, "a whole number >= 1")
    if not payloads:
        return
    if engine == "serial":
        for p in payloads:
            on_row(execute(p))
    elif engine == "processes":
        _pool(payloads, on_row, workers or os.cpu_count() or 1)
    else:
        _dask(payloads, on_row, workers, scheduler)


def _pool(payloads: Sequence[dict[str, Any]], on_row: Callable[[Row], None], workers: int) -> None:
    workers = min(workers, len(payloads))
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending: set[Future[Row]] = set()
        queue = iter(payloads)
        try:
            for p in _take(queue, 2 * workers):  # a short queue: an interrupt loses no finished row
                pending.add(pool.submit(execute, p))
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    on_row(f.result())
                for p in _take(queue, len(done)):
                    pending.add(pool.submit(execute, p))
        except BaseException:
            for f in pending:
                f.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _take(items: Iterable[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    out = []
    for item in items:
        out.append(item)
        if len(out) >= n:
            break
    return out


def _dask(
    payloads: Sequence[dict[str, Any]],
    on_row: Callable[[Row], None],
    workers: int | None,
    scheduler: str | None,
) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise SimError("--engine", "dask", "dask.distributed installed (pip install 'sim[dask]')") from None
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="10s")  # type: ignore[no-untyped-call]
            except (OSError, TimeoutError) as exc:
                raise SimError("--scheduler", scheduler, f"a reachable dask scheduler ({exc})") from None
        else:
            cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # any free port: a second cluster must not collide
            )
            client = Client(cluster)  # type: ignore[no-untyped-call]
        with client:
            futures = client.map(execute, list(payloads), pure=False)
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                on_row(future.result())
    finally:
        if cluster is not None:
            cluster.close()
