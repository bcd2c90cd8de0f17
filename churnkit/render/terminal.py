"""Tables, facts and text for the terminal, as rich renderables.

Data never reaches the terminal raw: every cell is a ``rich.text.Text`` (never console
markup, so ``[bold]`` in the data is shown as typed), and control characters, ANSI
escape sequences and bidirectional overrides (from a cell, a header or a binary file)
are shown as visible escapes (``\x1b``), so a customer id cannot move the cursor,
clear the screen or recolour the output. Line breaks and tabs in a cell become spaces.
Stored data and JSON/CSV outputs keep the text as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich import box
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table as RichTable
from rich.text import Text

from churnkit.render.formats import Facts, Table

# C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SPACE = re.compile("[\t\n\r\x0b\x0c]")


def printable(text: object) -> str:
    """``text`` with every unsafe character written as ``\\xNN`` / ``\\uNNNN``."""
    return _UNSAFE.sub(_visible, str(text))


def markup_safe(text: object) -> str:
    """Printable and with rich markup escaped: for strings rich will interpret."""
    return escape(printable(text))


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: str) -> str:
    """A table cell for the terminal: line breaks and tabs as spaces, other unsafe
    characters as visible escapes."""
    return printable(_SPACE.sub(" ", value))


def text(value: str) -> Text:
    """Data as a rich ``Text``: shown literally, control characters removed."""
    return Text(clean(value))


def _label(value: str | None) -> str | None:
    """A title or caption: rich styles it, so it stays a string, with markup escaped."""
    return None if value is None else escape(clean(value))


def rich_table(table: Table, *, width: int | None = None) -> RichTable:
    """The table as a rich ``Table``; ``width`` fixes its width (default: as narrow as
    the cells allow, up to the console's width). With no rows the ``empty`` sentence
    is the caption."""
    rows = table.texts()
    caption = table.empty if not rows and table.empty else table.caption
    out = RichTable(
        title=_label(table.title),
        title_justify="left",
        title_style="bold",
        caption=_label(caption),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        width=width,
    )
    for column in table.columns:
        out.add_column(
            Text(column.header),
            justify=column.alignment.value,
            no_wrap=not column.wraps,
            min_width=column.min_width,
            max_width=column.max_width,
            overflow=column.overflow or "ellipsis",
            ratio=column.ratio,
        )
    for row in rows:
        out.add_row(*[text(cell) for cell in row])
    return out


def rich_facts(facts: Facts, *, boxed: bool = False) -> RichTable | Panel:
    """Key–value lines: under a title, or ``boxed`` in a panel with the title on its
    border (a report's summary)."""
    if boxed:
        grid = RichTable.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        for key, value in facts.rows:
            grid.add_row(text(key), text(value))
        return Panel(grid, title=_label(facts.title), title_align="left")
    table = RichTable(title=_label(facts.title), show_header=False, title_justify="left", box=None)
    table.add_column(no_wrap=True)
    table.add_column()
    for key, value in facts.rows:
        table.add_row(text(key), text(value))
    return table


def rich_notes(notes: Iterable[str]) -> list[Text]:
    """One ``note: ...`` line per note."""
    return [Text(f"note: {clean(n)}") for n in notes]
