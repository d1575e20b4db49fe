"""An output directory that a reader cannot misread and a failing run cannot destroy.

A run never writes into ``out_dir`` directly:

1. **Check and lock.** ``out_dir`` must be (or become) a writable directory, else ``ConfigError``
   before any pipeline stage runs. ``out_dir/.prmflow.lock`` is created exclusively and names the
   holder (pid, host, start time, config digest); a second run into the same directory is refused
   with those details. A lock whose pid is gone on this host (or whose pid now belongs to a newer
   process) is stale and taken over, so a ``kill -9`` never leaves a directory locked for good.
2. **Stage.** The pipeline writes every table and the manifest under ``out_dir/.prmflow-staging-<run>``;
   readers never look there, and a run that fails, crashes or is interrupted deletes it (or leaves it
   to the next run, which removes leftover staging directories once it holds the lock).
3. **Publish** (only after the pipeline and the manifest are complete): remove ``_SUCCESS`` (from here
   on readers refuse the directory), move the previous tables aside, move the staged tables and
   manifest in, write ``_SUCCESS`` last, then delete the old tables and the staging directory.

What is atomic where:
- Local disk: the lock is an ``O_CREAT | O_EXCL`` create; each table moves with one ``rename(2)`` of
  its directory (staging lives inside ``out_dir``, so on the same filesystem). Publishing six tables
  is not one atomic step, which is why ``_SUCCESS`` is removed first and written last: at every
  instant a reader sees either the old complete output or no ``_SUCCESS``.
- Object stores (``gs://`` through Beam's ``FileSystems``): a rename is a copy and a delete per object,
  and creating the lock is check-then-write, so two runs starting in the same second can both take
  it; liveness of a holder on another host cannot be checked, so such a lock is only reported. The
  ``_SUCCESS`` protocol is the same. Shards themselves were already written under temporary names
  and renamed (``transforms/write.py``).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from apache_beam.io.filesystems import FileSystems

from prmflow.config import ConfigError
from prmflow.reaper import start_ticks
from prmflow.schemas import TABLES
from prmflow.transforms.write import is_local_path as is_local

log = logging.getLogger("prmflow")

MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"
LOCK = ".prmflow.lock"
STAGING_PREFIX = ".prmflow-staging-"
REPLACED_PREFIX = ".prmflow-replaced-"
# A lock file that cannot be parsed was caught between its exclusive create and its write, or was
# written by a crashed process; past this age it is the latter.
UNREADABLE_LOCK_STALE_S = 60.0


class OutputLocked(FileExistsError):
    """Another run holds the output directory's lock."""


class PublishError(OSError):
    """Moving a complete staged output into place failed part-way."""


