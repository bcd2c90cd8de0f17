"""``churnkit segment`` in every format: terminal tables, Markdown, HTML, and the
cohort heat map of the churn-health report.

Each table is built once as plain text cells (``TextTable``) and then drawn as a
rich table, a Markdown table or an HTML table, so the three formats always show the
same numbers. Values from the data are escaped for the format they land in. The heat
map is drawn with matplotlib's Agg backend (imported only when drawn) and saved
without timestamps, so the same data gives the same PNG bytes.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from churnkit.render.common import count, money, pct
from churnkit.segment.health import HealthReport
from churnkit.segment.segments import DIMENSIONS, SegmentResult

TITLES = {
    "rfm_segment": "RFM segments",
    "lifecycle_stage": "Lifecycle stages",
    "customer_type": "Behavioural types",
    "value_tier": "Value tiers",
    "strategy": "Relationship strategies",
}
HEATMAP_ALT = "Share of each signup cohort still active N months after signing up."


@dataclass(frozen=True)
class TextTable:
    """A table as text cells: the one source of the rich, Markdown and HTML tables."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    caption: str | None = None


# --- building the tables ---------------------------------------------------------------


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def segment_facts(result: SegmentResult) -> list[tuple[str, str]]:
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
    return [
        ("as of", result.as_of.strftime("%Y-%m-%d")),
        ("active customers", count(result.customers.height)),
        (f"revenue ({window})", money(float(result.customers["monetary"].sum()))),
        ("risk", risk),
        ("churn", churn),
    ]


def segment_tables(result: SegmentResult) -> list[TextTable]:
    """One table per dimension (RFM segment, lifecycle, type, value tier, strategy)."""
    tables = []
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
    for dim in DIMENSIONS:
        part = result.summary.filter(pl.col("dimension") == dim)
        headers = ["segment", "customers", "share", "revenue", "value", "risk"]
        if churn:
            headers += ["churn", "vol.", "invol."]
        rows = []
        for r in part.iter_rows(named=True):
            row = [
                str(r["segment"]),
                count(r["customers"]),
                pct(r["customer_share"]),
                pct(r["revenue_share"]),
                f"{r['average_value']:,.0f}",
                _ratio(r["average_risk"]),
            ]
            if churn:
                row += [pct(r["churn_rate"]), pct(r["voluntary_rate"]), pct(r["involuntary_rate"])]
            rows.append(tuple(row))
        tables.append(
            TextTable(
                title=TITLES[dim],
                headers=tuple(headers),
                rows=tuple(rows),
                numeric=(False, *([True] * (len(headers) - 1))),
                caption=caption if dim == DIMENSIONS[-1] else None,
            )
        )
    return tables


def health_facts(report: HealthReport) -> list[tuple[str, str]]:
    s = report.summary
    return [
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
    ]


