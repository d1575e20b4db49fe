"""One module per export layout: its columns (Arrow type and meaning) and how one row is built."""
