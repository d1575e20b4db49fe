"""Progress a worker logs while it runs: at most one line every few seconds per DoFn instance."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("prmflow")


class Progress:
    def __init__(self, message: str, every_s: float = 5.0) -> None:
        """``message`` is a %-format with one %d: the count so far."""
        self.message, self.every_s = message, every_s
        self.count, self._last = 0, time.monotonic()

    def tick(self, n: int = 1) -> None:
        self.count += n
        if time.monotonic() - self._last > self.every_s:
            log.info(self.message, self.count)
            self._last = time.monotonic()


def eta_text(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class FileProgress:
    """Reading one file: records so far, the fraction of its (stored, so compressed) bytes read,
    and the time left at the rate so far, logged every few seconds."""

    def __init__(self, label: str, total_bytes: int | None, every_s: float = 5.0) -> None:
        self.label, self.total, self.every_s = label, total_bytes, every_s
        self.count, self.started = 0, time.monotonic()
        self._last = self.started

    def line(self, position: int | None) -> str:
        text = f"{self.label}: {self.count} records"
        if self.total and position:
            done = min(position / self.total, 1.0)
            elapsed = time.monotonic() - self.started
            text += f", {done:.1%} of the file"
            if done > 0:
                text += f", ETA {eta_text(elapsed * (1 - done) / done)}"
        return text

    def tick(self, position_fn) -> None:
        self.count += 1
        if time.monotonic() - self._last > self.every_s:
            log.info("%s", self.line(position_fn()))
            self._last = time.monotonic()
