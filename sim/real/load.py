"""The open-loop load and its record: when each message is due, when it was sent, confirmed and delivered.

Open loop: the schedule (:func:`schedule`) is fixed before the run, Poisson or constant at ``rate``, and the
publisher sends message *i* at its due time whatever happened to earlier messages. When the publisher falls
behind (the client or the machine is saturated), it sends at once and the :class:`Recorder` keeps the
lateness (``sent_ns - due_ns``). Latency is measured from the *due* time, so a stall delays every message
due during it and the record shows it: this is how coordinated omission is avoided (the publisher never waits
for a reply before the next send, and a late send does not move the clock its latency is measured from).

One clock: every timestamp is ``time.monotonic_ns()`` in the one process that publishes and consumes.

The tidy format (one row per message, Parquet, the run's settings as JSON in the file's metadata under
``sim.measure``) is documented in docs/calibrate.md.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.core.errors import SimError

__all__ = [
    "COLUMNS",
    "PATTERNS",
    "CpuWatch",
    "LoadSpec",
    "Measurement",
    "Recorder",
    "busy",
    "load_average",
    "machine",
    "read",
    "schedule",
]

COLUMNS = (
    "msg",
    "phase",
    "due_ns",
    "sent_ns",
    "confirmed_ns",
    "delivered_ns",
    "deliveries",
    "latency_s",
    "lateness_s",
)
"""The columns of a measurement, in order (docs/calibrate.md describes each)."""

PATTERNS = {
    "rabbitmq": ("queue", "pubsub", "request_reply"),
    "mosquitto": ("pubsub",),
    "nats": ("queue",),
}
"""What each broker's adapter measures (its default first)."""

NOT_YET = -1
"""A timestamp that never happened (no confirm, no delivery)."""


@dataclass(frozen=True)
class LoadSpec:
    """The workload and the broker settings of one measurement (OpenMessaging Benchmark's vocabulary:
    ``producerRate`` = ``rate``, ``messageSize`` = ``size``, ``testDurationMinutes`` = ``duration``)."""

    broker: str
    url: str
    rate: float
    size: int = 1024
    duration: float = 5.0
    arrivals: str = "poisson"
    pattern: str = "queue"
    confirms: bool = False
    durable: bool = False
    manual_ack: bool = False
    prefetch: int = 0
    qos: int = 0
    subscribers: int = 1
    train: int = 0
    """Messages published back to back after the open-loop part (and a pause); their delivery spacing is the
    service time of the bottleneck (``fit`` uses it). 0: none."""
    seed: int = 1
    drain: float = 5.0

    def __post_init__(self) -> None:
        checks = (
            ("rate", self.rate > 0 and math.isfinite(self.rate), "a rate > 0 (messages per second)"),
            ("size", self.size >= 16, "a size >= 16 bytes (the payload carries the message number)"),
            ("duration", self.duration > 0, "a duration > 0 s"),
            ("arrivals", self.arrivals in ("poisson", "constant"), "poisson or constant"),
            ("prefetch", self.prefetch >= 0, "a count >= 0 (0: unlimited)"),
            ("qos", self.qos in (0, 1, 2), "0, 1 or 2"),
            ("subscribers", self.subscribers >= 1, "a count >= 1"),
            ("train", self.train >= 0, "a count >= 0"),
        )
        for name, ok, allowed in checks:
            if not ok:
                raise SimError(name, getattr(self, name), allowed)
        patterns = PATTERNS.get(self.broker, ())
        if self.pattern not in patterns:
            raise SimError("pattern", self.pattern, f"one of {', '.join(patterns)} for {self.broker}")


def schedule(spec: LoadSpec) -> np.ndarray:
    """Due times in seconds from the start: the open-loop part, then the train (all due at one instant,
    ``drain`` seconds after the last open-loop message so that it starts on an empty broker)."""
    rng = np.random.default_rng(spec.seed)  # the schedule's own generator, seeded: a run is repeatable
    n = max(1, round(spec.rate * spec.duration))
    if spec.arrivals == "constant":
        due = np.arange(n) / spec.rate
    else:
        due = np.cumsum(rng.exponential(1.0 / spec.rate, n)) - 1.0 / spec.rate
        due = due[due < spec.duration] if (due < spec.duration).any() else due[:1]
    if spec.train:
        start = float(due[-1]) + min(spec.drain, 1.0)
        due = np.concatenate([due, np.full(spec.train, start)])
    return np.asarray(due, dtype=float)


