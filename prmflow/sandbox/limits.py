"""The resource limits of one sandboxed execution."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one execution may use. Each limit is enforced by the kernel (setrlimit) or by the runner
    (wall clock, output), so a program cannot lift it from inside."""

    timeout_s: float = 10.0
    """Wall-clock limit; past it the whole sandbox (process group and pid namespace) is killed."""
    cpu_s: int | None = None
    """RLIMIT_CPU per process, a backstop under the wall clock; None: ceil(timeout_s) + 1, so a busy
    loop meets the wall clock first and is reported as a timeout."""
    memory_mb: int = 1024
    """RLIMIT_AS (address space) per process, MiB."""
    max_processes: int = 16
    """RLIMIT_NPROC: processes and threads the sandbox's user may hold at once (Python itself is one)."""
    file_size_mb: int = 16
    """RLIMIT_FSIZE: the largest file a process may write, MiB."""
    tmp_size_mb: int = 64
    """Size of the private writable /tmp (a tmpfs), MiB; bounds the total of everything written there."""
    shm_size_mb: int = 16
    """Size of the private /dev/shm (a tmpfs, for POSIX shared memory and semaphores), MiB."""
    max_open_files: int = 64
    """RLIMIT_NOFILE."""
    max_output_bytes: int = 1 << 20
    """stdout and stderr are each read up to this many bytes; one more and the sandbox is killed."""

    def __post_init__(self) -> None:
        self._verify_args()

    def _verify_args(self, section: str = "sandbox") -> None:
        def positive(name: str, value: object, kind: type = int) -> None:
            ok = isinstance(value, kind) and not isinstance(value, bool) and value > 0
            if kind is float:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf
            if not ok:
                rule = "a positive number" if kind is float else "a positive integer"
                raise ValueError(f"{section}.{name} must be {rule}, got {value!r}")

        positive("timeout_s", self.timeout_s, float)
        if self.cpu_s is not None:
            positive("cpu_s", self.cpu_s)
        positive("memory_mb", self.memory_mb)
        positive("max_processes", self.max_processes)
        positive("file_size_mb", self.file_size_mb)
        positive("tmp_size_mb", self.tmp_size_mb)
        positive("shm_size_mb", self.shm_size_mb)
        positive("max_open_files", self.max_open_files)
        positive("max_output_bytes", self.max_output_bytes)
        # Python needs about 30 MiB of address space to start, and a few descriptors.
        if self.memory_mb < 64:
            raise ValueError(f"{section}.memory_mb must be >= 64 (Python needs it to start), got {self.memory_mb!r}")
        if self.max_open_files < 8:
            raise ValueError(f"{section}.max_open_files must be >= 8, got {self.max_open_files!r}")

    @property
    def memory_bound_mb(self) -> int:
        """What one sandbox can hold in memory at most, MiB: each of its processes is capped at
        ``memory_mb`` of address space and there are at most ``max_processes`` of them, its only
        writable places are the two tmpfs, and the memory no rlimit counts (System V shared memory and
        message queues, memfd files, POSIX message queues) is refused. Left out: the kernel's own
        per-process bookkeeping and pipe and socket buffers, which the kernel bounds per user."""
        return self.max_processes * self.memory_mb + self.tmp_size_mb + self.shm_size_mb

    @property
    def cpu_seconds(self) -> int:
        return self.cpu_s if self.cpu_s is not None else math.ceil(self.timeout_s) + 1
