"""Run untrusted programs (generated code and its tests) under bubblewrap with kernel-enforced limits.

Pure: no apache_beam. ``Sandbox(limits).run(files, argv)`` runs one program and returns a ``Result``;
``run_many`` runs many at once on a bounded thread pool (each execution is its own process tree).
"""

from prmflow.sandbox.bwrap import SandboxUnavailable
from prmflow.sandbox.limits import Limits
from prmflow.sandbox.pool import run_many
from prmflow.sandbox.run import Result, Sandbox

__all__ = ["Limits", "Result", "Sandbox", "SandboxUnavailable", "run_many"]
