"""An output directory that a reader cannot misread and a failing run cannot destroy.

A run never writes into ``out_dir`` directly:

1. **Check and lock.** ``out_dir`` must be (or become) a writable directory, else ``ConfigError``
   before any pipeline stage runs. It must also be prmflow's: new, empty, or marked as a prmflow
   output (``.prmflow-output``, written when a run first publishes there; a finished output of an
   older prmflow, with its ``_SUCCESS``, and what a run killed before publishing leaves also count).
   Any other directory (a data directory, another tool's output) is refused whatever ``overwrite``
   says, so a run never moves or deletes a file it did not write. ``out_dir/.prmflow.lock`` is
   created exclusively and names the holder (pid, host, start time, config digest); a second run
   into the same directory is refused with those details. A lock whose pid is gone on this host
   (or whose pid now belongs to a newer process) is stale and taken over, so a ``kill -9`` never
   leaves a directory locked for good.
2. **Stage.** The pipeline writes every table and the manifest under ``out_dir/.prmflow-staging-<run>``;
   readers never look there, and a run that fails, crashes or is interrupted deletes it (or leaves it
   to the next run, which removes leftover staging directories once it holds the lock).
3. **Publish** (only after the pipeline and the manifest are complete, and only when its counts
   reconcile: the caller decides): write a journal (``.prmflow-replaced-<run>/journal.json``: which
   names the previous output had), move ``_SUCCESS`` aside (from here on readers refuse the
   directory), move the previous tables aside, move the staged tables and manifest in, write
   ``_SUCCESS`` last, then delete the old tables and the staging directory.
4. **Recover.** A publication cut short (``kill -9``, a power cut, a full disk) leaves the journal.
   The next run into the directory, once it holds the lock and before anything else, rolls it back:
   the new tables go back to their staging directory, the previous ones and their ``_SUCCESS`` to
   their places (or, when the new ``_SUCCESS`` was already written, only the leftovers are deleted).
   So whatever happens to that run afterwards, the directory holds the previous complete output.

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
FAILED_PREFIX = ".prmflow-failed-"
"""A complete output that was not published because its counts do not reconcile; kept for
``prmflow inspect OUT/.prmflow-failed-<run> --partial`` until the next run into OUT."""
MARKER = ".prmflow-output"
"""Marks a directory as a prmflow output: only such a directory (or an empty one) is written."""
JOURNAL = "journal.json"
REPORT = "report.html"
"""``prmflow report``'s default page: it describes the published run, so it goes with it."""
# A lock file that cannot be parsed was caught between its exclusive create and its write, or was
# written by a crashed process; past this age it is the latter.
UNREADABLE_LOCK_STALE_S = 60.0


class OutputLocked(FileExistsError):
    """Another run holds the output directory's lock."""


class PublishError(OSError):
    """Moving a complete staged output into place failed part-way."""


