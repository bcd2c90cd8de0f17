"""Small formatting helpers shared by the renderers."""

from __future__ import annotations

from datetime import datetime

from rich.table import Table


def count(n: int | float) -> str:
    return f"{int(n):,}"


def money(x: float) -> str:
    return f"{x:,.2f}"


def pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}%"


def num(x: float | None, digits: int = 3) -> str:
    return "—" if x is None or x != x else f"{x:.{digits}f}"


def day(ts: datetime | None) -> str:
    return "—" if ts is None else ts.strftime("%Y-%m-%d %H:%M")


def kv_table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(
        title=title,
        show_header=False,
        title_justify="left",
        box=None,
        pad_edge=False,
        title_style="bold",
    )
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    for key, value in rows:
        table.add_row(key, value)
    return table