def _f(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def _month(value: Any) -> str:
    return value.strftime("%Y-%m") if isinstance(value, date) else str(value)


def health_tables(report: HealthReport) -> list[TextTable]:
    tables = [_monthly_table(report)]
    if report.has_failed_payments:
        tables.append(_outcome_table(report.failed_payments, "month", report.recovery_days))
        if report.failed_by_reason is not None and report.failed_by_reason.height:
            tables.append(_outcome_table(report.failed_by_reason, "reason", report.recovery_days))
    tables.append(_cohort_table(report))
    if report.by_plan is not None and report.by_plan.height:
        tables.append(_plan_table(report.by_plan))
    return tables


def _monthly_table(report: HealthReport) -> TextTable:
    headers = (
        "month",
        "active",
        "churned",
        "vol.",
        "invol.",
        "churn",
        "invol. share",
        "rev. churn",
        "NRR",
    )
    rows = tuple(
        (
            _month(r["month"]) + (" *" if r["provisional"] else ""),
            count(r["active_start"]),
            count(r["churned"]),
            count(r["voluntary"]),
            count(r["involuntary"]),
            pct(r["churn_rate"]),
            pct(r["involuntary_share"]),
            pct(r["revenue_churn_rate"]),
            pct(r["net_revenue_retention"]),
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
    return TextTable("Monthly churn by kind", headers, rows, (False, *([True] * 8)), caption)


def _outcome_table(frame: pl.DataFrame, by: str, days: int) -> TextTable:
    headers = (
        by,
        "episodes",
        "recovered",
        "cancelled",
        "lapsed",
        "open",
        "recovery",
        "days",
    )
    rows = tuple(
        (
            _month(r[by]) if by == "month" else str(r[by]),
            count(r["episodes"]),
            count(r["recovered"]),
            count(r["cancelled"]),
            count(r["lapsed"]),
            count(r["open"]),
            pct(r["recovery_rate"]),
            "—" if r["median_days_to_recover"] is None else f"{r['median_days_to_recover']:.1f}",
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
    return TextTable(title, headers, rows, (False, *([True] * 7)), caption)


def _cohort_table(report: HealthReport) -> TextTable:
    wide = report.cohort_matrix()
    offsets = [c for c in wide.columns if c.startswith("m")]
    headers = ("cohort", "n", *[c.removeprefix("m") for c in offsets])
    rows = tuple(
        (
            _month(r["cohort"]),
            count(r["customers"]),
            *["" if r[c] is None else f"{100 * r[c]:.0f}" for c in offsets],
        )
        for r in wide.iter_rows(named=True)
    )
    caption = (
        "Percent of each signup cohort (n customers) active at the end of the Nth month "
        "after the signup month (0: the signup month itself)."
    )
    return TextTable(
        "Cohort retention (months since signup)",
        headers,
        rows,
        (False, *([True] * (len(headers) - 1))),
        caption,
    )


def _plan_table(frame: pl.DataFrame) -> TextTable:
    headers = (
        "plan",
        "cust.-months",
        "churned",
        "vol.",
        "invol.",
        "monthly churn",
        "invol. share",
    )
    rows = tuple(
        (
            str(r["plan"]),
            count(r["customer_months"]),
            count(r["churned"]),
            count(r["voluntary"]),
            count(r["involuntary"]),
            pct(r["churn_rate"]),
            pct(r["involuntary_share"]),
        )
        for r in frame.iter_rows(named=True)
    )
    return TextTable("Churn by plan (complete months)", headers, rows, (False, *([True] * 6)))


# --- terminal --------------------------------------------------------------------------


def _rich(table: TextTable) -> Table:
    out = Table(
        title=table.title,
        title_justify="left",
        caption=table.caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        title_style="bold",
        collapse_padding=True,
        pad_edge=False,
    )
    for i, (header, numeric) in enumerate(zip(table.headers, table.numeric, strict=True)):
        widest = max((len(row[i]) for row in table.rows), default=0)
        out.add_column(header, justify="right" if numeric else "left", min_width=widest)
    for row in table.rows:
        out.add_row(*[Text(cell) for cell in row])
    return out


def _facts(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left", box=None)
    table.add_column(no_wrap=True)
    table.add_column()
    for key, value in rows:
        table.add_row(key, Text(value))
    return table


def segment_summary(result: SegmentResult, health: HealthReport | None = None) -> RenderableType:
    """The terminal view: facts, one table per dimension, notes, and the health report."""
    parts: list[RenderableType] = [_facts("Segments", segment_facts(result))]
    parts += [_rich(t) for t in segment_tables(result)]
    parts += [Text(f"note: {n}") for n in result.notes]
    if health is not None:
        parts.append(_facts("Churn health", health_facts(health)))
        parts += [_rich(t) for t in health_tables(health)]
        parts += [Text(f"note: {n}") for n in health.notes]
    return Group(*parts)


# --- Markdown --------------------------------------------------------------------------


def md(value: str) -> str:
    """A Markdown table cell: pipes, brackets, emphasis and raw HTML cannot escape it."""
    text = re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", value)
    return text.replace("\n", " ")


def _md_table(table: TextTable) -> list[str]:
    lines = [f"### {md(table.title)}", ""]
    lines.append("| " + " | ".join(md(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---:" if n else "---" for n in table.numeric) + "|")
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in table.rows]
    if table.caption:
        lines += ["", md(table.caption)]
    return [*lines, ""]


def _md_facts(rows: list[tuple[str, str]]) -> list[str]:
    return [f"- **{md(key.strip())}**: {md(value)}" for key, value in rows] + [""]


def segment_markdown(
    result: SegmentResult, health: HealthReport | None = None, heatmap: str | None = None
) -> str:
    """The report as Markdown; ``heatmap`` is the cohort heat map's image path."""
    lines = [f"# Customer segments as of {result.as_of:%Y-%m-%d}", ""]
    lines += _md_facts(segment_facts(result))
    for table in segment_tables(result):
        lines += _md_table(table)
    lines += [f"> {md(n)}" for n in result.notes]
    if health is not None:
        lines += ["", "## Churn health", ""]
        lines += _md_facts(health_facts(health))
        for table in health_tables(health):
            lines += _md_table(table)
            if heatmap and table.title.startswith("Cohort retention"):
                lines += [f"![{HEATMAP_ALT}]({heatmap.replace(' ', '%20')})", ""]
        lines += [f"> {md(n)}" for n in health.notes]
    return "\n".join(lines).rstrip() + "\n"


# --- HTML ------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; }
th { text-align: left; background: #f4f4f4; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; text-align: left; color: #666; font-size: 0.85em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: 600; }
.note { color: #555; }
"""


def _html_table(table: TextTable) -> str:
    e = html.escape
    head = "".join(
        f'<th class="n">{e(h)}</th>' if n else f"<th>{e(h)}</th>"
        for h, n in zip(table.headers, table.numeric, strict=True)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{e(c)}</td>' if n else f"<td>{e(c)}</td>"
            for c, n in zip(row, table.numeric, strict=True)
        )
        + "</tr>"
        for row in table.rows
    )
    caption = f"<caption>{e(table.caption)}</caption>" if table.caption else ""
    return (
        f"<h3>{e(table.title)}</h3>\n<table>{caption}<thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _html_facts(rows: list[tuple[str, str]]) -> str:
    items = "".join(f"<dt>{html.escape(k.strip())}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)
    return f"<dl>{items}</dl>"


def segment_html(
    result: SegmentResult, health: HealthReport | None = None, heatmap: bytes | None = None
) -> str:
    """A self-contained HTML page; the heat map PNG is embedded as base64."""
    title = f"Customer segments as of {result.as_of:%Y-%m-%d}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        _html_facts(segment_facts(result)),
    ]
    parts += [_html_table(t) for t in segment_tables(result)]
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in result.notes]
    if health is not None:
        parts += ["<h2>Churn health</h2>", _html_facts(health_facts(health))]
        for table in health_tables(health):
            parts.append(_html_table(table))
            if heatmap and table.title.startswith("Cohort retention"):
                data = base64.b64encode(heatmap).decode("ascii")
                parts.append(
                    f'<img src="data:image/png;base64,{data}" alt="{html.escape(HEATMAP_ALT)}">'
                )
        parts += [f'<p class="note">{html.escape(n)}</p>' for n in health.notes]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --- the cohort heat map ---------------------------------------------------------------


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
