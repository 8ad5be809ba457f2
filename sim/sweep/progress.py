"""Progress of a sweep: a bar with ETA and failures on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

__all__ = ["Progress"]

log = logging.getLogger("sim.sweep.progress")


class Progress:
    """Counts finished runs of ``total``; draws a bar on a TTY, logs a line every 10 % (or 30 s) otherwise."""

    def __init__(
        self,
        total: int,
        *,
        label: str = "runs",
        quiet: bool = False,
        stream: TextIO | None = None,
        tty: bool | None = None,
    ) -> None:
        self.total = total
        self.label = label
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.done = self.failed = 0
        self.started = time.monotonic()
        self._logged_at = self.started
        self._logged_done = 0

    def eta(self) -> float:
        """Seconds left at the average pace so far (``nan`` before the first run finishes)."""
        if self.done == 0:
            return float("nan")
        return (time.monotonic() - self.started) / self.done * (self.total - self.done)

    def line(self) -> str:
        eta = self.eta()
        left = "?" if eta != eta else f"{int(eta) // 60}:{int(eta) % 60:02d}"
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.done}/{self.total} {self.label}{failed}, ETA {left}"

    def update(self, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        if self.quiet:
            return
        if self.tty:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.line()}   ")
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()
            return
        now = time.monotonic()
        step = max(1, self.total // 10)
        if self.done == self.total or self.done - self._logged_done >= step or now - self._logged_at >= 30:
            log.info("%s", self.line())
            self._logged_at, self._logged_done = now, self.done
