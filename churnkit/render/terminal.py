"""Tables and facts for the terminal, as rich renderables.

Every cell is a ``rich.text.Text`` (never console markup, so ``[bold]`` in the data is
shown as typed) with terminal control characters removed: a customer id holding an
escape sequence cannot move the cursor, clear the screen or recolour the output.
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

# C0 controls, DEL and C1 controls; whitespace controls become a space.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACE_CONTROL = frozenset("\t\n\r\x0b\x0c")


def clean(value: str) -> str:
    """Text without terminal control characters (line breaks and tabs become spaces)."""
    return _CONTROL.sub(lambda m: " " if m.group() in _SPACE_CONTROL else "", value)


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
