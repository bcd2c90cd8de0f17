"""GitHub Markdown: one escaper, tables, facts, notes and images.

:func:`md` is the only way data reaches a Markdown document: a value cannot end a
table cell, start a link, emphasis or code, or open raw HTML.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from churnkit.render.formats import Align, Column, Facts, Table

# Backslashes, pipes, backticks, brackets, asterisks and tildes always; an underscore
# where it could open or close emphasis (not between two letters or digits, as in
# snake_case names, which GitHub never emphasises).
_SPECIAL = re.compile(r"[\\|`*\[\]~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_MARKS = {Align.LEFT: "---", Align.RIGHT: "---:"}
_FACT_COLUMNS = (Column("measure"), Column("value"))


def md(value: object) -> str:
    """Text for a Markdown table cell, heading or paragraph: special characters
    escaped, ``<``/``>`` as entities, every run of whitespace (newlines too) one space."""
    text = "" if value is None else str(value)
    text = _SPECIAL.sub(lambda m: "\\" + m.group(), text)
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


def markdown_table(table: Table) -> list[str]:
    """The table's lines (the title is the caller's heading): header, alignment row,
    rows; then the ``empty`` sentence when there are no rows, and the caption."""
    lines = [
        _row(c.header for c in table.columns),
        "| " + " | ".join(_MARKS[c.alignment] for c in table.columns) + " |",
    ]
    rows = table.texts()
    lines += [_row(row) for row in rows]
    if not rows and table.empty:
        lines += ["", md(table.empty)]
    if table.caption:
        lines += ["", md(table.caption)]
    return lines


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(md(c) for c in cells) + " |"


def markdown_facts(facts: Facts) -> list[str]:
    """Key–value lines as a two-column table (``measure | value``)."""
    return markdown_table(Table(facts.title, _FACT_COLUMNS, facts.rows))


def markdown_notes(notes: Iterable[str]) -> list[str]:
    """One list item per note, so consecutive notes stay separate paragraphs."""
    return [f"- Note: {md(n)}" for n in notes]


def markdown_image(alt: str, src: str) -> str:
    """An image link; spaces and parentheses in the path are percent-encoded so the
    link stays whole."""
    target = src.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    return f"![{md(alt)}]({target})"
