"""Where a command may write, and how, so that no command deletes what it did not write.

``export``, ``train-prm``, ``report`` and ``calibrate`` share these rules (``prmflow run``'s own are in
``pipelines/output.py``; docs/outputs.md has both):

- ``check_out_dir``: an output directory is resolved once (symlinks and ``..``); it may be neither a
  directory it reads (a run, an export it trains on), nor an ancestor of one, nor inside one. An
  existing non-empty directory is replaced only with ``overwrite`` *and* when it carries the
  command's marker file (it is an earlier output of the same command); any other directory is
  refused, so ``--out ~ --overwrite`` cannot delete a home directory.
- ``recover``: a replacement cut short (``kill -9`` between the two renames of ``replace_dir``)
  leaves ``.OUT.replaced-<pid>``; the next command into ``OUT`` puts it back (when ``OUT`` is
  missing) or deletes it (when the new ``OUT`` is in place), and removes the staging directories
  (``.OUT.<what>-<pid>``) of processes that are gone.
- ``atomic_write_text``: a temporary file beside the target, renamed over it; on any failure
  (a full disk) the temporary file is removed and the target is as it was; one a killed writer left
  is removed by the next write of the same file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path


class UnsafeOutput(FileExistsError):
    """An output path that would replace or delete something the command did not write (exit 2)."""


def resolve(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_out_dir(out: str | os.PathLike, *, option: str, overwrite: bool, marker: str,
                  protected: Iterable[tuple[str | os.PathLike, str]] = (), marker_text: str | None = None) -> Path:
    """The resolved output directory, after the checks in the module docstring; ``option`` names the
    flag or key in messages (``--out``, ``train_prm.output``); ``protected`` holds (path, what it is);
    the marker is the file ``marker``, holding ``marker_text`` in its first 64 KiB when given."""
    target = resolve(out)
    for path, what in protected:
        p = resolve(path)
        if _within(p, target) or _within(target, p):
            where = "is" if p == target else ("contains" if _within(p, target) else "is inside")
            raise UnsafeOutput(f"{option} {str(out)!r} {where} {what} {str(path)!r}; write the output somewhere else")
    recover(target)
    if target.exists() and not target.is_dir():
        raise UnsafeOutput(f"{option} {str(out)!r} is a file; give a directory")
    if target.is_dir() and any(target.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{option} {str(out)!r} is not empty; pass --overwrite to replace it")
        if not _marked(target / marker, marker_text):
            raise UnsafeOutput(f"{option} {str(out)!r} holds files this command did not write (no {marker}); "
                               f"overwrite only replaces an earlier output of it: pick a new or empty directory")
    return target


def _marked(path: Path, text: str | None) -> bool:
    if not path.is_file():
        return False
    if text is None:
        return True
    with open(path, "rb") as f:
        return text.encode() in f.read(1 << 16)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(out: Path) -> None:
    """Undo or finish a ``replace_dir`` into ``out`` that a killed process left (module docstring)."""
    parent = out.parent
    if not parent.is_dir():
        return
    leftover = re.compile(rf"^\.{re.escape(out.name)}\.([a-z-]+)-(\d+)$")
    replaced, staging = [], []
    for entry in parent.iterdir():
        m = leftover.match(entry.name)
        if m and int(m.group(2)) != os.getpid() and not _pid_alive(int(m.group(2))):
            (replaced if m.group(1) == "replaced" else staging).append(entry)
    replaced.sort(key=lambda p: p.stat().st_mtime)
    if replaced and not out.exists():
        replaced.pop().rename(out)  # the kill came between the renames: the previous output is back
    for path in replaced + staging:
        shutil.rmtree(path, ignore_errors=True)


def replace_dir(staging: Path, out: Path) -> None:
    """Move ``staging`` to ``out``; an existing ``out`` is moved aside first and deleted after."""
    if out.exists():
        old = out.parent / f".{out.name}.replaced-{os.getpid()}"
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old)
    else:
        staging.rename(out)


def atomic_write_text(path: Path, text: str) -> None:
    """``path`` holds ``text`` or, on any failure, what it held before; no temporary file stays (and
    those of killed writers of the same file, ``.NAME.tmp-<pid>`` of a pid that is gone, are removed)."""
    stale = re.compile(rf"^\.{re.escape(path.name)}\.tmp-(\d+)$")
    for entry in path.parent.iterdir() if path.parent.is_dir() else ():
        m = stale.match(entry.name)
        if m and not _pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                entry.unlink()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
