"""A self-contained HTML page: sections of figures and tables, figures as inline PNG data URIs.

Nothing on the page refers outside it: no scripts, fonts or styles from a network, and a
Content-Security-Policy that forbids fetching anything but ``data:`` images, so a browser opening
the file offline shows all of it. The one inline script only records, for tests and for a reader's
devtools, how many figures loaded and which resources the page fetched (none, when it is right).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { background: #1d2330; color: #fff; padding: 18px 32px; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0 0; color: #c8cedb; }
nav { padding: 8px 32px; background: #e9ecf2; font-size: 13px; }
nav a { margin-right: 14px; color: #2a4d8f; text-decoration: none; }
main { padding: 8px 32px 40px; max-width: 1180px; }
section { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: 14px 20px; margin: 16px 0; overflow-x: auto; }
section h2 { margin: 0 0 8px; font-size: 17px; }
p.note { color: #5b6475; margin: 4px 0 10px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12.5px; }
th, td { border: 1px solid #dde1e8; padding: 3px 8px; text-align: right; }
th { background: #f0f2f6; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; height: auto; display: block; margin: 6px 0; }
.ok { color: #1b7a3a; font-weight: 600; } .bad { color: #b3261e; font-weight: 600; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; } .figures img { max-width: 560px; }
"""

SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var loaded = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var fetched = performance.getEntriesByType('resource').map(function (e) { return e.name; })
    .filter(function (n) { return n.indexOf('data:') !== 0; });
  document.body.setAttribute('data-figures', String(imgs.length));
  document.body.setAttribute('data-figures-loaded', String(loaded));
  document.body.setAttribute('data-fetched', JSON.stringify(fetched));
});
"""


def png_data_uri(fig: Any) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def file_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1e5 else f"{value:.3g}"
    return str(value)


def table_html(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass
class Section:
    key: str
    """The section's id on the page (stable: tests and links use it)."""
    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    """Rendered <table> HTML."""
    figures: list[tuple[str, str]] = field(default_factory=list)
    """(data URI, alt text)."""

    def html(self) -> str:
        parts = [f'<section id="{self.key}"><h2>{html.escape(self.title)}</h2>']
        parts += [f'<p class="note">{note}</p>' for note in self.notes]
        parts += self.tables
        if self.figures:
            parts.append('<div class="figures">' + "".join(
                f'<img src="{uri}" alt="{html.escape(alt)}">' for uri, alt in self.figures) + "</div>")
        parts.append("</section>")
        return "".join(parts)


GENERATOR = "prmflow report"
"""The page's ``<meta name="generator">``: ``prmflow report --out`` replaces only files that have it."""


def page(title: str, subtitle: str, sections: Sequence[Section], run_id: str | None = None) -> str:
    """The whole page; ``run_id`` (the run's ``_SUCCESS``) is recorded so a reader can tell which run
    of a directory the page describes."""
    run_meta = f'<meta name="prmflow-run-id" content="{html.escape(run_id)}">' if run_id else ""
    nav = "".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in sections)
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f'<meta name="generator" content="{GENERATOR}">{run_meta}'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style><script>{SCRIPT}</script></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header><nav>{nav}</nav><main>"
        + "".join(s.html() for s in sections)
        + "</main></body></html>\n"
    )


__all__ = ["CSP", "Section", "file_data_uri", "fmt", "page", "png_data_uri", "table_html"]
