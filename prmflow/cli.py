"""The ``prmflow`` command: run, inspect, sql, schema, export, train-prm, calibrate, report, study,
config, completion. One argparse tree (``build_parser``): every subcommand's ``--help`` lists its
options, built by the same ``add_arguments`` function its module parses with.

SIGINT and SIGTERM stop a command at once with exit 130 / 143 and one line on stderr: every child
process (an engine, Beam's worker processes, the labelers' time-limit child) is killed, and a run in
progress discards its staging directory and lock (``pipelines/output.py``), so the published output
stays as it was. ``prmflow run`` also starts a watchdog (``reaper.py``) that kills the run's
descendants when the run itself dies without a chance to clean up (``kill -9``, the OOM killer).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable

from prmflow.core.cliparse import Parser
from prmflow.core.section import ConfigError
from prmflow.reaper import descendants, kill_processes, start_watchdog

DESCRIPTION = """prmflow: step-level pseudo-labels for process reward models.

A run reads problems (and their solutions), samples a policy, grades the outcomes, labels the steps
(Monte-Carlo rollouts, a judge) and writes Parquet tables; inspect, sql and report read them, export
turns them into a trainer's dataset. `prmflow COMMAND --help` lists a command's options."""

EPILOG = """quick start: docs/quickstart.md; every config key: prmflow config --defaults (docs/config.md).
-v / --verbose (anywhere on the line) shows the engines' start-up logs and Beam's warnings."""


def _analysis(command: str) -> Callable[[list[str]], int]:
    def main(args: list[str]) -> int:
        from prmflow.analysis import cli as analysis_cli

        return analysis_cli.main(command, args)

    return main


def _lazy(module: str, name: str = "main") -> Callable:
    def call(*args):
        import importlib

        return getattr(importlib.import_module(module), name)(*args)

    return call


def _add_analysis(command: str) -> Callable:
    def add(p):
        from prmflow.analysis import cli as analysis_cli

        analysis_cli.ADD_ARGUMENTS[command](p)

    return add


# name -> (one-line help, add_arguments(parser), main(argv) -> exit status); imported only when used
COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "run": ("run a labeling pipeline from a YAML config",
            _lazy("prmflow.pipelines.args", "add_run_arguments"), lambda args: _run(args)),
    "inspect": ("a finished run's summary and label quality", _add_analysis("inspect"), _analysis("inspect")),
    "sql": ("any DuckDB query over a run's tables", _add_analysis("sql"), _analysis("sql")),
    "schema": ("the columns of the output tables", _add_analysis("schema"), _analysis("schema")),
    "export": ("a run's labels in a trainer's format (trl, openrlhf, math-shepherd, verl, prmflow)",
               _lazy("prmflow.export.cli", "add_arguments"), _lazy("prmflow.export.cli")),
    "train-prm": ("train a PRM on a `--format prmflow` export",
                  _lazy("prmflow.prm.train", "add_arguments"), _lazy("prmflow.prm.train")),
    "eval-prm": ("evaluate any PRM on ProcessBench or a best-of-N candidate set",
                 _lazy("prmflow.prm.eval", "add_arguments"), _lazy("prmflow.prm.eval")),
    "calibrate": ("the verifier's error rates on gold rows, into the run's manifest",
                  _lazy("prmflow.analysis.calibrate", "add_arguments"), _lazy("prmflow.analysis.calibrate")),
    "report": ("one self-contained HTML page of a run or a study",
               _lazy("prmflow.report.cli", "add_arguments"), _lazy("prmflow.report.cli")),
    "study": ("label quality under verifier noise (study ambiguity)",
              _lazy("prmflow.study.cli", "add_arguments"), _lazy("prmflow.study.cli")),
    "config": ("the config reference: every key, its default and meaning (--defaults)",
               lambda p: _add_config_arguments(p), lambda args: _config(args)),
    "completion": ("a shell completion script (bash or zsh): eval \"$(prmflow completion bash)\"",
                   lambda p: _add_completion_arguments(p), lambda args: _completion(args)),
}


def _version() -> str:
    from prmflow import __version__

    return f"prmflow {__version__}"


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, every subcommand with its options (for --help and completion)."""
    top = Parser(prog="prmflow", description=DESCRIPTION, epilog=EPILOG)
    top.add_argument("--version", action="version", version=_version())
    top.add_argument("-v", "--verbose", action="store_true", help="show engine start-up logs and Beam's warnings")
    subs = top.add_subparsers(dest="command", metavar="COMMAND", title="commands", parser_class=Parser)
    for name, (summary, add_arguments, _) in COMMANDS.items():
        add_arguments(subs.add_parser(name, help=summary, description=summary, prog=f"prmflow {name}"))
    return top


def _add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--defaults", action="store_true", required=True,
                   help="print every config key with its default and meaning (Markdown; docs/config.md is this)")


def _config(args: list[str]) -> int:
    from prmflow.config_docs import reference
    from prmflow.core.cliparse import parser

    parser("prmflow config", COMMANDS["config"][0], _add_config_arguments).parse_args(args)
    sys.stdout.write(reference())
    return 0


def _add_completion_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=["bash", "zsh"], help="the shell the script is for")


