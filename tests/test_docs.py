from pathlib import Path

from prmflow.analysis.docs import BEGIN, END, columns_markdown

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_column_reference_matches_the_schemas():
    text = README.read_text()
    section = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    assert section.strip() == columns_markdown().strip(), "run: python -m prmflow.analysis.docs"
