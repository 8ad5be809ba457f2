"""Where runs execute: ``serial`` (this process), ``processes`` (a local pool, one worker per core, the
default) or ``dask`` (a ``distributed`` cluster at an address, or a LocalCluster). Every engine runs the same
function on the same plain inputs, so identical seeds give identical rows everywhere."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

from sim.core.errors import SimError

__all__ = ["ENGINES", "execute", "run_all"]

ENGINES = ("serial", "processes", "dask")
log = logging.getLogger("sim.sweep.engines")
Row = dict[str, Any]


def execute(payload: dict[str, Any]) -> Row:
    """Run one scenario (given as plain data) and return its row; an exception becomes a failed row."""
    from sim.config.scenario import Scenario
    from sim.patterns.registry import PluginError, provided
    from sim.run.simulate import simulate

    row: Row = {k: payload[k] for k in ("point", "replication", "seed", "config_hash")}
    row.update(payload["params"])
    started = time.perf_counter()
    try:
        with provided(payload.get("plugins", {})):  # a plug-in runs as the bytes the sweep hashed
            scenario = Scenario.from_dict(payload["scenario"])
            result = simulate(scenario, search=[Path(p) for p in payload.get("search", [])])
            if payload.get("check"):  # how many times the run broke each promise (with the plug-in lent)
                row["_violations"] = dict(Counter(v.rule for v in result.check()))
        row.update(result.summary)
        row["_series"] = {name: [list(x), list(y)] for name, (x, y) in result.series.items()}
        if payload.get("ledger_path"):
            from sim.sweep.store import write_parquet

            write_parquet(result.ledger, Path(payload["ledger_path"]))
        row.update(status="ok", error="")
    except Exception as exc:  # a failing run is recorded, and the sweep goes on
        last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        if isinstance(exc, PluginError):
            last = None  # its message says where in the plug-in
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
    if scheduler is not None and engine != "dask":  # only a dask engine has a scheduler to reach
        raise SimError("--scheduler", scheduler, "no scheduler unless --engine dask")
    if not payloads:
        return
    payloads = _with_plugins(payloads)
    with _stop_signals_interrupt():
        if engine == "serial":
            for p in payloads:
                on_row(execute(p))
        elif engine == "processes":
            _pool(payloads, on_row, workers or os.cpu_count() or 1)
        else:
            _dask(payloads, on_row, workers, scheduler)


def _with_plugins(payloads: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each payload with the bytes of its plug-in pattern file (``plugins``), read once per file: a worker
    runs those bytes, not what it may find on its disk (a dask worker may have none)."""
    from sim.patterns.registry import sources

    read: dict[str, dict[str, bytes]] = {}
    out = []
    for p in payloads:
        scenario = p.get("scenario")
        pattern = scenario.get("pattern", "") if isinstance(scenario, dict) else ""
        files = read.get(pattern)
        if files is None:
            try:
                files = read[pattern] = sources(pattern)
            except SimError:  # unreadable now: the run fails and says why
                files = read[pattern] = {}
        out.append({**p, "plugins": files} if files else p)
    return out


# -- stopping cleanly ------------------------------------------------------------------------------------
#
# `sim run` must leave no process behind however it stops. Ctrl-C (SIGINT) raises KeyboardInterrupt in the
# main thread; SIGTERM and SIGHUP are turned into the same KeyboardInterrupt while runs execute, so every
# stop takes one path: the pool's workers are terminated, finished rows stay stored. SIGKILL cannot be
# caught, so each worker also watches its parent itself (``_worker_init``) and dies with it; the
# multiprocessing resource tracker then reads end-of-file on its pipe and exits too.

_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PARENT_POLL = 0.5  # seconds between checks of the parent where prctl is not available


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _worker_init(parent: int) -> None:
    """Prepare a pool worker: it dies with ``parent``, leaves Ctrl-C to the parent (which terminates it) and
    does not hold the caller's stdout open."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not _die_with_parent(parent):
        threading.Thread(target=_watch_parent, args=(parent,), name="sim-watch-parent", daemon=True).start()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def _die_with_parent(parent: int) -> bool:
    """Ask Linux to SIGKILL this process when its parent dies; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
    return True


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL)
    os._exit(1)


def _processes(pool: ProcessPoolExecutor) -> list[BaseProcess]:
    """The pool's worker processes (``concurrent.futures`` keeps them in ``_processes``; Python 3.14 adds
    ``terminate_workers()`` for what ``_terminate`` does)."""
    return list((getattr(pool, "_processes", None) or {}).values())


def _terminate(processes: Sequence[BaseProcess], grace: float = 2.0) -> None:
    """Stop workers now, running runs included (their rows are not stored; a rerun resumes them)."""
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in processes:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)


def _pool(payloads: Sequence[dict[str, Any]], on_row: Callable[[Row], None], workers: int) -> None:
    workers = min(workers, len(payloads))
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    ) as pool:
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
            processes = _processes(pool)  # before shutdown, which forgets them
            pool.shutdown(wait=False, cancel_futures=True)  # the pool's own thread cancels what waits
            _terminate(processes)
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