def _completion(args: list[str]) -> int:
    from prmflow.core.cliparse import parser

    ns = parser("prmflow completion", COMMANDS["completion"][0], _add_completion_arguments).parse_args(args)
    print(completion_script(ns.shell))
    return 0


def _options(p: argparse.ArgumentParser) -> list[str]:
    return sorted({o for a in p._actions for o in a.option_strings})


def completion_script(shell: str) -> str:
    """A completion function for bash (zsh loads it through bashcompinit): commands, each command's
    options, and file names for the rest, generated from the parsers themselves."""
    top = build_parser()
    subs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    cases = "\n".join(f"        {name}) opts=\"{' '.join(_options(p))}\";;" for name, p in subs.choices.items())
    script = f"""# prmflow {shell} completion: eval "$(prmflow completion {shell})"
_prmflow() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" cmd="${{COMP_WORDS[1]}}" opts=""
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "{' '.join(COMMANDS)} --help --version -v" -- "$cur"))
        return 0
    fi
    case "$cmd" in
{cases}
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -o filenames -F _prmflow prmflow"""
    if shell == "zsh":
        script = script.replace("_prmflow() {", "autoload -U +X bashcompinit && bashcompinit\n_prmflow() {", 1)
    return script


EXIT_ON_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class _QuietImports(logging.Filter):
    """Beam's BigQuery client package logs this on import whenever the optional GCP extra is absent;
    prmflow never uses BigQuery, so the line is noise on every run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("apitools not found")


def _engine_failure(record: logging.LogRecord) -> bool:
    try:
        text = record.getMessage()
    except Exception:  # noqa: BLE001 - a record whose arguments do not format: judge by its template
        text = str(record.msg)
    if record.exc_info and record.exc_info[1] is not None:
        text += str(record.exc_info[1])
    return "engine did not start" in text


class _QuietEngines(logging.Filter):
    """Without ``-v``: Beam's own warnings (some repeat for every batch, e.g. RunInference's
    "Resource module is not available", logged on the root logger) and the engines' lines below
    ERROR. prmflow's own lines and every error pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("apache_beam") and _engine_failure(record):
            return False  # Beam's traceback of an engine start failure: prmflow run prints its one line
        if record.levelno >= logging.ERROR or record.name.startswith("prmflow"):
            return True
        path = record.pathname.replace("\\", "/")
        return not any(f"/{pkg}/" in path for pkg in ("apache_beam", "vllm", "torch", "transformers"))


def _setup_logging(verbose: bool = False) -> None:
    """prmflow's own progress at INFO. Without ``-v``, vLLM's start-up chatter (its log level and
    progress bars, set through environment variables read when vLLM is imported) and Beam's warnings,
    which repeat for every bundle and worker, are hidden; errors still show."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("prmflow").setLevel(logging.INFO)
    root = logging.getLogger()
    if not verbose:
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        # torch resets its registered loggers on import; torch._library (its Triton probe) is not one
        for name in ("apache_beam", "vllm", "torch", "torch._library", "transformers"):
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        for handler in root.handlers:
            if not any(isinstance(f, _QuietEngines) for f in handler.filters):
                handler.addFilter(_QuietEngines())
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


def _gpu_present() -> bool:
    """An NVIDIA or AMD GPU device node: cheap, and before torch or vLLM is imported."""
    return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd"))


def _engine_environment() -> None:
    """On a machine without a GPU, vLLM runs in this process (its multiprocess engine needs a
    spawn-safe main module and doubles the memory of a small model); set before vLLM is imported.
    A value the user set wins."""
    if not _gpu_present():
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _run(args: list[str]) -> int:
    from prmflow.pipelines.label import run
    from prmflow.samplers.base import engine_start_error

    try:
        manifest = run(args)
    except Exception as e:  # noqa: BLE001 - an engine that failed on a Beam worker comes back wrapped
        found = engine_start_error(e)
        if found is None:
            raise
        print(f"prmflow run: {found}", file=sys.stderr)
        return 1
    from prmflow.pipelines.common import all_dead_sources

    dead = all_dead_sources(manifest)  # run() printed them with their first reasons
    return 0 if manifest["reconciliation"]["ok"] and not dead else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in argv)
    argv = [a for a in argv if a not in ("-v", "--verbose")]
    if not argv or argv[0] in ("-h", "--help") or argv[0] == "--version":
        try:
            build_parser().parse_args(argv or ["--help"])
        except SystemExit as e:
            return int(e.code or 0)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        choices = ", ".join(COMMANDS)
        print(f"prmflow: unknown command {command!r}; one of {choices} (prmflow --help)", file=sys.stderr)
        return 2
    _setup_logging(verbose)
    _engine_environment()  # run, study and train-prm may start engines
    stopper = _Stopper(command)
    stopper.install()
    watchdog = start_watchdog() if command == "run" else None
    try:
        return COMMANDS[command][2](rest)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2), already printed
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            return 2
        return 0 if e.code is None else int(e.code)
    except (ConfigError, FileNotFoundError, FileExistsError) as e:
        print(f"prmflow {command}: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a lost mount: one line, and the previous output is kept (docs/outputs.md)
        print(f"prmflow {command}: {e}", file=sys.stderr)
        return 1
    finally:
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()
        stopper.uninstall()


if __name__ == "__main__":
    sys.exit(main())
