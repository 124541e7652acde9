"""The fit's progress on stderr: a one-line bar with rate and ETA."""

from __future__ import annotations

import sys
import time

from ..alignment.run import FitProgress, format_seconds


class StderrProgress:
    """A one-line progress bar with rate and ETA on stderr (a line per 5% when stderr is not a terminal)."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = -1.0
        self._last_step = -1

    def __call__(self, p: FitProgress) -> None:
        now = time.perf_counter()
        step = int(p.fraction * 20)
        final = p.stage == "done"
        if self.tty and not final and now - self._last < 0.2:
            return
        if not self.tty and not final and step == self._last_step:
            return
        self._last, self._last_step = now, step
        filled = int(self.width * p.fraction)
        rate = "?" if p.rate is None else f"{p.rate:.1f}"
        eta = "?" if p.eta_s is None else format_seconds(p.eta_s) + (f" (+ {p.next_stage})" if p.next_stage else "")
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {p.fraction * 100:5.1f}% {p.stage:<10} "
                f"{p.done}/{p.total} ({rate}/s) elapsed {format_seconds(p.elapsed_s)} ETA {eta}")
        self.stream.write(("\r" + line + ("\n" if final else "")) if self.tty else line + "\n")
        self.stream.flush()
