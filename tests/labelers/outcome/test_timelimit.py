"""The per-process worker pool that enforces time limits from any thread."""

import functools
import os
import threading
import time

import pytest

from prmflow.labelers.outcome.timelimit import TimeLimitedRunner, Timeout, WorkerDied, WorkerPool, shared_pool


def _gone(pid: int) -> bool:
    """Killed and reaped: no process, not even a zombie, is left with this pid."""
    return not os.path.exists(f"/proc/{pid}")


@pytest.fixture
def pool():
    p = WorkerPool(max_workers=2)
    yield p
    p.shutdown()


def test_workers_are_spawned_not_forked(pool):
    assert pool._ctx.get_start_method() == "spawn"


def test_a_timeout_off_the_main_thread_kills_the_worker_and_a_fresh_one_follows(pool):
    """Math-Verify's signal.alarm can't do this; a child process can be killed from any thread."""
    result = {}

    def work():
        result["pid"] = pool.call(os.getpid, (), 30)
        try:
            pool.call(time.sleep, (30,), 0.5)
        except Timeout as e:
            result["timeout"] = str(e)
        result["after"] = pool.call(sum, ([1, 2, 3],), 30)
        result["pid_after"] = pool.call(os.getpid, (), 30)

    t = threading.Thread(target=work)
    t.start()
    t.join(60)
    assert result["timeout"] == "gave up after 0.5 s" and result["after"] == 6
    assert pool.restarts == 1 and result["pid_after"] != result["pid"]
    assert _gone(result["pid"])  # killed and reaped, not left as a zombie


def test_workers_are_reused(pool):
    pids = {pool.call(os.getpid, (), 30) for _ in range(5)}
    assert len(pids) == 1 and pool.restarts == 0


def test_an_error_in_the_call_comes_back_and_keeps_the_worker(pool):
    pid = pool.call(os.getpid, (), 30)
    with pytest.raises(RuntimeError, match="ValueError: invalid literal"):
        pool.call(int, ("x",), 30)
    assert pool.call(os.getpid, (), 30) == pid and pool.restarts == 0


def test_a_worker_that_dies_is_replaced(pool):
    with pytest.raises(WorkerDied):
        pool.call(os._exit, (3,), 30)
    assert pool.call(sum, ([2, 2],), 30) == 4 and pool.restarts == 1


def test_threads_share_at_most_max_workers(pool):
    results, errors = [], []

    def work(i):
        try:
            results.append(pool.call(pow, (i, 2), 30))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert (sorted(results), errors) == ([i * i for i in range(8)], [])
    assert pool.live_workers <= 2


def test_last_user_leaving_stops_the_idle_workers():
    pool = WorkerPool(max_workers=1)
    a, b = TimeLimitedRunner(5, pool), TimeLimitedRunner(5, pool)
    pid = a.call(os.getpid)
    a.close()
    assert b.call(os.getpid) == pid  # still one user: the worker stays warm
    b.close()
    b.close()  # closing twice is harmless
    assert pool.live_workers == 0 and _gone(pid)


def test_one_pool_per_process():
    assert shared_pool() is shared_pool()


@pytest.mark.parametrize("bad", [0, -1, float("nan"), True, "5", None])
def test_runner_refuses_a_bad_limit(bad):
    with pytest.raises(ValueError, match="timeout_s must be a number > 0"):
        TimeLimitedRunner(bad, WorkerPool(1))


def test_warm_up_runs_before_the_first_call_and_outside_its_limit():
    """A fresh worker's imports take seconds on a busy machine; they must not eat a verdict's limit."""
    pool = WorkerPool(max_workers=1)
    try:
        runner = TimeLimitedRunner(1.0, pool, warmup=functools.partial(time.sleep, 2.0))
        assert runner.call(sum, [1, 2]) == 3 and pool.restarts == 0
        runner.close()
    finally:
        pool.shutdown()


def test_a_failing_warm_up_is_an_error_not_a_hang():
    pool = WorkerPool(max_workers=1)
    try:
        runner = TimeLimitedRunner(5, pool, warmup=functools.partial(int, "x"))
        with pytest.raises(WorkerDied, match="warm-up failed: ValueError"):
            runner.call(sum, [1, 2])
        assert pool.live_workers == 0
        runner.close()
    finally:
        pool.shutdown()


def test_math_labeler_is_safe_from_many_threads():
    """Beam runs DoFns on worker threads: verdicts from the shared pool, concurrently, are right."""
    from prmflow.labelers.outcome.math import MathLabeler

    cases = [("The answer is $\\frac{1}{2}$", "0.5", 1.0), ("\\boxed{\\sqrt{8}}", "2\\sqrt{2}", 1.0),
             ("\\boxed{(1, 2]}", "(1, 2)", 0.0), ("A: 72", "72", 1.0)]
    labelers = [MathLabeler() for _ in range(3)]
    results = []

    def work(labeler):
        results.extend((labeler.label(s, r).value, v) for s, r, v in cases * 2)

    threads = [threading.Thread(target=work, args=(lab,)) for lab in labelers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for lab in labelers:
        lab.close()
    assert len(results) == 3 * 8 and all(got == want for got, want in results)


@pytest.mark.parametrize("env, expected", [("3", 3), (None, min(4, os.cpu_count() or 1))])
def test_pool_size(monkeypatch, env, expected):
    if env is None:
        monkeypatch.delenv("PRMFLOW_TIMELIMIT_WORKERS", raising=False)
    else:
        monkeypatch.setenv("PRMFLOW_TIMELIMIT_WORKERS", env)
    assert WorkerPool().max_workers == expected


@pytest.mark.parametrize("bad", ["0", "two", "-1"])
def test_bad_pool_size_is_refused(monkeypatch, bad):
    monkeypatch.setenv("PRMFLOW_TIMELIMIT_WORKERS", bad)
    with pytest.raises(ValueError, match=f"PRMFLOW_TIMELIMIT_WORKERS must be an integer >= 1, got '{bad}'"):
        WorkerPool()
