"""A measured campaign in every format: terminal, Markdown, HTML and JSON.

The tables are built once (``churnkit.render.formats``) and drawn by the shared
renderers, which escape every value for the format it lands in. The retention chart
(treated vs control over the window) is drawn by ``churnkit.render.charts``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType

from churnkit.render.formats import Column, Facts, Kind, Table, Value
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
from churnkit.retention.measure import Comparison
from churnkit.retention.outcome import CONSISTENT, HIGHER, LOWER, UNKNOWN, CampaignResult

FEEDBACK_WORDS = {
    CONSISTENT: "consistent with the assumption",
    LOWER: "below the assumption",
    HIGHER: "above the assumption",
    UNKNOWN: "no control churners to compare",
}


def title(result: CampaignResult) -> str:
    return f"Campaign {result.campaign}: planned {result.as_of.isoformat()}"


def points(x: float) -> str:
    """A difference of two rates in percentage points."""
    return "—" if not math.isfinite(x) else f"{100 * x:+.1f} pts"


def interval(low: float, high: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "—"
    return f"{100 * low:+.1f} to {100 * high:+.1f} pts"


def p_value(p: float) -> str:
    if not math.isfinite(p):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def verdict(c: Comparison) -> str:
    """One sentence a manager can act on; it never claims an effect the interval does
    not support."""
    rates = (
        f"churn {_pct(c.treated_rate)} treated vs {_pct(c.control_rate)} control; "
        f"uplift {points(c.uplift)} (95% interval {interval(c.ci_low, c.ci_high)}, "
        f"p {p_value(c.p_value)})"
    )
    if c.treated == 0 or c.control == 0:
        return "Nothing to compare: the plan has no " + (
            "treated customers" if c.treated == 0 else "control customers"
        )
    if c.ci_low > 0:
        return f"The actions kept customers: {rates}."
    if c.ci_high < 0:
        return f"Treated customers churned more than the control group: {rates}."
    return f"No effect can be told apart from chance (the interval includes 0): {rates}."


def _pct(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{100 * x:.1f}%"


def campaign_facts(result: CampaignResult) -> Facts:
    window = f"{result.as_of.isoformat()} to {result.window_end.isoformat()} ({result.days} days)"
    if not result.window_complete:
        window += f", incomplete: {result.horizon}-day horizon"
    c = result.overall
    rows = [
        ("verdict", verdict(c)),
        ("window", window),
        ("data until", result.data_until.isoformat()),
        ("customers", f"{c.treated:,} treated, {c.control:,} control"),
        ("control share", f"{100 * result.control_share:.0f}% of the scored customers"),
        ("model", result.model or "—"),
    ]
    if result.suggested_playbook:
        rows.append(("suggested playbook", result.suggested_playbook))
    return Facts(title(result), tuple(rows))


def groups_table(result: CampaignResult) -> Table:
    c = result.overall
    columns = (
        Column("group"),
        Column("customers", Kind.COUNT),
        Column("churned", Kind.COUNT),
        Column("voluntary", Kind.COUNT),
        Column("involuntary", Kind.COUNT),
        Column("churn rate", Kind.PERCENT, name="churn_rate"),
        Column("revenue", Kind.MONEY),
        Column("revenue per customer", Kind.MONEY, name="revenue_per_customer"),
    )
    rows: list[tuple[Value, ...]] = []
    for name, n, churned, vol, inv, rate, revenue in (
        (
            "treated",
            c.treated,
            c.treated_churned,
            c.treated_voluntary,
            c.treated_involuntary,
            c.treated_rate,
            c.treated_revenue,
        ),
        (
            "control",
            c.control,
            c.control_churned,
            c.control_voluntary,
            c.control_involuntary,
            c.control_rate,
            c.control_revenue,
        ),
    ):
        rows.append((name, n, churned, vol, inv, _f(rate), revenue, revenue / n if n else None))
    caption = (
        "Churn is labelled as in training: a cancel, a lapse, or an unrecovered failed payment."
    )
    return Table("Treated vs control", columns, tuple(rows), caption=caption)


def effect_table(result: CampaignResult) -> Table:
    c = result.overall
    rows: tuple[tuple[Value, ...], ...] = (
        ("uplift (control churn − treated churn)", points(c.uplift)),
        ("95% interval", interval(c.ci_low, c.ci_high)),
        ("p-value", p_value(c.p_value)),
        ("incremental revenue", _money(c.incremental_revenue)),
        (
            "incremental revenue, 95% interval",
            f"{_money(c.incremental_revenue_low)} to {_money(c.incremental_revenue_high)}",
        ),
        ("cost of the actions", _money(c.cost)),
        ("net return (incremental revenue − cost)", _money(c.net_return)),
        ("return per unit spent", _ratio(c.return_per_unit)),
    )
    return Table("Effect", (Column("measure"), Column("value", Kind.TEXT)), rows)


# On a narrow terminal these columns go first: the counts, then the money.
NARROW_DROPS = ("treated", "control", "incremental_revenue", "cost")


def actions_table(result: CampaignResult) -> Table:
    """Treated vs control per action."""
    columns = (
        Column("action", wrap=False),
        Column("treated", Kind.COUNT),
        Column("control", Kind.COUNT),
        Column("treated churn", Kind.PERCENT, name="treated_churn_rate"),
        Column("control churn", Kind.PERCENT, name="control_churn_rate"),
        Column("uplift", name="uplift"),
        Column("95% interval", name="ci"),
        Column("p", name="p_value"),
    )
    rows = []
    for a in result.actions:
        c = a.comparison
        rows.append(
            (
                a.action,
                c.treated,
                c.control,
                _f(c.treated_rate),
                _f(c.control_rate),
                points(c.uplift),
                interval(c.ci_low, c.ci_high),
                p_value(c.p_value),
            )
        )
    return Table("By action", columns, tuple(rows), empty="No actions in the plan.")


def feedback_table(result: CampaignResult) -> Table:
    """Per action: what it returned, and its observed success rate against the
    playbook's assumption."""
    columns = (
        Column("action", wrap=False),
        Column("incremental revenue", Kind.MONEY, name="incremental_revenue"),
        Column("cost", Kind.MONEY),
        Column("assumed success", Kind.PERCENT, name="assumed_success_rate"),
        Column("observed success", name="observed_success_rate"),
        Column("95% interval", name="success_ci"),
        Column("feedback"),
    )
    rows = []
    for a in result.actions:
        c = a.comparison
        known = math.isfinite(a.success_low)
        rows.append(
            (
                a.action,
                _f(c.incremental_revenue),
                c.cost,
                a.assumed_success_rate,
                _pct(a.observed_success_rate) if known else "—",
                f"{_pct(a.success_low)} to {_pct(a.success_high)}" if known else "—",
                FEEDBACK_WORDS.get(a.verdict, a.verdict),
            )
        )
    caption = (
        "Observed success = the share of would-be churners the action kept "
        "(uplift / control churn rate)."
    )
    return Table(
        "Actions against the playbook",
        columns,
        tuple(rows),
        caption=caption,
        empty="No actions in the plan.",
    )