class NotPublished(Exception):
    """Raised inside ``with publishing(...)`` for a complete output that must not be published (its
    counts do not reconcile): it is kept under ``kept`` (``FAILED_PREFIX``), the published output is
    left as it was, and the exception goes on to the caller."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.kept: str | None = None


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


def resolve(out_dir: str) -> str:
    """The one path a run uses for its output, its lock and its cache: a local path made absolute
    with every symlink and ``..`` resolved (``LINK/../o`` is where the kernel puts it, not where the
    text suggests); a URL as it is, without a trailing slash."""
    if not is_local(out_dir):
        return out_dir.rstrip("/")
    return os.path.realpath(os.path.expanduser(out_dir))


def is_prmflow_output(out_dir: str) -> bool:
    """True when ``out_dir`` is prmflow's to write: absent, empty, marked, a finished output of an
    older prmflow, or holding nothing but what a killed prmflow run leaves (``.prmflow*``)."""
    if not is_local(out_dir):
        return True  # an object store prefix; the lock and _SUCCESS protocol still apply
    try:
        names = os.listdir(out_dir)
    except FileNotFoundError:
        return True
    except OSError:
        return True  # unreadable: check_writable and the lock report it
    if not names or MARKER in names:
        return True
    # what a run killed before its first publication leaves: its lock, staging, and stage cache
    cache = os.path.join(out_dir, "_cache", ".prmflow-cache")
    if all(n.startswith(".prmflow") or (n == "_cache" and os.path.isfile(cache)) for n in names):
        return True
    try:
        with open(os.path.join(out_dir, SUCCESS), encoding="utf-8") as f:
            marker = json.loads(f.read())
        with open(os.path.join(out_dir, MANIFEST), encoding="utf-8") as f:
            manifest = json.loads(f.read())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and "run_id" in marker and isinstance(manifest, dict) \
        and "prmflow_schema_version" in manifest


def check_claimable(out_dir: str) -> None:
    """A directory holding files prmflow did not write is refused (one ConfigError line)."""
    if not is_prmflow_output(out_dir):
        raise ConfigError(
            f"output.dir must be a new or empty directory or a prmflow output, got {out_dir!r}, which holds "
            f"other files (no {MARKER}); prmflow never writes over them: pick another directory"
        )


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
        if is_local(lock_path):  # never through FileSystems.match: it globs, and exp[1] is not exp1
            return time.time() - os.path.getmtime(lock_path)
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
            _delete([self.path])  # local: os.remove (FileSystems.delete globs the path)

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
        self.out_dir = resolve(out_dir)
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
        check_claimable(self.out_dir)
        check_writable(self.out_dir)
        self._refuse_finished()
        self.lock.acquire()
        _active.append(self)
        try:
            self._recover()  # first: a publication cut short is rolled back before anything can fail
            self._refuse_finished()  # a run that held the lock until now may have finished one
            self._remove_leftovers()
            if is_local(self.staging):
                os.makedirs(self.staging)
        except BaseException:
            self.abort()
            raise

    def _mark(self) -> None:
        marker = self._path(MARKER)
        if not FileSystems.exists(marker):
            with FileSystems.create(marker) as f:
                f.write(b"a prmflow output directory: prmflow run writes here (docs/outputs.md)\n")

    def _leftover_dirs(self, prefix: str) -> list[str]:
        if is_local(self.out_dir):
            return sorted(os.path.join(self.out_dir, d) for d in os.listdir(self.out_dir) if d.startswith(prefix))
        found = {m.path[len(self.out_dir) + 1:].split("/", 1)[0]
                 for m in FileSystems.match([self._path(prefix + "*/**")])[0].metadata_list}
        return sorted(self._path(d) for d in found)

    def _remove_leftovers(self) -> None:
        """Staging directories of runs that died without cleaning up, the replaced tables of finished
        publications and outputs kept because they did not reconcile (we hold the lock: none is live)."""
        dirs = [d for prefix in (STAGING_PREFIX, FAILED_PREFIX) for d in self._leftover_dirs(prefix)]
        if dirs:
            log.info("removing what %d earlier run(s) left in %s", len(dirs), self.out_dir)
            _delete(dirs)

    def _recover(self) -> None:
        """Roll back every publication a killed run left half done (see the module docstring)."""
        for replaced in self._leftover_dirs(REPLACED_PREFIX):
            journal = _read_json(FileSystems.join(replaced, JOURNAL))
            if journal is None:
                if _exists(self._path(SUCCESS)):
                    _delete([replaced])  # a finished publication's old tables, not yet deleted
                else:  # an older prmflow's publication, no journal: never guess, never delete
                    log.warning("%s holds tables of an interrupted publication without a journal; left as it is",
                                replaced)
                continue
            done = _read_json(self._path(SUCCESS)) or {}
            if done.get("run_id") == journal["run_id"]:  # the new output was complete: only clean up
                _delete([replaced])
                continue
            staging = self._path(journal["staging"])
            old = set(journal["old"])
            for name in [*TABLES, MANIFEST, REPORT]:
                if _exists(self._path(name)) and (name not in old or _exists(FileSystems.join(replaced, name))):
                    _move(self._path(name), FileSystems.join(staging, name))  # a new table: back to staging
                if name in old and _exists(FileSystems.join(replaced, name)):
                    _move(FileSystems.join(replaced, name), self._path(name))
            if SUCCESS in old and _exists(FileSystems.join(replaced, SUCCESS)):
                _move(FileSystems.join(replaced, SUCCESS), self._path(SUCCESS))  # last: readable again
            log.warning("restored the previous output of %s: the publication of run %s was interrupted",
                        self.out_dir, journal["run_id"])
            _delete([replaced])

    def keep_failed(self) -> str:
        """Keep the complete staged output that must not be published (its counts do not reconcile)
        under ``OUT/.prmflow-failed-<run>``, release the lock; the published output is untouched."""
        kept = self._path(FAILED_PREFIX + self.run_id)
        if self in _active:
            _active.remove(self)
        try:
            _move(self.staging, kept)
        finally:
            self.lock.release()
        return kept

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
            try:
                self._mark()  # at the first publication; an aborted run leaves a new directory empty
                # the old report.html goes with the run it describes (it is restored with it, too)
                old = [name for name in [SUCCESS, *TABLES, MANIFEST, REPORT] if _exists(self._path(name))]
                journal = {"run_id": self.run_id, "staging": STAGING_PREFIX + self.run_id, "old": old}
                if is_local(replaced):
                    os.makedirs(replaced, exist_ok=True)
                _write_json(FileSystems.join(replaced, JOURNAL), journal)  # before any move: recoverable
                for name in old:  # _SUCCESS first: from here until the end, readers refuse the directory
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
    except NotPublished as e:
        e.kept = pub.keep_failed()
        raise
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


def _read_json(path: str) -> dict | None:
    try:
        with FileSystems.open(path) as f:
            data = json.loads(f.read().decode("utf-8"))
        return data if isinstance(data, dict) else None
    except Exception:  # noqa: BLE001 - missing or unreadable: no journal, no marker
        return None


def _write_json(path: str, data: dict) -> None:
    with FileSystems.create(path) as f:
        f.write(json.dumps(data, sort_keys=True).encode("utf-8"))


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
