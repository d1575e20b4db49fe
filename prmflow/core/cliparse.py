"""The argument parser every ``prmflow`` subcommand builds its options on.

argparse prints the whole usage block before an error; a prmflow command error is one line instead
("prmflow sql: error: ...; see prmflow sql --help"), exit 2, like a config error.
"""

from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def parser(prog: str, description: str | None = None, add_arguments=None, **kwargs) -> Parser:
    """A :class:`Parser` named ``prog`` with ``add_arguments(parser)`` applied."""
    p = Parser(prog=prog, description=description, **kwargs)
    if add_arguments is not None:
        add_arguments(p)
    return p


def first_line(text: str | None) -> str:
    """The first sentence-line of a docstring, for a subcommand's one-line help."""
    return (text or "").strip().split("\n\n")[0].replace("\n", " ")


__all__ = ["Parser", "first_line", "parser"]