@dataclass(frozen=True)
class Holder:
    """Who holds an output directory's lock."""

    pid: int
    host: str
    started: str
    """UTC start time of the run, ISO 8601."""
    process_start: int | None
    """The kernel's start time of ``pid`` (``/proc/<pid>/stat`` field 22), so a recycled pid is not
    mistaken for the holder; None where there is no /proc."""
    run_id: str
    config: str
    """The config digest of the run."""

    @classmethod
    def this_process(cls, run_id: str, config: str) -> Holder:
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        pid = os.getpid()
        return cls(pid, socket.gethostname(), now, start_ticks(pid), run_id, config)

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, started {self.started}"

    def alive(self) -> bool | None:
        """False when the holder is certainly gone; None when it runs on another host."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by another user
            pass
        ticks = start_ticks(self.pid)
        return not (self.process_start is not None and ticks is not None and ticks != self.process_start)


def check_writable(out_dir: str) -> None:
    """``out_dir`` is, or can be made, a directory this process can write; else one ConfigError line."""
    if not is_local(out_dir):
        return  # an object store has no directories; the lock's create is the check
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ConfigError(f"output.dir must be a directory, got {out_dir!r}, which is a file")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"output.dir must be a writable directory, got {out_dir!r} ({e.strerror})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"output.dir must be a writable directory, got {out_dir!r} (permission denied)")


def read_holder(lock_path: str) -> Holder | None:
    try:
        with FileSystems.open(lock_path) as f:
            return Holder(**json.loads(f.read().decode("utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _lock_age_s(lock_path: str) -> float:
    try:
        return time.time() - FileSystems.match([lock_path])[0].metadata_list[0].last_updated_in_seconds
    except Exception:  # noqa: BLE001 - an unknown age counts as fresh, which only refuses
        return 0.0


class Lock:
    """``out_dir/.prmflow.lock``; see the module docstring for what is exclusive where."""

    def __init__(self, out_dir: str, holder: Holder) -> None:
        self.path = FileSystems.join(out_dir, LOCK)
        self.out_dir, self.holder = out_dir, holder
        self.held = False

    def acquire(self) -> None:
        for _ in range(3):  # a stale lock is removed, then the create is tried again
            if self._create():
                self.held = True
                return
            other = read_holder(self.path)
            if other is None and _lock_age_s(self.path) > UNREADABLE_LOCK_STALE_S:
                log.warning("removing an unreadable lock file %s left by a crashed run", self.path)
                self._remove_if(None)
                continue
            if other is not None and other.alive() is False:
                log.warning("removing a stale lock: %s is no longer running", other.describe())
                self._remove_if(other)
                continue
            who = other.describe() if other else "a run whose lock file is still being written"
            raise OutputLocked(
                f"output.dir {self.out_dir!r} is in use by another prmflow run ({who}); wait for it, or "
                f"delete {self.path} if that run is gone"
            )
        raise OutputLocked(f"output.dir {self.out_dir!r}: could not take the lock {self.path}; try again")

    def _create(self) -> bool:
        data = json.dumps(asdict(self.holder), sort_keys=True).encode("utf-8")
        if is_local(self.path):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            except OSError as e:
                raise ConfigError(
                    f"output.dir must be a writable directory, got {self.out_dir!r} ({e.strerror})"
                ) from None
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return True
        if FileSystems.exists(self.path):
            return False
        try:
            with FileSystems.create(self.path) as f:
                f.write(data)
        except Exception as e:  # noqa: BLE001 - any filesystem's refusal means the same to the user
            raise ConfigError(f"output.dir must be writable, got {self.out_dir!r} ({e})") from None
        return True

    def _remove_if(self, expected: Holder | None) -> None:
        # Re-read just before deleting, so a lock a third run took meanwhile is left alone (a narrow
        # window remains between this read and the delete).
        if read_holder(self.path) == expected:
            with contextlib.suppress(Exception):
                FileSystems.delete([self.path])

    def release(self) -> None:
        if self.held:
            self._remove_if(self.holder)
            self.held = False


# -- signals ---------------------------------------------------------------------------------------
# The CLI's SIGINT/SIGTERM handler ends the process at once (os._exit); it first calls abort() on
# every run in progress here. While a run publishes, the handler only records the signal, and the
# publication re-raises it when done: an output is never left half-published by Ctrl-C.

_active: list[Publication] = []
_shield = {"depth": 0, "pending": None}


def abort_active() -> list[str]:
    """Discard every staging directory and lock of this process; returns the untouched outputs."""
    outs = []
    for pub in list(_active):
        pub.abort()
        outs.append(pub.out_dir)
    return outs


def defer_signal(signum: int) -> bool:
    """True when a publication is in progress: the signal is replayed when it ends."""
    if _shield["depth"]:
        _shield["pending"] = signum
        return True
    return False


@contextlib.contextmanager
def _shielded() -> Iterator[None]:
    _shield["depth"] += 1
    try:
        yield
    finally:
        _shield["depth"] -= 1
        pending, _shield["pending"] = _shield["pending"], None
        if pending is not None and not _shield["depth"]:
            os.kill(os.getpid(), pending)  # the handler runs at the next bytecode, now unshielded


class Publication:
    """One run's staging directory and lock; ``publish()`` moves the staged output into place."""

    def __init__(self, out_dir: str, overwrite: bool, config_digest: str) -> None:
        self.out_dir = out_dir.rstrip("/") if "://" in out_dir else os.path.normpath(out_dir)
        self.overwrite = overwrite
        self.run_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
        self.holder = Holder.this_process(self.run_id, config_digest)
        self.lock = Lock(self.out_dir, self.holder)
        self.staging = FileSystems.join(self.out_dir, STAGING_PREFIX + self.run_id)

    def _path(self, *parts: str) -> str:
        return FileSystems.join(self.out_dir, *parts)

    def _refuse_finished(self) -> None:
        if not self.overwrite and FileSystems.exists(self._path(SUCCESS)):
            raise FileExistsError(
                f"output {self.out_dir!r} holds a finished run and output.overwrite is false"
            )

    def begin(self) -> None:
        check_writable(self.out_dir)
        self._refuse_finished()
        self.lock.acquire()
        _active.append(self)
        try:
            self._refuse_finished()  # a run that held the lock until now may have finished one
            self._remove_leftovers()
            if is_local(self.staging):
                os.makedirs(self.staging)
        except BaseException:
            self.abort()
            raise

    def _remove_leftovers(self) -> None:
        """Staging directories of runs that died without cleaning up (we hold the lock: none is live)."""
        if is_local(self.out_dir):
            dirs = [os.path.join(self.out_dir, d) for d in os.listdir(self.out_dir) if d.startswith(STAGING_PREFIX)]
        else:
            dirs = [m.path for m in FileSystems.match([self._path(STAGING_PREFIX + "*/**")])[0].metadata_list]
        if dirs:
            log.info("removing what %d earlier run(s) left in %s", len(dirs), self.out_dir)
            _delete(dirs)

    def abort(self) -> None:
        """Discard the staged output and release the lock; the published output is left as it was."""
        if self in _active:
            _active.remove(self)
        _delete([self.staging])
        self.lock.release()

    def publish(self) -> None:
        """Replace the published output with the staged one; ``_SUCCESS`` last."""
        replaced = self._path(REPLACED_PREFIX + self.run_id)
        with _shielded():
            self._refuse_finished()
            done = self._path(SUCCESS)
            if FileSystems.exists(done):
                FileSystems.delete([done])  # from here until the end, readers refuse the directory
            try:
                for name in [*TABLES, MANIFEST]:
                    if _exists(self._path(name)):
                        _move(self._path(name), FileSystems.join(replaced, name))
                for name in [*TABLES, MANIFEST]:
                    if _exists(FileSystems.join(self.staging, name)):
                        _move(FileSystems.join(self.staging, name), self._path(name))
                marker = {
                    "finished": True, "run_id": self.run_id, "config": self.holder.config,
                    "published": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                }
                with FileSystems.create(done) as f:
                    f.write(json.dumps(marker, indent=2, sort_keys=True).encode("utf-8"))
            except Exception as e:
                # Rare (a full disk, a lost bucket permission); nothing is deleted, so say where both are.
                raise PublishError(
                    f"publishing into {self.out_dir!r} failed ({e}); the new output is under {self.staging}, "
                    f"the previous one under {replaced}"
                ) from e
            _delete([replaced, self.staging])
        if self in _active:
            _active.remove(self)
        self.lock.release()


