"""``prmflow export RUN_DIR --format F --out DIR [options]``; every error is exit 2 with one line."""

from __future__ import annotations

import argparse
import sys

from prmflow.config_docs import field_docs
from prmflow.export.api import export, summary
from prmflow.export.config import FILE_FORMATS, FORMATS, LABELS, PLACEHOLDER, ExportConfig, ExportError

USAGE = ("prmflow export RUN_DIR --format {" + "|".join(FORMATS) + "} --out DIR [--label {" + "|".join(LABELS) + "}] "
         "[--min-weight W] [--consensus-only] [--sources A,B] [--methods M,N] [--val-fraction F] [--seed N] "
         "[--file-format {parquet|jsonl}] [--placeholder TEXT] [--after-first-error {truncate|negative|drop}] "
         "[--tokenizer DIR] [--license ID] [--language en,...] [--overwrite]")


DESCRIPTION = "A finished run's labels in a trainer's format, split into train and validation, with a dataset card."


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the usage and exit; one line instead
        raise ExportError(message)


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The export's options; each one's help is the docstring of its ExportConfig field."""
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run's output directory")
    p.add_argument("--format", required=True)
    p.add_argument("--out", required=True, help="the directory the files and the dataset card (README.md) go to")
    p.add_argument("--label", default=None)
    p.add_argument("--min-weight", type=float, default=None)
    p.add_argument("--consensus-only", action="store_true")
    p.add_argument("--sources", type=_names, default=())
    p.add_argument("--methods", type=_names, default=())
    p.add_argument("--val-fraction", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--file-format", default="parquet", choices=FILE_FORMATS)
    p.add_argument("--placeholder", default=PLACEHOLDER)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--after-first-error", default="truncate")
    p.add_argument("--tokenizer", default=None)
    p.add_argument("--license", default=None)
    p.add_argument("--language", type=_names, default=("en",))
    docs = field_docs(ExportConfig)
    for action in p._actions:
        if action.help is None and action.dest in docs:
            action.help = docs[action.dest]


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="prmflow export", usage=USAGE, description=DESCRIPTION,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def parse(argv: list[str]) -> tuple[str, str, ExportConfig]:
    a = parser().parse_args(argv)
    config = ExportConfig(format=a.format, label=a.label, min_weight=a.min_weight, consensus_only=a.consensus_only,
                          sources=a.sources, methods=a.methods, val_fraction=a.val_fraction, seed=a.seed,
                          file_format=a.file_format, placeholder=a.placeholder, overwrite=a.overwrite,
                          after_first_error=a.after_first_error, tokenizer=a.tokenizer, license=a.license,
                          language=a.language)
    return a.run_dir, a.out, config


def main(argv: list[str]) -> int:
    try:
        run_dir, out, config = parse(argv)
        result = export(run_dir, out, config)
    except (ExportError, FileNotFoundError, FileExistsError) as e:
        print(f"prmflow export: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk: the previous export is kept, the staging directory removed
        print(f"prmflow export: {e}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"prmflow export: warning: {warning}", file=sys.stderr)
    print(summary(result))
    return 0
