"""``prmflow run``'s options, importable without Apache Beam (``prmflow --help`` and shell completion
build every subcommand's parser)."""

from __future__ import annotations

import argparse

RUN_DESCRIPTION = """Run a labeling pipeline: read the inputs, sample (when the config has a sampler), grade,
label the steps, write the tables and the manifest under the output directory."""
RUN_EPILOG = """Any other --flag goes to Apache Beam's pipeline options, e.g. --direct_num_workers 2
--direct_running_mode multi_processing, or --runner DataflowRunner with its options (docs/deploy.md).
Exit status: 0 done; 1 counts do not reconcile, or an input's every row was dead-lettered, or an
engine did not start; 2 a config error (one line naming the key), before any work starts."""


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.yaml", help="the run's YAML config (prmflow config --defaults "
                                                             "lists every key)")
    parser.add_argument("--output", metavar="DIR", help="output directory or URL (overrides output.dir)")
    parser.add_argument("--read-splits", type=int, default=None, metavar="N",
                        help="read each input file in N shares that workers parse in parallel "
                             "(default: --direct_num_workers on a local runner, else 1)")
    parser.add_argument("--fresh", action="store_true",
                        help="ignore the stage cache a killed run left: recompute every batch")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show the engines' start-up logs and Beam's warnings (hidden by default)")
