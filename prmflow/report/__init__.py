"""``prmflow report DIR``: one self-contained HTML page of a run (or of a study directory)."""


def main(args: list[str]) -> int:
    from prmflow.report.cli import main as report_main

    return report_main(args)


__all__ = ["main"]
