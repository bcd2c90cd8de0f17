"""What every format of the retention report shares: its sentences, its summary and
the tables that look the same everywhere (action plan, budget, segments, drivers).

The tables are ``churnkit.render.formats.Table`` objects, drawn by the terminal, Markdown
and HTML renderers; the listed customers differ per format (the terminal shows fewer
columns) and are built beside each format's document.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl

from churnkit.core.schema import ACTION, CHURN_TYPE, CUSTOMER_ID, DRIVERS, VALUE_AT_RISK
from churnkit.render.charts import Chart
from churnkit.render.common import count, money, pct
from churnkit.render.formats import Column, Facts, Kind, Table
from churnkit.report.result import Report
from churnkit.retention.columns import (
    ACTION_COST,
    ACTION_DESCRIPTION,
    CONTROL,
    EXPECTED_SAVED_VALUE,
    RETURN_PER_UNIT,
    SELECTED,
    SELECTION_REASON,
)

CONTROL_LABEL = "control: no action"
BINARY_NOTE = "binary model (churned vs retained): no split into voluntary and involuntary churn"
# Chosen customers listed under the budget on the terminal (Markdown/HTML: --top).
CHOSEN_SHOWN = 10
METHODS = {
    "all_fit": "every action worth doing fits in the budget",
    "exact": "the best possible choice, proven exact",
    "greedy": "chosen by return per unit spent",
    "unlimited": "no budget limit",
}
NO_CUSTOMERS = "No customers to list."
# Where the chosen customers a table leaves out are.
MORE_CHOSEN = "every one is in --format csv, json, markdown and html"
IN_THE_LIST = "every one is in the plan's list at the end"
# An action column is at least as wide as its longest word, up to this.
WORD_WIDTH = 24


@dataclass(frozen=True)
class ChartRef:
    """A chart as a report links it: where the image is and what it shows."""

    key: str
    title: str
    alt: str
    src: str


def embedded(charts: Iterable[Chart]) -> list[ChartRef]:
    """Charts as ``data:`` URIs, for a self-contained HTML file."""
    return [
        ChartRef(c.key, c.title, c.alt, "data:image/png;base64," + base64.b64encode(c.png).decode())
        for c in charts
    ]


# --- words ------------------------------------------------------------------------------


def title(report: Report) -> str:
    when = f" as of {report.as_of.isoformat()}" if report.as_of else ""
    return f"Retention report{when}"


def model_line(report: Report) -> str:
    if report.binary:
        kind = BINARY_NOTE
    else:
        kind = "multiclass model: voluntary and involuntary churn told apart"
    model = report.model
    if model is None:
        return kind
    parts = [kind]
    if model.name:
        parts.insert(0, f"model {model.name!r}")
    if model.horizon:
        parts.append(f"p churn = probability of churning within {model.horizon} days")
    auc = model.metrics.get("auc")
    if auc is not None:
        parts.append(f"validation AUC {auc:.3f}")
    return "; ".join(parts)


def at_risk_text(report: Report) -> str:
    n = report.summary.customers_at_risk
    return f"the whole value of the {count(n)} customers in a risk tier"


def control_line(report: Report) -> str:
    c = report.control
    if c.share <= 0:
        return "none (pass --control-share to hold out customers and measure the actions)"
    return (
        f"{count(c.customers)} customers ({pct(c.share, 0)}, seed {c.seed}) get no action, "
        "so their churn measures what the actions save; marked 'control'"
    )


def churners_line(report: Report) -> str:
    s = report.summary
    total = f"{s.expected_churners_total:,.1f}"
    if report.binary:
        return total
    split = " · ".join(f"{k} {v:,.1f}" for k, v in s.expected_churners.items())
    return f"{total} ({split})"


def value_at_risk_line(report: Report) -> str:
    s = report.summary
    total = money(s.value_at_risk)
    if report.binary:
        return total
    split = " · ".join(f"{k} {money(v)}" for k, v in s.value_at_risk_by_kind.items())
    return f"{total} ({split})"


def summary_rows(report: Report) -> list[tuple[str, str]]:
    s = report.summary
    rows = [
        ("active customers", count(s.active_customers)),
        ("expected churners", churners_line(report)),
        ("value at risk", value_at_risk_line(report)),
        (
            "revenue at risk",
            f"{money(s.revenue_at_risk)} ({at_risk_text(report)})",
        ),
        ("total value", money(s.total_value)),
    ]
    if s.risk_tiers:
        rows.append(("risk tiers", " · ".join(f"{k} {count(v)}" for k, v in s.risk_tiers.items())))
    rows.append(("model", model_line(report)))
    if report.estimate is not None:
        rows.append(("performance", report.estimate.statement))
    rows.append(("control group", control_line(report)))
    if report.filters:
        rows.append(("filters", ", ".join(f"{k}={v}" for k, v in report.filters.items())))
    start = start_line(report)
    if start:
        rows.append(("start with", start))
    return rows


def start_line(report: Report) -> str | None:
    """The single most valuable customer to act on, in one sentence."""
    treatable = report.customers.filter(pl.col(SELECTED) & ~pl.col(CONTROL))
    if treatable.height == 0:
        return None
    row = treatable.row(0, named=True)
    why = row[DRIVERS[0]] or "highest value at risk"
    return f"{row[CUSTOMER_ID]} — value at risk {money(row[VALUE_AT_RISK])}, {why} → {row[ACTION]}"


def listed_title(report: Report) -> str:
    """The terminal's list: the top customers."""
    n = report.customers.height
    return f"Top {n} of {count(report.summary.active_customers)} customers by value at risk"