def campaign_tables(result: CampaignResult) -> list[Table]:
    return [
        groups_table(result),
        effect_table(result),
        actions_table(result),
        feedback_table(result),
    ]


def _f(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _money(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:,.2f}"


def _ratio(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:,.2f}"


# --- documents ---------------------------------------------------------------------------


def campaign_terminal(result: CampaignResult) -> RenderableType:
    parts: list[RenderableType] = [rich_facts(campaign_facts(result), boxed=True)]
    parts += [fitted_table(t, NARROW_DROPS) for t in campaign_tables(result)]
    parts += rich_notes(result.notes)
    return Group(*parts)


def campaign_markdown(result: CampaignResult, charts: Sequence[ChartRef] = ()) -> str:
    lines = [f"# {md(title(result))}", "", *markdown_facts(campaign_facts(result))]
    lines += campaign_markdown_section(result, charts, level=2)
    return "\n".join(lines).rstrip() + "\n"


def campaign_markdown_section(
    result: CampaignResult, charts: Sequence[ChartRef], *, level: int
) -> list[str]:
    """The tables, the chart and the notes (a report embeds them under its heading)."""
    mark = "#" * level
    lines: list[str] = []
    for table in campaign_tables(result):
        lines += ["", f"{mark} {md(table.title)}", "", *markdown_table(table)]
    for chart in charts:
        lines += ["", f"{mark} {md(chart.title)}", "", markdown_image(chart.alt, chart.src)]
    if result.notes:
        lines += ["", *markdown_notes(result.notes)]
    return lines


def campaign_html(result: CampaignResult, charts: Sequence[ChartRef] = ()) -> str:
    body = [f"<h1>{h(title(result))}</h1>", *html_facts(campaign_facts(result))]
    body += campaign_html_section(result, charts, level=2)
    return page(title(result), body)


def campaign_html_section(
    result: CampaignResult, charts: Sequence[ChartRef], *, level: int
) -> list[str]:
    body: list[str] = []
    for table in campaign_tables(result):
        body += [f"<h{level}>{h(table.title)}</h{level}>", *html_table(table)]
    body += [figure(chart.src, chart.alt, chart.title) for chart in charts]
    body += html_notes(result.notes)
    return body


def campaign_json(result: CampaignResult, outputs: dict[str, str]) -> dict[str, Any]:
    payload = result.to_json()
    payload["outputs"] = outputs
    return payload


def campaigns_table(results: Sequence[CampaignResult]) -> Table:
    """One line per measured campaign, for the retention report."""
    columns = (
        Column("campaign"),
        Column("planned", name="as_of"),
        Column("measured to", name="window_end"),
        Column("treated", Kind.COUNT),
        Column("control", Kind.COUNT),
        Column("treated churn", Kind.PERCENT, name="treated_churn_rate"),
        Column("control churn", Kind.PERCENT, name="control_churn_rate"),
        Column("uplift"),
        Column("95% interval", name="ci"),
        Column("p", name="p_value"),
    )
    rows = []
    for r in results:
        c = r.overall
        end = r.window_end.isoformat() + ("" if r.window_complete else " (so far)")
        rows.append(
            (
                r.campaign,
                r.as_of.isoformat(),
                end,
                c.treated,
                c.control,
                _f(c.treated_rate),
                _f(c.control_rate),
                points(c.uplift),
                interval(c.ci_low, c.ci_high),
                p_value(c.p_value),
            )
        )
    caption = (
        "Uplift = control churn rate − treated churn rate among the customers each plan "
        "chose; `churnkit measure NAME` shows the detail."
    )
    return Table("Measured campaigns", columns, tuple(rows), caption=caption)
