"""Studies over prmflow's own runs: ``prmflow study ambiguity`` (label quality under verifier noise)."""


def main(args: list[str]) -> int:
    """``prmflow study NAME ...``."""
    from prmflow.study.cli import main as study_main

    return study_main(args)


__all__ = ["main"]