def file_title(report: Report) -> str:
    """A file's list: with a budget the whole plan, else the top customers."""
    if report.plan_customers is None:
        return listed_title(report)
    return listed_note(report)[:1].upper() + listed_note(report)[1:]


def listed_note(report: Report) -> str:
    """Which customers a file lists, in words."""
    plan = report.plan_customers
    if plan is None:
        n = report.customers.height
        return f"the top {count(n)} of {count(report.summary.active_customers)} by value at risk"
    held = int(plan.get_column(CONTROL).fill_null(False).sum())
    return (
        f"the whole plan by value at risk: {count(plan.height - held)} customers to act on "
        f"and {count(held)} control customers held out (marked control)"
    )


def plan_title(report: Report) -> str:
    if report.budget is not None:
        return "Action plan within the budget"
    return "Action plan (every customer whose action is expected to pay, control excluded)"


def budget_line(report: Report) -> str:
    b = report.budget
    assert b is not None
    how = METHODS.get(b.method, b.method)
    if b.method == "greedy" and b.max_shortfall > 0:
        how += f", at most {money(b.max_shortfall)} short of the best possible"
    return (
        f"A budget of {money(b.amount)} buys actions for {count(b.customers)} customers: "
        f"spent {money(b.spent)}, expected saved value {money(b.expected_saved_value)} "
        f"({how})."
    )


def more_chosen(report: Report, shown: int, *, where: str = MORE_CHOSEN) -> str | None:
    b = report.budget
    if b is None or b.customers <= shown:
        return None
    return f"and {count(b.customers - shown)} more chosen customers ({where})"


def action_cell(row: dict[str, Any]) -> str:
    if row[CONTROL]:
        return CONTROL_LABEL
    return str(row[ACTION]) if row[ACTION] is not None else "—"


def kind_cell(row: dict[str, Any]) -> str:
    return str(row[CHURN_TYPE]) if row[CHURN_TYPE] is not None else "—"


def drivers_text(row: dict[str, Any]) -> str:
    found = [str(row[d]) for d in DRIVERS if row.get(d)]
    return "; ".join(found) if found else "—"


def chosen_cell(row: dict[str, Any]) -> str:
    return "yes" if row[SELECTED] else ""


def treated(row: dict[str, Any], column: str) -> float | None:
    """Cost or saved value of the customer's action; none for the control group."""
    return None if row[CONTROL] else row[column]


# --- tables -----------------------------------------------------------------------------


def summary_facts(report: Report) -> Facts:
    return Facts(title(report), tuple(summary_rows(report)))


def plan_table(report: Report) -> Table:
    """The action plan: customers, cost and expected saved value per action."""
    rows = report.actions.select(
        pl.col(ACTION).cast(pl.String), "customers", "cost", "expected_saved_value", RETURN_PER_UNIT
    ).rows()
    return Table(
        plan_title(report),
        (
            Column("action", name=ACTION, wrap=False),
            Column("customers", Kind.COUNT, name="customers"),
            Column("cost", Kind.MONEY, name="cost"),
            Column("expected saved value", Kind.MONEY, name="expected_saved_value"),
            Column("return per unit spent", Kind.NUMBER, name=RETURN_PER_UNIT),
        ),
        tuple(rows),
        empty="No action is expected to pay.",
    )


