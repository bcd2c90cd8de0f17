"""The retention report as one self-contained HTML page: headline cards, tables with
the control group and the chosen customers marked, charts as ``data:`` URIs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from churnkit.core.schema import (
    CUSTOMER_ID,
    DRIVERS,
    P_CHURN,
    P_INVOLUNTARY,
    P_VOLUNTARY,
    VALUE,
    VALUE_AT_RISK,
)
from churnkit.render.campaign import campaigns_table
from churnkit.render.common import count, money, pct
from churnkit.render.formats import Column, Facts, Kind, Table, Value
from churnkit.render.html import Html, figure, h, html_facts, html_notes, html_table, page, tag
from churnkit.render.report_parts import (
    BINARY_NOTE,
    CONTROL_LABEL,
    IN_THE_LIST,
    NO_CUSTOMERS,
    ChartRef,
    action_cell,
    at_risk_text,
    budget_table,
    drivers_table,
    file_title,
    kind_cell,
    model_line,
    plan_table,
    quadrant_table,
    segment_table,
    summary_rows,
    title,
    treated,
    what_to_do,
)
from churnkit.report.result import RANK, Report
from churnkit.retention.columns import ACTION_COST, CONTROL, EXPECTED_SAVED_VALUE, SELECTED


def report_html(report: Report, charts: Sequence[ChartRef] = ()) -> str:
    """One self-contained page: inline CSS, charts as ``data:`` URIs, no scripts."""
    body: list[str] = [
        f"<h1>{h(title(report))}</h1>",
        f'<p class="sub">{h(model_line(report))}</p>',
    ]
    if report.binary:
        body.append(f'<p class="note"><strong>Note:</strong> {h(BINARY_NOTE)}.</p>')
    body += _summary(report)
    # A budget's whole plan can be thousands of rows: it comes last, after the plan's
    # summary and the charts; a top-N list comes first.
    listed = _section(customers_table(report))
    if report.budget is None:
        body += listed
    todo = what_to_do(report.listed)
    if todo.rows:
        body += _section(todo)
    body += _section(plan_table(report))
    if report.budget is not None:
        budget = budget_table(report, report.top, where=IN_THE_LIST)
        body += ["<h2>Budget</h2>", f"<p>{h(budget.title)}</p>", *html_table(budget)]
    if report.by_segment.height:
        body += _section(segment_table(report))
    if report.drivers.height:
        body += _section(drivers_table(report))
    if report.by_quadrant is not None:
        body += _section(quadrant_table(report))
    if report.campaigns:
        body += _section(campaigns_table(report.campaigns))
    if charts:
        body.append("<h2>Charts</h2>")
        body += [figure(chart.src, chart.alt, chart.title) for chart in charts]
    if report.budget is not None:
        body += listed
    body += html_notes(report.notes)
    return page(title(report), body)


def _section(table: Table) -> list[str]:
    return [f"<h2>{h(table.title)}</h2>", *html_table(table)]


def _summary(report: Report) -> list[str]:
    """Headline cards, then the other summary lines as facts."""
    s = report.summary
    cards = [
        ("active customers", count(s.active_customers), ""),
        ("expected churners", f"{s.expected_churners_total:,.1f}", _split_text(report, "n")),
        ("value at risk", money(s.value_at_risk), _split_text(report, "v")),
        ("revenue at risk", money(s.revenue_at_risk), at_risk_text(report)),
    ]
    out = ['<section class="cards">']
    for label, value, detail in cards:
        out.append(
            f'<div class="card"><div class="label">{h(label)}</div>'
            f'<div class="value">{h(value)}</div><div class="detail">{h(detail)}</div></div>'
        )
    out.append("</section>")
    shown = {c[0] for c in cards} | {"model"}  # the model line is the page's subtitle
    facts = tuple(r for r in summary_rows(report) if r[0] not in shown)
    return out + html_facts(Facts(title(report), facts))


def _split_text(report: Report, what: str) -> str:
    if report.binary:
        return "binary model: no split by kind"
    s = report.summary
    if what == "n":
        return " · ".join(f"{k} {v:,.1f}" for k, v in s.expected_churners.items())
    return " · ".join(f"{k} {money(v)}" for k, v in s.value_at_risk_by_kind.items())


def customers_table(report: Report) -> Table:
    """The listed customers: churn kind as a coloured tag over p churn by kind, all
    drivers, the action with the rule that chose it; control rows marked."""
    columns = [
        Column("#", Kind.COUNT, name=RANK),
        Column("customer", name=CUSTOMER_ID, css="id"),
        Column("p churn", Kind.PERCENT, name=P_CHURN),
    ]
    if not report.binary:
        columns.append(Column("kind"))
    columns += [
        Column("value", Kind.MONEY, name=VALUE),
        Column("value at risk", Kind.MONEY, name=VALUE_AT_RISK),
        Column("why: drivers", css="wide"),
        Column("action", css="action"),
        Column("cost", Kind.MONEY, name=ACTION_COST),
        Column("expected saved value", Kind.MONEY, name=EXPECTED_SAVED_VALUE),
    ]
    budget = report.budget is not None
    if budget:
        columns.append(Column("chosen"))
    rows, marks = [], []
    for r in report.listed.iter_rows(named=True):
        cells: list[Value] = [str(r[RANK]), str(r[CUSTOMER_ID]), r[P_CHURN]]
        if not report.binary:
            cells.append(_kind(report, r))
        cells += [
            r[VALUE],
            r[VALUE_AT_RISK],
            Html("<br>".join(h(r[d]) for d in DRIVERS if r.get(d)) or "—"),
            _action(r),
            treated(r, ACTION_COST),
            treated(r, EXPECTED_SAVED_VALUE),
        ]
        if budget:
            cells.append(tag("chosen", "chosen") if r[SELECTED] else "")
        rows.append(tuple(cells))
        marks.append("control" if r[CONTROL] else "")
    return Table(
        file_title(report), tuple(columns), tuple(rows), empty=NO_CUSTOMERS, marks=tuple(marks)
    )


def _kind(report: Report, row: dict[str, Any]) -> Html:
    kind = kind_cell(row)
    label = tag(kind, kind) if kind in report.kinds else h(kind)
    return Html(
        f"{label}<br><small>voluntary&nbsp;{h(pct(row[P_VOLUNTARY]))}<br>"
        f"involuntary&nbsp;{h(pct(row[P_INVOLUNTARY]))}</small>"
    )


def _action(row: dict[str, Any]) -> Html:
    """The action and the rule that chose it; the control group's tag instead."""
    if row[CONTROL]:
        return tag(CONTROL_LABEL, "control")
    reason = row.get("action_reason")
    detail = f"<br><small>{h(reason)}</small>" if reason else ""
    return Html(h(action_cell(row)) + detail)
