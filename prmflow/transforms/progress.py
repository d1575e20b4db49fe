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
