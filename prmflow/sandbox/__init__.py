"""Run untrusted programs (generated code and its tests) under bubblewrap with kernel-enforced limits.

Pure: no apache_beam. ``Sandbox(limits).run(files, argv)`` runs one program and returns a ``Result``;
``Sandbox.run_group`` runs several programs at once, each in a sandbox of its own, joined only by
the descriptors the caller passes (the ``code`` labeler's judge and solution); ``run_many`` runs many
executions at once on a bounded thread pool (each execution is its own process trees).
"""

from prmflow.sandbox.bwrap import SandboxUnavailable
from prmflow.sandbox.limits import Limits
from prmflow.sandbox.pool import run_many
from prmflow.sandbox.run import Program, Result, Sandbox

__all__ = ["Limits", "Program", "Result", "Sandbox", "SandboxUnavailable", "run_many"]