def budget_table(report: Report, shown: int, *, where: str = MORE_CHOSEN) -> Table:
    """The best ``shown`` of the customers the budget buys, and why each is in."""
    b = report.budget
    assert b is not None
    rows = (
        b.chosen.head(shown)
        .select(
            pl.col(CUSTOMER_ID, ACTION).cast(pl.String),
            ACTION_COST,
            EXPECTED_SAVED_VALUE,
            pl.col(SELECTION_REASON).fill_null(""),
        )
        .rows()
    )
    return Table(
        budget_line(report),
        (
            # Shown whole, never cut: ids are emails and UUIDs.
            Column("customer", name=CUSTOMER_ID, wrap=False, min_width=_widest(rows, 0)),
            Column("action", name=ACTION, max_width=24, overflow="fold"),
            Column("cost", Kind.MONEY, name=ACTION_COST),
            Column("expected saved value", Kind.MONEY, name=EXPECTED_SAVED_VALUE),
            Column("why chosen", name=SELECTION_REASON, ratio=1, overflow="fold"),
        ),
        tuple(rows),
        caption=more_chosen(report, shown, where=where),
        empty="No customer fits in the budget.",
    )


def _widest(rows: list[tuple[Any, ...]], at: int) -> int:
    return max((len(str(r[at])) for r in rows), default=1)


def what_to_do(listed: pl.DataFrame) -> Table:
    """Each action the ``listed`` customers get, once, with what the team should do
    (control customers get none)."""
    treated = listed.filter(~pl.col(CONTROL).fill_null(False) & pl.col(ACTION).is_not_null())
    actions = treated.select(
        pl.col(ACTION).cast(pl.String), pl.col(ACTION_DESCRIPTION).cast(pl.String).fill_null("—")
    ).unique(ACTION, keep="first", maintain_order=True)
    width = min(WORD_WIDTH, max((len(w) for a in actions[ACTION] for w in a.split()), default=1))
    return Table(
        "What to do",
        (
            Column("action", name=ACTION, min_width=width, overflow="fold"),
            Column("what to do", name=ACTION_DESCRIPTION, overflow="fold", ratio=1),
        ),
        tuple(actions.rows()),
    )


def segment_table(report: Report) -> Table:
    """Churn by segment and kind (largest value at risk first)."""
    kinds = list(report.kinds)
    expected = [
        Column(
            "expected churners" if report.binary else f"expected {k}", Kind.NUMBER, name=k, digits=1
        )
        for k in kinds
    ]
    rows = report.by_segment.select(
        pl.col("segment").cast(pl.String),
        "customers",
        *[pl.col(k).cast(pl.Float64).fill_null(0.0) for k in kinds],
        VALUE_AT_RISK,
    ).rows()
    return Table(
        "Churn by segment",
        (
            Column("segment", name="segment"),
            Column("customers", Kind.COUNT, name="customers"),
            *expected,
            Column("value at risk", Kind.MONEY, name=VALUE_AT_RISK),
        ),
        tuple(rows),
    )


def drivers_table(report: Report) -> Table:
    """How often each feature drives the listed customers' risk."""
    rows = report.drivers.select(
        pl.col("feature").cast(pl.String), pl.col("description").fill_null(""), "customers"
    ).rows()
    return Table(
        "Top drivers among the listed customers",
        (
            Column("feature", name="feature"),
            Column("what it measures", name="description"),
            Column("customers", Kind.COUNT, name="customers"),
        ),
        tuple(rows),
    )


def quadrant_table(report: Report) -> Table:
    """Value at risk per quadrant of value × cost-to-serve, with its strategy."""
    from churnkit.segment.value_matrix import QUADRANT_LABELS

    assert report.by_quadrant is not None
    columns = (
        Column("value × cost-to-serve", name="value_cost_quadrant"),
        Column("customers", Kind.COUNT),
        Column("expected churners", Kind.NUMBER, name="expected_churners", digits=1),
        Column("value at risk", Kind.MONEY, name=VALUE_AT_RISK),
        Column("strategy", name="quadrant_strategy"),
    )
    rows = tuple(
        (
            QUADRANT_LABELS.get(r["value_cost_quadrant"], r["value_cost_quadrant"]),
            r["customers"],
            r["expected_churners"],
            r[VALUE_AT_RISK],
            r["quadrant_strategy"],
        )
        for r in report.by_quadrant.iter_rows(named=True)
    )
    caption = "Quadrants from the last `churnkit segment` run (value and cost-to-serve medians)."
    return Table("Value at risk by value × cost-to-serve", columns, rows, caption=caption)
