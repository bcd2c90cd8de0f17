"""``churnkit segment`` in every format: terminal tables, Markdown, HTML, and the
cohort heat map of the churn-health report.

Each table is built once as a ``churnkit.render.formats.Table`` and drawn by the shared
terminal, Markdown and HTML renderers, so every format shows the same numbers, escaped
for where they land. The heat map is drawn with matplotlib's Agg backend (imported only
when drawn) and saved without timestamps, so the same data gives the same PNG bytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from datetime import date
from typing import Any

import polars as pl
from rich.console import Group, RenderableType

from churnkit.render.common import count, money, pct
from churnkit.render.formats import Column, Facts, Kind, Table
from churnkit.render.html import figure, h, html_facts, html_notes, html_table, page
from churnkit.render.markdown import (
    markdown_facts,
    markdown_image,
    markdown_notes,
    markdown_table,
    md,
)
from churnkit.render.report_parts import ChartRef
from churnkit.render.terminal import fitted_table, rich_facts, rich_notes
from churnkit.segment.health import HealthReport
from churnkit.segment.segments import DIMENSIONS, SegmentResult
from churnkit.segment.survival import MILESTONES, SurvivalReport
from churnkit.segment.value_matrix import QUADRANT_LABELS

TITLES = {
    "rfm_segment": "RFM segments",
    "lifecycle_stage": "Lifecycle stages",
    "customer_type": "Behavioural types",
    "value_tier": "Value tiers",
    "strategy": "Relationship strategies",
}
VALUE_MATRIX_TITLE = "Value × cost-to-serve"
COHORT_TITLE = "Cohort retention (months since signup)"
HEATMAP_ALT = "Share of each signup cohort still active N months after signing up."

_PCT = Kind.PERCENT
_COUNT = Kind.COUNT


# --- facts ------------------------------------------------------------------------------


def segment_facts(result: SegmentResult) -> Facts:
    window = f"last {result.rfm_window} days" if result.rfm_window is not None else "whole history"
    sources = result.risk_sources
    model_n = sources.get("model", 0)
    if model_n and result.model:
        risk = f"model {result.model!r} ({count(model_n)} customers)"
        if sources.get("rules"):
            risk += f", rules ({count(sources['rules'])})"
    else:
        risk = "rules (overdue ratio, unrecovered failed payments)"
    churn = (
        f"observed over {result.horizon} days after the as-of"
        if result.outcomes_known
        else "not yet observable"
    )
    rows = (
        ("as of", result.as_of.strftime("%Y-%m-%d")),
        ("active customers", count(result.customers.height)),
        (f"revenue ({window})", money(float(result.customers["monetary"].sum()))),
        ("risk", risk),
        ("churn", churn),
    )
    return Facts("Segments", rows)


def health_facts(report: HealthReport) -> Facts:
    s = report.summary
    rows = (
        ("as of", report.as_of.strftime("%Y-%m-%d")),
        ("period", "calendar month (customers active at its start who left during it)"),
        ("complete months", str(s["complete_months"])),
        ("monthly churn rate", pct(_f(s["monthly_churn_rate"]))),
        ("  voluntary", pct(_f(s["voluntary_rate"]))),
        ("  involuntary", pct(_f(s["involuntary_rate"]))),
        ("annualised churn rate", pct(_f(s["annualised_churn_rate"]))),
        ("involuntary share of churn", pct(_f(s["involuntary_share"]))),
        ("revenue churn rate (monthly)", pct(_f(s["revenue_churn_rate"]))),
        ("net revenue retention (monthly)", pct(_f(s["net_revenue_retention"]))),
        ("failed-payment episodes", count(s["failed_payment_episodes"] or 0)),
        (
            f"recovered within {report.recovery_days} days",
            pct(_f(s["recovery_rate"])),
        ),
    )
    return Facts("Churn health", rows)


def _f(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def _month(value: Any) -> str:
    return value.strftime("%Y-%m") if isinstance(value, date) else str(value)


# --- tables -----------------------------------------------------------------------------


def segment_tables(result: SegmentResult) -> list[Table]:
    """One table per dimension (RFM segment, lifecycle, type, value tier, strategy)."""
    churn = result.outcomes_known
    caption = (
        "share: of the active customers; revenue: share of their revenue (monetary); "
        "value: average monetary; risk: average risk"
        + (
            f"; churn: share who left within {result.horizon} days (vol./invol.: "
            "voluntary/involuntary)."
            if churn
            else "."
        )
    )
    columns = [
        Column("segment", name="segment"),
        Column("customers", _COUNT, name="customers"),
        Column("share", _PCT, name="customer_share"),
        Column("revenue", _PCT, name="revenue_share"),
        Column("value", Kind.MONEY, name="average_value", digits=0),
        Column("risk", Kind.NUMBER, name="average_risk"),
    ]
    if churn:
        columns += [
            Column("churn", _PCT, name="churn_rate"),
            Column("vol.", _PCT, name="voluntary_rate"),
            Column("invol.", _PCT, name="involuntary_rate"),
        ]
    names = [c.key for c in columns]
    tables = []
    for dim in DIMENSIONS:
        part = result.summary.filter(pl.col("dimension") == dim)
        rows = tuple(part.select(pl.col("segment").cast(pl.String), *names[1:]).rows())
        tables.append(
            Table(
                TITLES[dim],
                tuple(columns),
                rows,
                caption=caption if dim == DIMENSIONS[-1] else None,
            )
        )
    if result.value_matrix is not None:
        tables.append(value_matrix_table(result.value_matrix))
    return tables


def value_matrix_table(matrix: pl.DataFrame) -> Table:
    """Customers per quadrant of value × cost-to-serve, with its strategy."""
    columns = (
        Column("quadrant", name="value_cost_quadrant"),
        Column("customers", _COUNT, name="customers"),
        Column("share", _PCT, name="customer_share"),
        Column("revenue", _PCT, name="revenue_share"),
        Column("value", Kind.MONEY, name="average_value", digits=0),
        Column("cost to serve", Kind.MONEY, name="average_cost_to_serve"),
        Column("strategy", name="quadrant_strategy"),
    )
    rows = tuple(
        (
            QUADRANT_LABELS.get(r["value_cost_quadrant"], r["value_cost_quadrant"]),
            *list(r.values())[1:],
        )
        for r in matrix.iter_rows(named=True)
    )
    caption = (
        "value: monetary over the RFM window, split at its median; cost to serve: refunds, "
        "complaints, failed payments and discounted purchases at segments.cost_to_serve "
        "costs, split at its median (average per customer shown)."
    )
    return Table(VALUE_MATRIX_TITLE, columns, rows, caption=caption)


def health_tables(report: HealthReport) -> list[Table]:
    tables = [_monthly_table(report)]
    if report.has_failed_payments:
        tables.append(_outcome_table(report.failed_payments, "month", report.recovery_days))
        if report.failed_by_reason is not None and report.failed_by_reason.height:
            tables.append(_outcome_table(report.failed_by_reason, "reason", report.recovery_days))
    tables.append(_cohort_table(report))
    if report.survival is not None:
        tables.append(survival_table(report.survival))
    if report.by_plan is not None and report.by_plan.height:
        tables.append(_plan_table(report.by_plan))
    return tables


def _monthly_table(report: HealthReport) -> Table:
    columns = (
        Column("month"),
        Column("active", _COUNT, name="active_start"),
        Column("churned", _COUNT, name="churned"),
        Column("vol.", _COUNT, name="voluntary"),
        Column("invol.", _COUNT, name="involuntary"),
        Column("churn", _PCT, name="churn_rate"),
        Column("invol. share", _PCT, name="involuntary_share"),
        Column("rev. churn", _PCT, name="revenue_churn_rate"),
        Column("NRR", _PCT, name="net_revenue_retention"),
    )
    rows = tuple(
        (
            _month(r["month"]) + (" *" if r["provisional"] else ""),
            *[r[c.key] for c in columns[1:]],
        )
        for r in report.months.iter_rows(named=True)
    )
    caption = (
        "active: customers active at the start of the month; churn: the share of them who "
        "left during it (vol./invol.: voluntary/involuntary); rev. churn: their revenue of "
        "the month before lost with the churners; NRR: net revenue retention, their revenue "
        "in the month over the month before."
    )
    if report.months.height and report.months["provisional"].any():
        caption += " *: provisional, the grace period after the month end runs past the as-of."
    return Table("Monthly churn by kind", columns, rows, caption)


def _outcome_table(frame: pl.DataFrame, by: str, days: int) -> Table:
    columns = (
        Column(by, name=by),
        Column("episodes", _COUNT, name="episodes"),
        Column("recovered", _COUNT, name="recovered"),
        Column("cancelled", _COUNT, name="cancelled"),
        Column("lapsed", _COUNT, name="lapsed"),
        Column("open", _COUNT, name="open"),
        Column("recovery", _PCT, name="recovery_rate"),
        Column("days", Kind.NUMBER, name="median_days_to_recover", digits=1),
    )
    rows = tuple(
        (
            _month(r[by]) if by == "month" else str(r[by]),
            *[r[c.key] for c in columns[1:]],
        )
        for r in frame.iter_rows(named=True)
    )
    title = "Failed-payment outcomes" + (" by reason" if by == "reason" else " by month")
    caption = (
        f"episode: a customer's failed payments between two purchases; recovered: a "
        f"purchase within {days} days of the first failure; cancelled: a cancel first; "
        "lapsed: neither; open: the time is not up yet; recovery: recovered / (recovered + "
        "cancelled + lapsed); days: median days to recovery."
    )
    return Table(title, columns, rows, caption)


SURVIVAL_TITLE = "Retention curves (Kaplan-Meier, days since start)"


# On a narrow terminal these columns go first (a survival table has the most).
NARROW_DROPS = ("survival_180d", "survival_90d", "median_ci")


def survival_table(survival: SurvivalReport) -> Table:
    """Per dimension and group: customers, ends by kind, median lifetime with its 95%
    interval, and the share still customers after 90, 180 and 365 days."""
    columns = (
        Column("by"),
        Column("group"),
        Column("customers", _COUNT),
        Column("ended vol.", _COUNT, name="ended_voluntary"),
        Column("ended invol.", _COUNT, name="ended_involuntary"),
        Column("median days", name="median_lifetime_days", wrap=False),
        Column("95% interval", name="median_ci"),
        *(Column(f"{d}d", _PCT, name=f"survival_{d}d") for d in MILESTONES),
    )
    rows = []
    for dim, groups in survival.dimensions.items():
        for g in groups:
            last = int(g.curve.days[-1]) if len(g.curve.days) else 0
            rows.append(
                (
                    dim,
                    g.group,
                    g.customers,
                    g.voluntary,
                    g.involuntary,
                    _days(g.median),
                    f"{_days(g.median_low)} to {_days(g.median_high)}",
                    *(g.curve.at(d) if d <= last else None for d in MILESTONES),
                )
            )
    caption = (
        "Lifetime: from the first signup (else purchase) to a cancel, an unrecovered failed "
        "payment or the last purchase before a lapse; active customers count until the "
        "as-of. 'not reached': fewer than half have ended."
    )
    return Table(SURVIVAL_TITLE, columns, tuple(rows), caption=caption)


def _days(value: float | None) -> str:
    return "not reached" if value is None else f"{value:,.0f}"


def _cohort_table(report: HealthReport) -> Table:
    wide = report.cohort_matrix()
    offsets = [c for c in wide.columns if c.startswith("m")]
    columns = (
        Column("cohort", name="cohort"),
        Column("n", _COUNT, name="customers"),
        # Percent without the sign, blank where the month is not over yet.
        *[Column(c.removeprefix("m"), Kind.NUMBER, name=c) for c in offsets],
    )
    rows = tuple(
        (
            _month(r["cohort"]),
            r["customers"],
            *["" if r[c] is None else f"{100 * r[c]:.0f}" for c in offsets],
        )
        for r in wide.iter_rows(named=True)
    )
    caption = (
        "Percent of each signup cohort (n customers) active at the end of the Nth month "
        "after the signup month (0: the signup month itself)."
    )
    return Table(COHORT_TITLE, columns, rows, caption)


def _plan_table(frame: pl.DataFrame) -> Table:
    columns = (
        Column("plan", name="plan"),
        Column("cust.-months", _COUNT, name="customer_months"),
        Column("churned", _COUNT, name="churned"),
        Column("vol.", _COUNT, name="voluntary"),
        Column("invol.", _COUNT, name="involuntary"),
        Column("monthly churn", _PCT, name="churn_rate"),
        Column("invol. share", _PCT, name="involuntary_share"),
    )
    rows = tuple(frame.select(pl.col("plan").cast(pl.String), *[c.key for c in columns[1:]]).rows())
    return Table("Churn by plan (complete months)", columns, rows)


# --- documents --------------------------------------------------------------------------


def segment_summary(result: SegmentResult, health: HealthReport | None = None) -> RenderableType:
    """The terminal view: facts, one table per dimension, notes, and the health report.
    Columns are never narrower than their widest cell: a narrow terminal cuts a table
    rather than wrapping its numbers."""
    parts: list[RenderableType] = [rich_facts(segment_facts(result))]
    parts += [fitted_table(t, NARROW_DROPS) for t in segment_tables(result)]
    parts += rich_notes(result.notes)
    if health is not None:
        parts.append(rich_facts(health_facts(health)))
        parts += [fitted_table(t, NARROW_DROPS) for t in health_tables(health)]
        parts += rich_notes(health.notes)
    return Group(*parts)


def segment_markdown(
    result: SegmentResult,
    health: HealthReport | None = None,
    heatmap: str | None = None,
    curves: Sequence[ChartRef] = (),
) -> str:
    """The report as Markdown; ``heatmap`` is the cohort heat map's image path,
    ``curves`` the retention charts (image paths)."""
    lines = [f"# Customer segments as of {result.as_of:%Y-%m-%d}", ""]
    lines += [*markdown_facts(segment_facts(result)), ""]
    for table in segment_tables(result):
        lines += [f"### {md(table.title)}", "", *markdown_table(table), ""]
    lines += markdown_notes(result.notes)
    if health is not None:
        lines += ["", "## Churn health", ""]
        lines += [*markdown_facts(health_facts(health)), ""]
        for table in health_tables(health):
            lines += [f"### {md(table.title)}", "", *markdown_table(table), ""]
            if heatmap and table.title == COHORT_TITLE:
                lines += [markdown_image(HEATMAP_ALT, heatmap), ""]
            if table.title == SURVIVAL_TITLE:
                for chart in curves:
                    lines += [
                        f"#### {md(chart.title)}",
                        "",
                        markdown_image(chart.alt, chart.src),
                        "",
                    ]
        lines += markdown_notes(health.notes)
    return "\n".join(lines).rstrip() + "\n"


def segment_html(
    result: SegmentResult,
    health: HealthReport | None = None,
    heatmap: bytes | None = None,
    curves: Sequence[ChartRef] = (),
) -> str:
    """A self-contained HTML page; the heat map PNG is embedded as base64."""
    title = f"Customer segments as of {result.as_of:%Y-%m-%d}"
    body = [f"<h1>{h(title)}</h1>", *html_facts(segment_facts(result))]
    for table in segment_tables(result):
        body += [f"<h3>{h(table.title)}</h3>", *html_table(table)]
    body += html_notes(result.notes)
    if health is not None:
        body += ["<h2>Churn health</h2>"]
        body += html_facts(health_facts(health))
        for table in health_tables(health):
            body += [f"<h3>{h(table.title)}</h3>", *html_table(table)]
            if heatmap and table.title == COHORT_TITLE:
                data = base64.b64encode(heatmap).decode("ascii")
                body.append(figure(f"data:image/png;base64,{data}", HEATMAP_ALT))
            if table.title == SURVIVAL_TITLE:
                body += [figure(chart.src, chart.alt, chart.title) for chart in curves]
        body += html_notes(health.notes)
    return page(title, body)


# --- the cohort heat map ----------------------------------------------------------------


def cohort_heatmap(report: HealthReport) -> bytes | None:
    """The cohort retention matrix as a PNG heat map (None when there are no cohorts)."""
    wide = report.cohort_matrix()
    offsets = [c for c in wide.columns if c.startswith("m")]
    if wide.height == 0 or not offsets:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = [[_cell(r[c]) for c in offsets] for r in wide.iter_rows(named=True)]
    labels = [_month(c) for c in wide["cohort"].to_list()]
    width = min(12.0, 2.5 + 0.55 * len(offsets))
    height = min(9.0, 1.5 + 0.35 * len(labels))
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(offsets)), [c.removeprefix("m") for c in offsets], fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("months since signup")
    ax.set_ylabel("signup cohort")
    ax.set_title("Cohort retention (share still active)")
    for y, row in enumerate(values):
        for x, v in enumerate(row):
            if v == v:  # not NaN
                ax.text(
                    x,
                    y,
                    f"{v:.0%}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if v < 0.6 else "black",
                )
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def _cell(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def json_payload(
    result: SegmentResult, health: HealthReport | None, outputs: dict[str, str]
) -> dict[str, Any]:
    """The ``--json`` object: the segment result, the health report, files written."""
    payload = result.to_json()
    if health is not None:
        payload["health"] = health.to_json()
    payload["outputs"] = outputs
    return payload
