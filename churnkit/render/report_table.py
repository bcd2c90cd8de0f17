"""The retention report on the terminal: one screen with the summary, who to save and
why, what to do, and what the budget buys.

Customer ids are shown whole (they are emails and UUIDs in real exports); where the
terminal is narrow the other columns fold, and the least needed ones go first.
``--top`` limits only this screen: files list the whole plan.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Group, RenderableType

from churnkit.core.schema import CUSTOMER_ID, DRIVERS, P_CHURN, VALUE_AT_RISK
from churnkit.render.campaign import campaigns_table
from churnkit.render.formats import Column, Kind, Table, Value
from churnkit.render.report_parts import (
    CHOSEN_SHOWN,
    NO_CUSTOMERS,
    action_cell,
    budget_table,
    chosen_cell,
    kind_cell,
    listed_title,
    plan_table,
    quadrant_table,
    summary_facts,
    what_to_do,
)
from churnkit.render.terminal import fitted_table, rich_facts, rich_notes, whole
from churnkit.report.result import Report

# The action column is at least as wide as its longest word, up to this.
ACTION_WIDTH = 24
DRIVER_WIDTH = 16
# Columns dropped, in this order, when the terminal is too narrow for all of them.
DROPPED_FIRST = ("chosen", P_CHURN, "kind")


def report_table(report: Report) -> RenderableType:
    """One screen: summary, who to save and why, what to do, what the budget buys."""
    parts: list[RenderableType] = [
        rich_facts(summary_facts(report), boxed=True),
        fitted_table(customers_table(report), DROPPED_FIRST),
    ]
    todo = what_to_do(report.customers)
    if todo.rows:
        parts.append(fitted_table(todo))
    parts.append(fitted_table(plan_table(report)))
    if report.budget is not None:
        parts.append(fitted_table(budget_table(report, CHOSEN_SHOWN)))
    if report.by_quadrant is not None:
        parts.append(fitted_table(quadrant_table(report)))
    if report.campaigns:
        parts.append(fitted_table(campaigns_table(report.campaigns)))
    parts.extend(rich_notes(report.notes))
    return Group(*parts)


def customers_table(report: Report) -> Table:
    """The listed customers, narrowed to what a terminal has room for: the top driver
    only, no split of p churn by kind."""
    budget = report.budget is not None
    listed = list(report.customers.iter_rows(named=True))
    action_width = _longest_word((action_cell(r) for r in listed), ACTION_WIDTH)
    columns = [
        whole("customer", CUSTOMER_ID, (str(r[CUSTOMER_ID]) for r in listed)),
        Column("p churn", Kind.PERCENT, name=P_CHURN),
    ]
    if not report.binary:
        columns.append(Column("kind", wrap=False))
    columns += [
        Column("value\nat risk", Kind.MONEY, name=VALUE_AT_RISK),
        Column("why: top driver", min_width=DRIVER_WIDTH, overflow="fold", ratio=3),
        Column("action", min_width=action_width, overflow="fold", ratio=1),
    ]
    if budget:
        columns.append(Column("chosen", wrap=False))
    rows = []
    for r in listed:
        cells: list[Value] = [str(r[CUSTOMER_ID]), r[P_CHURN]]
        if not report.binary:
            cells.append(kind_cell(r))
        cells += [r[VALUE_AT_RISK], r[DRIVERS[0]] or "—", action_cell(r)]
        if budget:
            cells.append(chosen_cell(r))
        rows.append(tuple(cells))
    return Table(listed_title(report), tuple(columns), tuple(rows), empty=NO_CUSTOMERS)


def _longest_word(cells: Iterable[str], cap: int) -> int:
    return min(cap, max((len(w) for c in cells for w in c.split()), default=1))