def machine() -> dict[str, Any]:
    """Where a measurement was taken: platform, processor, cores, Python."""
    import os

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def load_average() -> float:
    """The machine's load average over the last minute (``os.getloadavg``; NaN where there is none)."""
    import os

    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return math.nan


BUSY_SHARE = 0.1
"""A run is taken on a busy machine when other processes used more than this share of the cores."""


def busy(others: float, cores: float) -> bool | None:
    """Whether a run during which other processes used ``others`` cores on average (:class:`CpuWatch`) of
    the machine's ``cores`` was taken on a busy machine: above a tenth of the cores, something else competed
    with the broker and its clients for the CPU, and the latencies measure that competition too. The load
    average cannot tell: the broker and its clients raise it themselves (to about 1 on 2 cores at high
    load). None when unknown (NaN)."""
    if not (math.isfinite(others) and math.isfinite(cores)):
        return None
    return others > BUSY_SHARE * cores


class CpuWatch:
    """The CPU time other processes used during a run: the machine's busy CPU time (every core: user,
    system, interrupts, steal; ``psutil.cpu_times``) less that of this process and of ``pids`` with their
    descendants (the broker a run started). A process that ends during the run (a killed broker) counts as
    another's for the CPU it used before (a fraction of a second at these loads), and so does a short-lived
    child the run starts and reaps (none does today)."""

    def __init__(self, pids: Callable[[], Iterable[int]] = tuple) -> None:
        self._pids = pids
        self._start: tuple[float, float, dict[int, float]] | None = None

    def _sample(self) -> tuple[float, float, dict[int, float]]:
        import os

        import psutil  # type: ignore[import-untyped]

        t = psutil.cpu_times()
        machine = sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
        own: dict[int, float] = {}
        for pid in {os.getpid(), *self._pids()}:
            try:
                root = psutil.Process(pid)
                for proc in (root, *root.children(recursive=True)):
                    c = proc.cpu_times()
                    own[proc.pid] = c.user + c.system
            except psutil.Error:  # gone meanwhile: its time counts as another's
                continue
        return time.monotonic(), machine, own

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> float:
        """Cores other processes used on average since :meth:`start`."""
        if self._start is None:
            raise RuntimeError("CpuWatch.stop before start")
        (w0, m0, own0), (w1, m1, own1) = self._start, self._sample()
        own = sum(cpu - own0.get(pid, 0.0) for pid, cpu in own1.items())
        return max(0.0, (m1 - m0 - own) / max(w1 - w0, 1e-9))


@dataclass
class Recorder:
    """Per-message timestamps of one measurement (plain numpy columns; ``NOT_YET`` where none)."""

    n: int
    open_loop: int
    due_ns: np.ndarray = field(init=False)
    sent_ns: np.ndarray = field(init=False)
    confirmed_ns: np.ndarray = field(init=False)
    delivered_ns: np.ndarray = field(init=False)
    deliveries: np.ndarray = field(init=False)
    start_ns: int = 0
    stray: int = 0
    """Deliveries of a message this run has not sent (a broker's leftover from an earlier run): ignored."""

    def __post_init__(self) -> None:
        self.due_ns = np.full(self.n, NOT_YET, dtype=np.int64)
        self.sent_ns = np.full(self.n, NOT_YET, dtype=np.int64)
        self.confirmed_ns = np.full(self.n, NOT_YET, dtype=np.int64)
        self.delivered_ns = np.full(self.n, NOT_YET, dtype=np.int64)
        self.deliveries = np.zeros(self.n, dtype=np.int64)

    @staticmethod
    def now() -> int:
        """The one clock (nanoseconds)."""
        return time.monotonic_ns()

    def sent(self, i: int, due_ns: int) -> None:
        self.due_ns[i] = due_ns
        self.sent_ns[i] = time.monotonic_ns()

    def confirmed(self, i: int) -> None:
        if self.confirmed_ns[i] == NOT_YET:
            self.confirmed_ns[i] = time.monotonic_ns()

    def delivered(self, i: int) -> None:
        """Message ``i`` reached a consumer; the first delivery's time is kept, every one is counted. A
        delivery of a message not yet sent is not this run's: it is counted in ``stray`` and nothing else."""
        if 0 <= i < self.n and self.sent_ns[i] != NOT_YET:
            if self.delivered_ns[i] == NOT_YET:
                self.delivered_ns[i] = time.monotonic_ns()
            self.deliveries[i] += 1
        else:
            self.stray += 1

    def pending(self) -> int:
        """Messages sent and not yet delivered."""
        return int(((self.sent_ns != NOT_YET) & (self.deliveries == 0)).sum())

    def frame(self) -> pd.DataFrame:
        """The tidy table: one row per message, times relative to the run's start (ns)."""
        rel = {}
        for name in ("due_ns", "sent_ns", "confirmed_ns", "delivered_ns"):
            col = getattr(self, name)
            rel[name] = np.where(col == NOT_YET, NOT_YET, col - self.start_ns)
        idx = np.arange(self.n)
        delivered = self.delivered_ns != NOT_YET
        sent = self.sent_ns != NOT_YET
        return pd.DataFrame(
            {
                "msg": idx,
                "phase": np.where(idx < self.open_loop, "open", "train"),
                **rel,
                "deliveries": self.deliveries,
                "latency_s": np.where(delivered, (self.delivered_ns - self.due_ns) / 1e9, np.nan),
                "lateness_s": np.where(sent, (self.sent_ns - self.due_ns) / 1e9, np.nan),
            },
            columns=list(COLUMNS),
        )


