"""`sim run` with the default process pool leaves no process behind however it stops.

Each case starts `sim run` on an experiment whose runs never finish in time, in its own session, waits until
its pool workers exist, stops it (SIGKILL: nothing can be caught, so the workers must notice their parent's
death themselves; SIGTERM and SIGINT: the handled stops) and asserts that within a few seconds no process
of that session is left and the stdout pipe it was given reaches end-of-file (a worker or the
multiprocessing resource tracker holding it would keep a caller such as `$(sim run ...)` waiting).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

SCRIPT = """
from sim.sweep.experiment import Experiment
from sim.config.scenario import Scenario

EXPERIMENT = Experiment(
    "never_ends",
    base=Scenario(duration="1000000s", drain="1s", topology={"name": "line", "params": {"n": 3}}),
    replications=4,
    seed=1,
)
"""
START_TIMEOUT = 60.0  # at most, for the pool's workers to appear (they import numpy, simpy, pydantic)
STOP_TIMEOUT = 10.0  # at most, for every process to be gone once `sim run` is stopped (~0.1 s normally)
# `sim run` starts with Ctrl-C enabled even when the test runs in the background (a non-interactive shell
# starts background jobs with SIGINT ignored, and an ignored signal stays ignored across exec)
DEFAULT_SIGINT = "; ".join(
    [
        "import os, signal, sys",
        "signal.signal(signal.SIGINT, signal.SIG_DFL)",
        "os.execv(sys.argv[1], sys.argv[1:])",
    ]
)


def _session(sid: int) -> dict[int, tuple[int, str]]:
    """pid -> (ppid, command line) of every live process in session ``sid`` (zombies are dead already)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] != "Z":
            found[int(entry.name)] = (int(fields[1]), cmdline.strip())
    return found


def _sim() -> list[str]:
    exe = Path(sys.executable).with_name("sim")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "sim.cli.main"]


def _eof(fd: int, timeout: float) -> bool:
    """Read ``fd`` until end-of-file; False if it stays open past ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if ready and os.read(fd, 65536) == b"":
            return True
    return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_stopping_sim_run_leaves_no_process_behind(tmp_path: Path, sig: signal.Signals) -> None:
    script = tmp_path / "never_ends.py"
    script.write_text(SCRIPT)
    argv = [*_sim(), "run", str(script), "--out", str(tmp_path / "out"), "--workers", "2"]
    argv = [sys.executable, "-c", DEFAULT_SIGINT, *argv]
    proc = subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
    )
    assert proc.stdout is not None
    sid = proc.pid  # a new session's id is its leader's pid
    try:
        deadline = time.monotonic() + START_TIMEOUT
        workers: dict[int, tuple[int, str]] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            workers = {
                pid: info
                for pid, info in _session(sid).items()
                if info[0] == proc.pid and "spawn_main" in info[1]
            }
            if len(workers) == 2:
                break
            time.sleep(0.1)
        assert len(workers) == 2, f"the pool's workers did not start: {_session(sid)}"
        time.sleep(0.5)  # past the workers' start-up, into their runs
        os.kill(proc.pid, sig)
        assert _eof(proc.stdout.fileno(), STOP_TIMEOUT), f"stdout still open; alive: {_session(sid)}"
        proc.wait(STOP_TIMEOUT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _session(sid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _session(sid) == {}, f"left behind after {sig.name}"
        if sig != signal.SIGKILL:
            assert proc.returncode == 130  # the interrupt path: finished rows stored, a rerun resumes
    finally:
        for pid in _session(sid):
            os.kill(pid, signal.SIGKILL)
        proc.stdout.close()
        proc.wait(STOP_TIMEOUT)
