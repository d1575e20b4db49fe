"""The ``prmflow`` command: run, inspect, sql, schema, export, train-prm, calibrate, report, study.

SIGINT and SIGTERM stop a command at once with exit 130 / 143 and one line on stderr: every child
process (an engine, Beam's worker processes, the labelers' time-limit child) is killed, and a run in
progress discards its staging directory and lock (``pipelines/output.py``), so the published output
stays as it was. ``prmflow run`` also starts a watchdog (``reaper.py``) that kills the run's
descendants when the run itself dies without a chance to clean up (``kill -9``, the OOM killer).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from prmflow.config import ConfigError
from prmflow.reaper import descendants, kill_processes, start_watchdog

USAGE = """prmflow COMMAND ...

  run CONFIG.yaml [--output DIR] [beam options]   run a labeling pipeline
  inspect DIR [--partial]                         summary of a finished output (DuckDB views)
  sql DIR "SELECT ..." [--partial]                any query over the views
  schema [TABLE]                                  the columns of the output tables
  export DIR --format F --out OUT [options]       labels in a trainer's format (trl | openrlhf | math-shepherd
                                                  | verl | prmflow) with a dataset card; `export --help`
  train-prm CONFIG.yaml                           train a PRM on a `--format prmflow` export (soft labels,
                                                  consistency weights); saves OUT/model + OUT/prm.json
  eval-prm --prm PATH [options]                   any PRM on ProcessBench / a best-of-N set; `eval-prm --help`
  calibrate DIR [--limit N]                       the verifier's false-positive/negative rates on gold rows,
                                                  written into DIR's manifest (for process.noise_aware)
  report DIR [--out FILE.html]                    one self-contained HTML page of a run (or a study directory)
  study ambiguity [--out DIR] [options]           label quality under verifier noise; `study ambiguity --help`

  --partial reads an output without _SUCCESS (a failed, killed or unfinished run), with a warning.
"""

EXIT_ON_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class _QuietImports(logging.Filter):
    """Beam's BigQuery client package logs this on import whenever the optional GCP extra is absent;
    prmflow never uses BigQuery, so the line is noise on every run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("apitools not found")


def _setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("prmflow").setLevel(logging.INFO)
    root = logging.getLogger()
    if not any(isinstance(f, _QuietImports) for f in root.filters):
        root.addFilter(_QuietImports())


# -- signals ---------------------------------------------------------------------------------------


class _Stopper:
    """SIGINT/SIGTERM -> kill the children, abort the run's output, one line, exit 130/143.

    Python runs a signal handler only in the main thread, between bytecodes; a main thread inside a
    long C call (an engine step) would delay it. So the handler is also reached through
    ``signal.set_wakeup_fd``, which the C-level handler writes at once, read by a daemon thread.
    """

    def __init__(self, command: str) -> None:
        self.command = command
        self._once = threading.Lock()
        self._previous: dict[int, object] = {}
        self._wakeup: tuple[int, int] | None = None
        self._previous_fd = -1

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread; leave the caller's
        for signum in EXIT_ON_SIGNAL:
            self._previous[signum] = signal.signal(signum, self._handler)
        r, w = os.pipe()
        os.set_blocking(w, False)
        self._previous_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        self._wakeup = (r, w)
        threading.Thread(target=self._watch_fd, args=(r,), daemon=True, name="prmflow-signals").start()

    def uninstall(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        if self._wakeup is not None:
            signal.set_wakeup_fd(self._previous_fd)
            os.close(self._wakeup[1])  # the reader thread sees EOF and ends

    def _handler(self, signum, frame) -> None:
        self.stop(signum)

    def _watch_fd(self, fd: int) -> None:
        try:
            while data := os.read(fd, 64):
                for signum in data:
                    if signum in EXIT_ON_SIGNAL:
                        self.stop(signum)
        finally:
            os.close(fd)

    def stop(self, signum: int) -> None:
        output = sys.modules.get("prmflow.pipelines.output")
        if output is not None and output.defer_signal(signum):
            return  # a publication is moving files into place; it re-raises the signal when done
        if not self._once.acquire(blocking=False):
            return  # the other path (handler or wakeup thread) is already stopping the process
        try:
            kill_processes(descendants(os.getpid()))
            untouched = output.abort_active() if output is not None else []
            note = f"; nothing was published, {', '.join(untouched)} is as it was" if untouched else ""
            name = signal.Signals(signum).name
            sys.stderr.write(f"prmflow {self.command}: stopped by {name}{note}\n")
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001 - exiting anyway
                    pass
        finally:
            # os._exit: no interpreter shutdown, so Beam's and gRPC's threads cannot log over the line
            os._exit(EXIT_ON_SIGNAL[signum])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    _setup_logging()
    stopper = _Stopper(command)
    stopper.install()
    watchdog = start_watchdog() if command == "run" else None
    try:
        if command == "run":
            from prmflow.pipelines.label import run

            manifest = run(rest)
            return 0 if manifest["reconciliation"]["ok"] else 1
        if command in ("inspect", "sql", "schema"):
            from prmflow.analysis import cli as analysis_cli

            return analysis_cli.main(command, rest)
        if command == "export":
            from prmflow.export.cli import main as export_main

            return export_main(rest)
        if command == "train-prm":
            from prmflow.prm.train import main as train_prm_main

            return train_prm_main(rest)
        if command == "eval-prm":
            from prmflow.prm.eval import main as eval_prm_main

            return eval_prm_main(rest)
        if command == "calibrate":
            from prmflow.analysis.calibrate import main as calibrate_main

            return calibrate_main(rest)
        if command == "report":
            from prmflow.report import main as report_main

            return report_main(rest)
        if command == "study":
            from prmflow.study import main as study_main

            return study_main(rest)
    except (ConfigError, FileNotFoundError, FileExistsError) as e:
        print(f"prmflow {command}: {e}", file=sys.stderr)
        return 2
    finally:
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()
        stopper.uninstall()
    print(f"prmflow: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
