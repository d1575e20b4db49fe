"""Run a function under a wall-clock limit from any thread, on a pool of warm worker processes.

Math-Verify's own limits use ``signal.alarm``, which only works on the main thread; Beam runs DoFns
on worker threads, and sympy can hang on adversarial input. A child process can be killed, a thread
cannot. One pool serves the whole (SDK) process: every labeler and every DoFn thread in it shares
the same workers, which start on demand (at most ``max_workers``), are reused call after call, and
are killed and replaced when a call runs past its limit. Workers are started with ``spawn``: the
parent has gRPC and Beam threads, and forking those can deadlock. As with any spawned process, a
script that starts workers needs the ``if __name__ == "__main__":`` guard (``python -m`` and console
scripts have it).
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import threading
from collections.abc import Callable
from typing import Any


class Timeout(Exception):
    """The call did not finish within its limit; the worker running it was killed."""


class WorkerDied(RuntimeError):
    """The worker process ended in the middle of a call (killed from outside, out of memory)."""


def _serve(conn) -> None:
    """A worker's loop: (fn, args) in, (ok, result or error text) out, until None or EOF."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        fn, args = msg
        try:
            reply = (True, fn(*args))
        except BaseException as e:  # noqa: BLE001 - shipped back to the caller as a value
            reply = (False, f"{type(e).__name__}: {e}"[:2000])
        try:
            conn.send(reply)
        except Exception as e:  # noqa: BLE001 - an unpicklable result is the caller's error
            conn.send((False, f"the result could not be sent back: {type(e).__name__}: {e}"[:2000]))


# A fresh worker imports what its calls need (sympy, Math-Verify's LaTeX parser: seconds on a busy
# machine) before its first call is timed; past this, it is broken and replaced.
WARM_UP_LIMIT_S = 120.0


class _Worker:
    def __init__(self, ctx, warmups: tuple[Callable[[], Any], ...]) -> None:
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child,), daemon=True, name="prmflow-timelimit")
        self.proc.start()
        child.close()
        self.conn = parent
        try:
            # os.getpid first: the interpreter's start-up is not the first call's time either
            for warmup in (os.getpid, *warmups):
                ok, value = self.run(warmup, (), WARM_UP_LIMIT_S)
                if not ok:
                    raise WorkerDied(f"the worker's warm-up failed: {value}")
        except BaseException:
            self.kill()
            raise

    def run(self, fn: Callable[..., Any], args: tuple, timeout_s: float) -> tuple[bool, Any]:
        self.conn.send((fn, args))
        if not self.conn.poll(timeout_s):
            raise Timeout(f"gave up after {timeout_s:g} s")
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            raise WorkerDied("the worker process died during the call") from None

    def kill(self) -> None:
        """Kill and reap the process, so that no zombie and no orphan is left behind."""
        try:
            self.proc.kill()
            self.proc.join(10)
        except Exception:  # noqa: BLE001 - already gone
            pass
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass

    def stop(self) -> None:
        """Ask an idle worker to exit, then make sure it did."""
        try:
            self.conn.send(None)
            self.proc.join(2)
        except Exception:  # noqa: BLE001
            pass
        self.kill()


def default_max_workers() -> int:
    """``PRMFLOW_TIMELIMIT_WORKERS``, else min(4, CPUs). Each worker holds sympy and Math-Verify
    (~150 MB), and a runner may start one SDK process per core, each with its own pool; most GSM8K
    answers never reach a worker (the plain-number fast path), so a few per process suffice."""
    env = os.environ.get("PRMFLOW_TIMELIMIT_WORKERS")
    if env is not None:
        if not env.strip().isdigit() or int(env) < 1:
            raise ValueError(f"PRMFLOW_TIMELIMIT_WORKERS must be an integer >= 1, got {env!r}")
        return int(env)
    return max(1, min(4, os.cpu_count() or 1))


