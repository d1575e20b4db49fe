"""Many sandboxed executions at once: a bounded thread pool, one process tree per execution.

Threads are enough: each thread only waits on its child's pipes, the work happens in the children,
so ``workers`` executions use up to ``workers`` cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_many(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> list[R]:
    """``[fn(x) for x in items]`` with up to ``workers`` calls at once, results in input order."""
    items = list(items) if not isinstance(items, Sequence) else items
    workers = workers or default_workers()
    if workers == 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="prmflow-sandbox") as pool:
        return list(pool.map(fn, items))
