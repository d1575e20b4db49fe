"""Run a function under a wall-clock limit from any thread, by running it in a child process.

Math-Verify's own limits use ``signal.alarm``, which only works on the main thread; Beam runs DoFns
on worker threads, and sympy can hang on adversarial input. A child process can be killed, a thread
cannot. One child is kept warm and reused; it is replaced after a timeout.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from collections.abc import Callable
from typing import Any


class Timeout(Exception):
    """The call did not finish within its limit; the child running it was killed."""


def _worker(conn) -> None:
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        fn, args = msg
        try:
            conn.send((True, fn(*args)))
        except BaseException as e:  # noqa: BLE001 - shipped back to the caller as a value
            conn.send((False, f"{type(e).__name__}: {e}"))


class TimeLimitedRunner:
    """Calls ``fn(*args)`` in a warm child process, killing and replacing it past ``timeout_s``.

    ``fn`` must be a picklable module-level function. Thread-safe: calls are serialised, which is
    what a DoFn instance needs (Beam gives each thread its own instance anyway).
    """

    def __init__(self, timeout_s: float) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._proc: mp.process.BaseProcess | None = None
        self._conn = None
        # spawn, not fork: the parent has gRPC and Beam threads, and forking those can deadlock.
        self._ctx = mp.get_context("spawn")

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_worker, args=(child,), daemon=True, name="prmflow-timelimit")
        self._proc.start()
        child.close()
        self._conn = parent

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn = None, None

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """The result of ``fn(*args)``; raises Timeout, or RuntimeError with the child's error."""
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self._start()
            self._conn.send((fn, args))
            if not self._conn.poll(self.timeout_s):
                self._kill()
                raise Timeout(f"gave up after {self.timeout_s:g} s")
            try:
                ok, value = self._conn.recv()
            except EOFError:
                self._kill()
                raise RuntimeError("the labeling child process died") from None
        if not ok:
            raise RuntimeError(value)
        return value

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.send(None)
                except OSError:
                    pass
            self._kill()

    def __del__(self) -> None:  # best effort: don't leave children behind
        try:
            self._kill()
        except Exception:  # noqa: BLE001
            pass