@contextlib.contextmanager
def publishing(out_dir: str, overwrite: bool, config_digest: str) -> Iterator[str]:
    """``with publishing(out_dir, overwrite, digest) as staging: <write the whole output under staging>``.

    On a normal exit the staged output is published; on any exception (or SIGINT/SIGTERM, through
    the CLI) it is discarded and ``out_dir`` keeps what it had. The lock is held throughout.
    """
    pub = Publication(out_dir, overwrite, config_digest)
    pub.begin()
    try:
        yield pub.staging
        _test_pause()
        pub.publish()
    except PublishError:
        if pub in _active:
            _active.remove(pub)
        pub.lock.release()  # the staged output is kept: it may be the only complete copy
        raise
    except BaseException:
        pub.abort()
        raise


PAUSE_ENV = "PRMFLOW_TEST_PAUSE_BEFORE_PUBLISH_S"


def _test_pause() -> None:
    """A failpoint for the kill tests (tests/pipelines/test_resume.py): hold a complete, staged
    output for this many seconds before publishing it, so that a kill "before publishing" or
    "during writing" lands there on any machine, however loaded. Unset in normal runs."""
    seconds = float(os.environ.get(PAUSE_ENV) or 0)
    if seconds > 0:
        time.sleep(seconds)


def _exists(path: str) -> bool:
    if is_local(path):
        return os.path.exists(path)
    return bool(FileSystems.match([path.rstrip("/") + "*"])[0].metadata_list)


def _move(src: str, dst: str) -> None:
    """A table directory (or the manifest) from ``src`` to ``dst``."""
    if is_local(src):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.rename(src, dst)  # one atomic step per table: staging is on the same filesystem
        return
    if FileSystems.exists(src):  # a single object, the manifest
        FileSystems.rename([src], [dst])
        return
    files = [m.path for m in FileSystems.match([src.rstrip("/") + "/**"])[0].metadata_list]
    FileSystems.rename(files, [dst.rstrip("/") + f[len(src.rstrip("/")):] for f in files])


def _delete(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(Exception):  # cleanup only: a leftover is removed by the next run
            if is_local(path):
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                elif os.path.exists(path):
                    os.remove(path)
            else:
                files = [m.path for m in FileSystems.match([path.rstrip("/") + "/**"])[0].metadata_list]
                if FileSystems.exists(path):  # a single object
                    files.append(path)
                if files:
                    FileSystems.delete(files)