@dataclass(frozen=True)
class Measurement:
    """A measurement: its table and its metadata (``spec``, ``broker_version``, ``machine``, ``faults``)."""

    frame: pd.DataFrame
    meta: dict[str, Any]

    @property
    def spec(self) -> LoadSpec:
        return LoadSpec(**self.meta["spec"])

    @property
    def load(self) -> float:
        """The higher load average of the run's start and end (``meta["load_average"]``; NaN if not
        recorded, as in measurements older than the record). Information only: see :attr:`others`."""
        la = self.meta.get("load_average") or {}
        values = [float(la[k]) for k in ("start", "end") if la.get(k) is not None]
        return max(values) if values else math.nan

    @property
    def others(self) -> float:
        """Cores other processes used on average during the run (``meta["others_cpu"]``, :class:`CpuWatch`;
        NaN if not recorded, as in measurements older than the record)."""
        value = self.meta.get("others_cpu")
        return math.nan if value is None else float(value)

    @property
    def cores(self) -> float:
        """The machine's cores (``meta["machine"]["cores"]``; NaN if not recorded)."""
        return float(self.meta.get("machine", {}).get("cores") or math.nan)

    @property
    def busy(self) -> bool | None:
        """Taken on a busy machine (:func:`busy`); None if the other processes' CPU was not recorded."""
        return busy(self.others, self.cores)

    def conditions(self) -> dict[str, float]:
        """The machine's state during the run, as a result row carries it: ``others_cpu``, ``load_avg``
        (information only) and ``cores``."""
        return {"others_cpu": self.others, "load_avg": self.load, "cores": self.cores}

    def open_loop(self) -> pd.DataFrame:
        return self.frame[self.frame["phase"] == "open"]

    def write(self, path: Path) -> None:
        """Write the table with its metadata as one Parquet file, atomically."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from sim.sweep.store import atomic_write

        table = pa.Table.from_pandas(self.frame, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"sim.measure": json.dumps(self.meta, sort_keys=True).encode()}
        )
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        atomic_write(Path(path), sink.getvalue().to_pybytes())

    @classmethod
    def from_run(cls, spec: LoadSpec, rec: Recorder, version: str, **extra: Any) -> Measurement:
        meta = {"spec": asdict(spec), "broker_version": version, "machine": machine(), **extra}
        return cls(rec.frame(), meta)


def read(path: str | Path) -> Measurement:
    """Read a measurement written by :meth:`Measurement.write` (``sim measure --out``)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise SimError("measurement", str(path), f"a Parquet file written by sim measure ({exc})") from None
    raw = (table.schema.metadata or {}).get(b"sim.measure")
    if raw is None or list(table.column_names) != list(COLUMNS):
        raise SimError("measurement", str(path), "a Parquet file written by sim measure")
    return Measurement(table.to_pandas(), json.loads(raw))
