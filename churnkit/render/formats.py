"""Output formats every command shares, and the one table model they all draw.

A result is described once as :class:`Table` and :class:`Facts` objects (what the
columns hold, the cells, a caption); one renderer per target draws them:
``churnkit.render.terminal`` (rich), ``churnkit.render.markdown`` (GitHub Markdown),
``churnkit.render.html`` and :func:`table_csv` here. Each renderer escapes every cell
for the format it lands in, so the code that builds tables never escapes anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

import polars as pl

from churnkit.core.io import escape_formulas
from churnkit.render.common import count, pct


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    MARKDOWN = "markdown"
    HTML = "html"


# Formats written as documents (to a file, with charts).
DOCUMENT_SUFFIX = {Format.MARKDOWN: ".md", Format.HTML: ".html"}
SUFFIX_FORMAT = {
    ".md": Format.MARKDOWN,
    ".markdown": Format.MARKDOWN,
    ".html": Format.HTML,
    ".htm": Format.HTML,
}

MISSING = "—"


class Kind(StrEnum):
    """What a column holds. Numbers are right-aligned and never wrapped, and a number
    given as a cell is written the column's way (text cells are shown as given)."""

    TEXT = "text"
    COUNT = "count"  # 1,234
    MONEY = "money"  # 1,234.50 (``digits`` decimals, 2 by default)
    PERCENT = "percent"  # a share 0..1 as 12.3% (``digits`` decimals, 1 by default)
    NUMBER = "number"  # 0.42 (``digits`` decimals, 2 by default)


class Align(StrEnum):
    LEFT = "left"
    RIGHT = "right"


Overflow = Literal["fold", "ellipsis"]
# A cell: text as shown, a number the column writes its way, or None (missing: "—").
Value = str | int | float | None


@dataclass(frozen=True)
class Column:
    """One column: its header, what it holds and how it may be laid out.

    ``name`` is the machine name (the CSV header; the header when empty). The layout
    hints matter where width is scarce (the terminal): ``wrap`` (default: text wraps,
    numbers do not), ``min_width``/``max_width`` in characters, ``overflow`` (long
    words folded onto the next line or cut with an ellipsis) and ``ratio`` (a share of
    the spare width). ``css`` adds an HTML class to the column's cells.
    """

    header: str
    kind: Kind = Kind.TEXT
    name: str = ""
    align: Align | None = None
    digits: int | None = None
    wrap: bool | None = None
    min_width: int | None = None
    max_width: int | None = None
    overflow: Overflow | None = None
    ratio: int | None = None
    css: str = ""

    @property
    def numeric(self) -> bool:
        return self.kind is not Kind.TEXT

    @property
    def alignment(self) -> Align:
        if self.align is not None:
            return self.align
        return Align.RIGHT if self.numeric else Align.LEFT

    @property
    def wraps(self) -> bool:
        return not self.numeric if self.wrap is None else self.wrap

    @property
    def key(self) -> str:
        return self.name or self.header

    def text(self, value: Value) -> str:
        """A cell as people read it."""
        if isinstance(value, str):
            return value
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return MISSING
        if self.kind is Kind.COUNT:
            return count(value)
        if self.kind is Kind.PERCENT:
            return pct(float(value), 1 if self.digits is None else self.digits)
        if self.kind in (Kind.MONEY, Kind.NUMBER):
            return f"{value:,.{2 if self.digits is None else self.digits}f}"
        return str(value)


@dataclass(frozen=True)
class Table:
    """A titled table of cells, the one source of every format's table.

    ``caption`` is a sentence shown after the table; ``empty`` says what it means when
    there are no rows. ``marks`` names a group per row (e.g. ``control``), which HTML
    shows as the row's class; empty strings mark nothing.
    """

    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Value, ...], ...]
    caption: str | None = None
    empty: str | None = None
    marks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        width = len(self.columns)
        for row in self.rows:
            if len(row) != width:
                raise ValueError(f"table {self.title!r}: a row has {len(row)} cells, not {width}")
        if self.marks and len(self.marks) != len(self.rows):
            raise ValueError(
                f"table {self.title!r}: {len(self.marks)} marks for {len(self.rows)} rows"
            )

    def texts(self) -> list[list[str]]:
        """Every cell as people read it, row by row."""
        return [[c.text(v) for c, v in zip(self.columns, row, strict=True)] for row in self.rows]

    def fitted(self) -> Table:
        """The same table with every column at least as wide as its widest cell: cells
        never wrap, headers may (onto two lines) where the terminal is narrow."""
        texts = self.texts()
        columns = tuple(
            replace(
                column,
                min_width=max([column.min_width or 0, *(len(r[i]) for r in texts)]),
                wrap=True,
            )
            for i, column in enumerate(self.columns)
        )
        return replace(self, columns=columns)


@dataclass(frozen=True)
class Facts:
    """Key–value lines under a title: what a result is about, in a few words each."""

    title: str
    rows: tuple[tuple[str, str], ...]


# --- CSV ------------------------------------------------------------------------------


def frame_csv(frame: pl.DataFrame) -> str:
    """A frame as CSV text; cells a spreadsheet would run as formulas are escaped."""
    return escape_formulas(frame).write_csv()


def table_csv(table: Table) -> str:
    """A table as CSV: machine names as the header, numbers as numbers (not as shown),
    text as shown, missing values empty; formula cells escaped."""
    data: dict[str, pl.Series] = {}
    for i, column in enumerate(table.columns):
        values = [row[i] for row in table.rows]
        if any(isinstance(v, str) for v in values):
            texts = [None if v is None else column.text(v) for v in values]
            data[column.key] = pl.Series(column.key, texts, dtype=pl.String)
        elif column.kind is Kind.COUNT:
            data[column.key] = pl.Series(column.key, values, dtype=pl.Int64, strict=False)
        else:
            numbers = pl.Series(column.key, values, dtype=pl.Float64, strict=False)
            data[column.key] = numbers.fill_nan(None)
    return frame_csv(pl.DataFrame(data) if data else pl.DataFrame())