class WorkerPool:
    """Warm worker processes shared by the threads of one process.

    ``call(fn, args, timeout_s)`` takes an idle worker (starting one while fewer than
    ``max_workers`` run, else waiting for one), runs ``fn(*args)`` in it and hands it back; past
    ``timeout_s`` the worker is killed, a later call starts a fresh one, and the caller gets
    ``Timeout``. ``fn`` must be a picklable module-level function.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is None:
            max_workers = default_max_workers()
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be an integer >= 1, got {max_workers!r}")
        self.max_workers = max_workers
        self._ctx = mp.get_context("spawn")
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._live = 0
        self._users = 0
        self._warmups: tuple[Callable[[], Any], ...] = ()
        self.restarts = 0
        """Workers killed for running past their limit or dying: a count for tests and logs."""

    @property
    def live_workers(self) -> int:
        return self._live

    def _take(self) -> _Worker:
        with self._cond:
            while not self._idle and self._live >= self.max_workers:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._live += 1
        try:
            return _Worker(self._ctx, self._warmups)  # outside the lock: a spawn takes a while
        except BaseException:
            with self._cond:
                self._live -= 1
                self._cond.notify()
            raise

    def _give_back(self, worker: _Worker, healthy: bool) -> None:
        if healthy:
            with self._cond:
                self._idle.append(worker)
                self._cond.notify()
            return
        worker.kill()
        with self._cond:
            self._live -= 1
            self.restarts += 1
            self._cond.notify()

    def call(self, fn: Callable[..., Any], args: tuple, timeout_s: float) -> Any:
        """``fn(*args)`` in a worker; raises Timeout, WorkerDied, or RuntimeError with its error."""
        worker = self._take()
        healthy = False
        try:
            ok, value = worker.run(fn, args, timeout_s)
            healthy = True
        finally:
            # On Timeout, WorkerDied, or an interrupt in the middle of a call, the worker's state
            # is unknown: kill it rather than hand a busy process to the next caller.
            self._give_back(worker, healthy)
        if not ok:
            raise RuntimeError(value)
        return value

    def acquire(self, warmup: Callable[[], Any] | None = None) -> WorkerPool:
        """Count one more user; ``warmup`` (a picklable module-level function) runs in every worker
        started from now on, before its first call, outside any call's time limit."""
        with self._cond:
            self._users += 1
            if warmup is not None and warmup not in self._warmups:
                self._warmups += (warmup,)
        return self

    def release(self) -> None:
        """One user is done; when none is left, the idle workers exit (a later call starts new ones)."""
        with self._cond:
            self._users = max(0, self._users - 1)
            if self._users:
                return
            idle, self._idle = self._idle, []
            self._live -= len(idle)
        for worker in idle:
            worker.stop()

    def shutdown(self) -> None:
        """Stop every idle worker now (busy ones are killed when their call returns to the pool)."""
        with self._cond:
            idle, self._idle = self._idle, []
            self._live -= len(idle)
        for worker in idle:
            worker.stop()


_pool: WorkerPool | None = None
_pool_pid: int | None = None
_pool_lock = threading.Lock()


def shared_pool() -> WorkerPool:
    """This process's pool. A forked child gets its own: its parent's workers are not its children."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool, _pool_pid = WorkerPool(), os.getpid()
        return _pool


@atexit.register
def _shutdown_at_exit() -> None:
    if _pool is not None and _pool_pid == os.getpid():
        _pool.shutdown()


class TimeLimitedRunner:
    """A handle on the shared pool with one time limit: ``call(fn, *args)``, then ``close()``."""

    def __init__(
        self, timeout_s: float, pool: WorkerPool | None = None, warmup: Callable[[], Any] | None = None
    ) -> None:
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            raise ValueError(f"timeout_s must be a number > 0, got {timeout_s!r}")
        self.timeout_s = float(timeout_s)
        self._pool = (pool or shared_pool()).acquire(warmup)
        self._closed = False
        self._lock = threading.Lock()

    @property
    def max_workers(self) -> int:
        """How many calls the pool can run at once."""
        return self._pool.max_workers

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """The result of ``fn(*args)``; raises Timeout, or RuntimeError with the worker's error."""
        return self._pool.call(fn, args, self.timeout_s)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._pool.release()
