"""The retention report as GitHub Markdown; charts are linked image files."""

from __future__ import annotations

from collections.abc import Sequence

from churnkit.core.schema import (
    CUSTOMER_ID,
    P_CHURN,
    P_INVOLUNTARY,
    P_VOLUNTARY,
    VALUE,
    VALUE_AT_RISK,
)
from churnkit.render.campaign import campaigns_table
from churnkit.render.formats import Column, Kind, Table, Value
from churnkit.render.markdown import (
    markdown_facts,
    markdown_image,
    markdown_notes,
    markdown_table,
    md,
)
from churnkit.render.report_parts import (
    BINARY_NOTE,
    IN_THE_LIST,
    NO_CUSTOMERS,
    ChartRef,
    action_cell,
    budget_table,
    chosen_cell,
    drivers_table,
    drivers_text,
    file_title,
    kind_cell,
    plan_table,
    quadrant_table,
    segment_table,
    summary_facts,
    title,
    treated,
    what_to_do,
)
from churnkit.report.result import RANK, Report
from churnkit.retention.columns import ACTION_COST, EXPECTED_SAVED_VALUE


def report_markdown(report: Report, charts: Sequence[ChartRef] = ()) -> str:
    """The report as Markdown; ``charts`` link images (paths relative to the .md file)."""
    out = [f"# {md(title(report))}", ""]
    if report.binary:
        out += [f"> **Note:** {md(BINARY_NOTE)}.", ""]
    out += ["## Summary", "", *markdown_facts(summary_facts(report))]
    # A budget's whole plan comes last (it can be thousands of rows); a top-N list first.
    listed = _section(customers_table(report))
    if report.budget is None:
        out += listed
    todo = what_to_do(report.listed)
    if todo.rows:
        out += _section(todo)
    out += _section(plan_table(report))
    if report.budget is not None:
        budget = budget_table(report, report.top, where=IN_THE_LIST)
        out += ["", "## Budget", "", md(budget.title), "", *markdown_table(budget)]
    if report.by_segment.height:
        out += _section(segment_table(report))
    if report.drivers.height:
        out += _section(drivers_table(report))
    if report.by_quadrant is not None:
        out += _section(quadrant_table(report))
    if report.campaigns:
        out += _section(campaigns_table(report.campaigns))
    if charts:
        out += ["", "## Charts"]
        for chart in charts:
            out += ["", f"### {md(chart.title)}", "", markdown_image(chart.alt, chart.src)]
    if report.budget is not None:
        out += listed
    if report.notes:
        out += ["", *markdown_notes(report.notes)]
    return "\n".join(out) + "\n"


def _section(table: Table) -> list[str]:
    return ["", f"## {md(table.title)}", "", *markdown_table(table)]


def customers_table(report: Report) -> Table:
    """The listed customers with every figure: p churn by kind, all drivers, the
    action's cost and expected saved value."""
    columns = [Column("#", name=RANK), Column("customer", name=CUSTOMER_ID)]
    columns.append(Column("p churn", Kind.PERCENT, name=P_CHURN))
    if not report.binary:
        columns += [
            Column("p voluntary", Kind.PERCENT, name=P_VOLUNTARY),
            Column("p involuntary", Kind.PERCENT, name=P_INVOLUNTARY),
            Column("kind"),
        ]
    columns += [
        Column("value", Kind.MONEY, name=VALUE),
        Column("value at risk", Kind.MONEY, name=VALUE_AT_RISK),
        Column("drivers"),
        Column("action"),
        Column("cost", Kind.MONEY, name=ACTION_COST),
        Column("expected saved value", Kind.MONEY, name=EXPECTED_SAVED_VALUE),
    ]
    budget = report.budget is not None
    if budget:
        columns.append(Column("chosen"))
    rows = []
    for r in report.listed.iter_rows(named=True):
        cells: list[Value] = [str(r[RANK]), str(r[CUSTOMER_ID]), r[P_CHURN]]
        if not report.binary:
            cells += [r[P_VOLUNTARY], r[P_INVOLUNTARY], kind_cell(r)]
        cells += [
            r[VALUE],
            r[VALUE_AT_RISK],
            drivers_text(r),
            action_cell(r),
            treated(r, ACTION_COST),
            treated(r, EXPECTED_SAVED_VALUE),
        ]
        if budget:
            cells.append(chosen_cell(r))
        rows.append(tuple(cells))
    return Table(file_title(report), tuple(columns), tuple(rows), empty=NO_CUSTOMERS)
