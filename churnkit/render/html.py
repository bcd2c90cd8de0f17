"""HTML: one escaper, one style sheet, one page shell, tables and facts.

Pages are self-contained (inline CSS, images as ``data:`` URIs) and declare a content
security policy that allows nothing else: no scripts, no external requests. Data
reaches a page only through :func:`h`, or inside :class:`Html` built from it.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from churnkit.render.formats import Align, Column, Facts, Table

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; color: #1f2328; background: #f6f8fa; margin: 0; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.25rem; margin: 32px 0 8px; border-bottom: 1px solid #d0d7de;
  padding-bottom: 4px; }
h3 { font-size: 1.05rem; margin: 20px 0 6px; }
.sub { color: #57606a; margin: 0 0 16px; }
.note { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px;
  padding: 8px 12px; margin: 12px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr));
  gap: 12px; margin: 12px 0; }
.card { border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 14px; }
.card .label { color: #57606a; font-size: .85rem; }
.card .value { font-size: 1.35rem; font-weight: 600; }
.card .detail { color: #57606a; font-size: .85rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; margin: 8px 0; }
th, td { padding: 5px 8px; border-bottom: 1px solid #eaeef2; text-align: left;
  vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td.id { max-width: 12rem; overflow-wrap: anywhere; }
td.wide { min-width: 16rem; }
td.action { min-width: 10rem; }
td small { color: #57606a; }
.wrap { overflow-x: auto; }
tbody tr:nth-child(even) { background: #fafbfc; }
tr.control td { color: #6e7781; background: #f3f0ff; }
.tag { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: .8rem;
  white-space: nowrap; }
.tag.control { background: #e0d8ff; color: #3e1f8f; }
.tag.chosen { background: #dafbe1; color: #116329; }
.tag.voluntary { background: #fff1d6; color: #7a4a00; }
.tag.involuntary { background: #dbeafe; color: #0b3d91; }
.tag.churned { background: #ffe2d6; color: #8a2a00; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
dl.facts dt { color: #57606a; }
dl.facts dd { margin: 0; }
figure { margin: 16px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; border-radius: 6px; }
figcaption { color: #57606a; font-size: .85rem; }
footer { color: #6e7781; font-size: .8rem; margin-top: 32px; }
"""

_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


class Html(str):
    """Markup that is safe as it is: built only from literal tags and :func:`h`.
    A table cell of this type is placed on the page unescaped."""

    __slots__ = ()


def h(value: object) -> str:
    """Every data value goes through here before it reaches the page."""
    return html.escape("" if value is None else str(value), quote=True)


def tag(label: str, kind: str) -> Html:
    """A small coloured label (``kind`` is its CSS class: control, chosen, a churn kind)."""
    return Html(f'<span class="tag {h(kind)}">{h(label)}</span>')


def page(title: str, body: Iterable[str]) -> str:
    """A whole self-contained page: the shell, the style sheet and ``body`` (markup)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">\n'
        f"<title>{h(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def html_table(table: Table) -> list[str]:
    """The table's lines (the title is the caller's heading), in a horizontally
    scrolling box; with no rows the ``empty`` sentence instead; then the caption."""
    rows = table.texts()
    caption = [f"<p>{h(table.caption)}</p>"] if table.caption else []
    if not rows:
        return [f"<p>{h(table.empty)}</p>", *caption] if table.empty else caption
    classes = [_classes(c) for c in table.columns]
    out = ['<div class="wrap"><table>', "<thead><tr>"]
    out += [_cell("th", h(c.header), cls) for c, cls in zip(table.columns, classes, strict=True)]
    out += ["</tr></thead>", "<tbody>"]
    marks: Sequence[str] = table.marks or [""] * len(rows)
    for raw, shown, mark in zip(table.rows, rows, marks, strict=True):
        out.append(f'<tr class="{h(mark)}">' if mark else "<tr>")
        for value, cell, cls in zip(raw, shown, classes, strict=True):
            out.append(_cell("td", value if isinstance(value, Html) else h(cell), cls))
        out.append("</tr>")
    out += ["</tbody>", "</table></div>", *caption]
    return out


def _classes(column: Column) -> str:
    """``num`` (right-aligned, tabular figures) for right-aligned columns, then ``css``."""
    right = "num" if column.alignment is Align.RIGHT else ""
    return " ".join(c for c in (right, column.css) if c)


def _cell(name: str, content: str, cls: str) -> str:
    return f'<{name} class="{cls}">{content}</{name}>' if cls else f"<{name}>{content}</{name}>"


def html_facts(facts: Facts) -> list[str]:
    """Key–value lines as a definition list."""
    items = [f"<dt>{h(k.strip())}</dt><dd>{h(v)}</dd>" for k, v in facts.rows]
    return ['<dl class="facts">', *items, "</dl>"]


def html_notes(notes: Iterable[str]) -> list[str]:
    return [f'<p class="note">{h(n)}</p>' for n in notes]


def figure(src: str, alt: str, title: str | None = None) -> str:
    """An image with its text alternative as the caption (and a title above it)."""
    heading = f"<h3>{h(title)}</h3>" if title else ""
    return (
        f'<figure>{heading}<img src="{h(src)}" alt="{h(alt)}">'
        f"<figcaption>{h(alt)}</figcaption></figure>"
    )
