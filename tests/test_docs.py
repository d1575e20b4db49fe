from pathlib import Path

from prmflow.analysis.docs import BEGIN, END, columns_markdown

SCHEMA_DOC = Path(__file__).resolve().parent.parent / "docs" / "schema.md"


def test_column_reference_matches_the_schemas():
    text = SCHEMA_DOC.read_text()
    section = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    assert section.strip() == columns_markdown().strip(), "run: python -m prmflow.analysis.docs"
