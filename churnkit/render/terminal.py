"""Tables, facts and text for the terminal, as rich renderables.

Data never reaches the terminal raw: every cell is a ``rich.text.Text`` (never console
markup, so ``[bold]`` in the data is shown as typed), and control characters, ANSI
escape sequences and bidirectional overrides (from a cell, a header or a binary file)
are shown as visible escapes (``\x1b``), so a customer id cannot move the cursor,
clear the screen or recolour the output. Line breaks and tabs in a cell become spaces.
Stored data and JSON/CSV outputs keep the text as it is.

:func:`fitted_table` lays a table out for the width it is given when drawn: number
headers may wrap, text columns fold, and where even that is too wide, columns are
dropped in a stated order, so that columns that must stay whole (customer ids: emails,
UUIDs) are never cut.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table as RichTable
from rich.text import Text

from churnkit.render.formats import Column, Facts, Table

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


@dataclass(frozen=True)
class FittedTable:
    """A table drawn as wide as the console allows (see :func:`fitted_table`)."""

    table: Table
    drop: tuple[str, ...] = ()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.layout(console, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.layout(console, options))

    def layout(self, console: Console, options: ConsoleOptions) -> RichTable:
        """The table with the fewest columns dropped that fits (number headers wrap
        before a column goes), its folding columns sized to share the width left."""
        width = options.max_width
        table = self.table
        for key in (*self.drop, None):
            for wrap in (False, True):
                needs = _needs(table, wrap_headers=wrap, loose=False)
                if sum(needs) <= width:
                    return _draw(table, needs, width)
            if key is not None:
                table = _without(table, key)
        return _draw(table, _needs(table, wrap_headers=True, loose=True), width)


# The narrowest a folding column gets; what each column adds around its cells (the
# padding on its right and the space between columns).
FOLD_FLOOR = 8
COLUMN_PADDING = 2


def _draw(table: Table, needs: list[int], width: int) -> RichTable:
    """``table`` with every column as wide as planned: number columns at their need
    (a header wraps when that is narrower than it), folding columns sharing the rest."""
    texts = table.texts()
    folding = [i for i, c in enumerate(table.columns) if c.overflow == "fold"]
    fixed = sum(n for i, n in enumerate(needs) if i not in folding)
    natural = [
        max([_longest_line(c.header), *(_longest_line(r[i]) for r in texts)])
        for i, c in enumerate(table.columns)
    ]
    sizes = _share(
        width - fixed - COLUMN_PADDING * len(folding),
        [needs[i] - COLUMN_PADDING for i in folding],
        [natural[i] for i in folding],
        [table.columns[i].ratio or 1 for i in folding],
    )
    columns = list(table.columns)
    for i, size in zip(folding, sizes, strict=True):
        columns[i] = replace(columns[i], min_width=size, max_width=size)
    for i, column in enumerate(columns):
        if column.numeric:
            size = needs[i] - COLUMN_PADDING
            columns[i] = replace(column, wrap=True, min_width=size, max_width=size)
    return rich_table(replace(table, columns=tuple(columns)))


def _needs(table: Table, *, wrap_headers: bool, loose: bool) -> list[int]:
    """Per column, the width below which it cannot be drawn as intended (padding
    included): cells that do not wrap are whole (number headers too, unless
    ``wrap_headers``), wrapping ones keep their longest word, folding ones their
    preferred width (``loose``: ``FOLD_FLOOR``, folding inside words) or their longest
    line when that is shorter."""
    texts = table.texts()
    out = []
    for i, column in enumerate(table.columns):
        cells = [clean(r[i]) for r in texts]
        longest = max(_longest_line(t) for t in [*cells, column.header])
        if column.overflow == "fold":
            preferred = FOLD_FLOOR if loose else max(column.min_width or 0, FOLD_FLOOR)
            need = min(preferred, longest)
        elif column.numeric:
            header = column.header.split() if wrap_headers else column.header.split("\n")
            need = max([column.min_width or 0, *(len(c) for c in cells), *map(len, header)])
        elif column.wraps:
            words = [w for text in [*cells, column.header] for w in text.split()]
            need = max([column.min_width or 0, *(len(w) for w in words)])
        else:
            need = max(column.min_width or 0, longest)
        out.append(need + COLUMN_PADDING)
    return out


def _longest_line(text: str) -> int:
    return max((len(line) for line in clean(text.replace("\n", "\0")).split("\0")), default=0)


def _share(room: int, least: list[int], most: list[int], ratios: list[int]) -> list[int]:
    """Widths for folding columns: each at least ``least``, growing one character at a
    time (the one furthest below its share first) up to ``most``, within ``room``."""
    sizes = list(least)
    left = room - sum(sizes)
    while left > 0:
        open_ = [i for i in range(len(sizes)) if sizes[i] < most[i]]
        if not open_:
            break
        grow = min(open_, key=lambda i: (sizes[i] / ratios[i], i))
        sizes[grow] += 1
        left -= 1
    return sizes


def fitted_table(table: Table, drop: Sequence[str] = ()) -> FittedTable:
    """``table`` laid out when drawn: cells that do not wrap (ids, numbers) stay whole
    on one line, number headers wrap where needed, text folds; if that is still too
    wide, the columns named in ``drop`` (by key) go, in that order, until it fits."""
    return FittedTable(table, tuple(drop))


def whole(header: str, name: str, cells: Iterable[str]) -> Column:
    """A text column shown whole on one line, never cut (ids)."""
    widest = max((len(clean(c)) for c in cells), default=1)
    return Column(header, name=name, wrap=False, min_width=max(widest, len(header)))


def _without(table: Table, key: str) -> Table:
    keep = [i for i, c in enumerate(table.columns) if c.key != key]
    if len(keep) == len(table.columns):
        return table
    return replace(
        table,
        columns=tuple(table.columns[i] for i in keep),
        rows=tuple(tuple(row[i] for i in keep) for row in table.rows),
    )


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
