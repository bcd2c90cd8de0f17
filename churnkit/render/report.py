"""The retention report in every format: terminal, Markdown, HTML, JSON and CSV.

All renderers read one ``Report`` and are pure (no I/O), so golden tests need no
terminal. Charts arrive as ``ChartRef``s (a title, a text alternative and an image
source: a relative file path for Markdown, a ``data:`` URI for HTML), drawn by
``churnkit.charts``. Every value taken from the data is escaped for the format it
lands in: HTML-escaped in HTML; pipes, brackets and angle brackets escaped in
Markdown; spreadsheet formulas neutralised in CSV.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from churnkit.core.io import escape_formulas
from churnkit.core.jsonable import jsonable
from churnkit.core.schema import (
    ACTION,
    CHURN_TYPE,
    CUSTOMER_ID,
    DRIVER_FEATURES,
    DRIVERS,
    P_CHURN,
    P_INVOLUNTARY,
    P_VOLUNTARY,
    VALUE,
    VALUE_AT_RISK,
)
from churnkit.render.charts import Chart
from churnkit.render.common import count, money, pct
from churnkit.report.result import RANK, Report
from churnkit.retention.columns import (
    ACTION_COST,
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
ROUND = 6


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


# --- words shared by every format --------------------------------------------------------


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
    n = report.customers.height
    return f"Top {n} of {count(report.summary.active_customers)} customers by value at risk"


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


def more_chosen(report: Report, shown: int) -> str | None:
    b = report.budget
    if b is None or b.customers <= shown:
        return None
    return f"and {count(b.customers - shown)} more chosen customers (all in --format json)"


def action_cell(row: dict[str, Any]) -> str:
    if row[CONTROL]:
        return CONTROL_LABEL
    return str(row[ACTION]) if row[ACTION] is not None else "—"


def kind_cell(row: dict[str, Any]) -> str:
    return str(row[CHURN_TYPE]) if row[CHURN_TYPE] is not None else "—"


def drivers_text(row: dict[str, Any]) -> str:
    found = [str(row[d]) for d in DRIVERS if row.get(d)]
    return "; ".join(found) if found else "—"


def _chosen_cell(row: dict[str, Any]) -> str:
    return "yes" if row[SELECTED] else ""


def _ratio(x: float | None) -> str:
    return "—" if x is None or x != x else f"{x:,.2f}"


# --- terminal ----------------------------------------------------------------------------


def report_table(report: Report) -> RenderableType:
    """One screen: summary, who to save and why, what to do, what the budget buys."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold", no_wrap=True)
    summary.add_column()
    for key, value in summary_rows(report):
        summary.add_row(key, value)
    parts: list[RenderableType] = [
        Panel(summary, title=title(report), title_align="left"),
        _customers_table(report),
        _plan_table(report),
    ]
    if report.budget is not None:
        parts.append(_budget_table(report))
    parts.extend(Text(f"note: {n}") for n in report.notes)
    return Group(*parts)


def _customers_table(report: Report) -> Table:
    budget = report.budget is not None
    table = _table(listed_title(report))
    table.add_column("customer", no_wrap=True, max_width=12, overflow="ellipsis")
    table.add_column("p churn", justify="right", no_wrap=True)
    if not report.binary:
        table.add_column("kind", no_wrap=True)
    table.add_column("value\nat risk", justify="right", no_wrap=True)
    table.add_column("why: top driver", min_width=14, overflow="fold")
    rows = list(report.customers.iter_rows(named=True))
    action_width = _longest_word((action_cell(r) for r in rows), 24)
    table.add_column("action", min_width=action_width, overflow="fold")
    if budget:
        table.add_column("chosen", no_wrap=True)
    for row in rows:
        cells = [str(row[CUSTOMER_ID]), pct(row[P_CHURN])]
        if not report.binary:
            cells.append(kind_cell(row))
        cells += [money(row[VALUE_AT_RISK]), row[DRIVERS[0]] or "—", action_cell(row)]
        if budget:
            cells.append(_chosen_cell(row))
        table.add_row(*[Text(c) for c in cells])
    if report.customers.height == 0:
        table.caption = "no customers to list"
    return table


def _table(title: str) -> Table:
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        expand=False,
        caption_justify="left",
    )


def _longest_word(cells: Iterable[str], cap: int) -> int:
    return min(cap, max((len(w) for c in cells for w in c.split()), default=1))


def _plan_table(report: Report) -> Table:
    table = _table(plan_title(report))
    table.add_column("action")
    table.add_column("customers", justify="right", no_wrap=True)
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("expected saved value", justify="right", no_wrap=True)
    table.add_column("return per unit spent", justify="right", no_wrap=True)
    for row in report.actions.iter_rows(named=True):
        table.add_row(
            Text(str(row[ACTION])),
            count(row["customers"]),
            money(row["cost"]),
            money(row["expected_saved_value"]),
            _ratio(row[RETURN_PER_UNIT]),
        )
    if report.actions.height == 0:
        table.caption = "no action is expected to pay"
    return table


def _budget_table(report: Report) -> Table:
    b = report.budget
    assert b is not None
    shown = b.chosen.head(CHOSEN_SHOWN)
    table = _table(budget_line(report))
    table.add_column("customer", no_wrap=True, max_width=18, overflow="ellipsis")
    table.add_column("action", max_width=24, overflow="fold")
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("expected saved value", justify="right", no_wrap=True)
    table.add_column("why chosen", ratio=1, overflow="fold")
    for row in shown.iter_rows(named=True):
        table.add_row(
            Text(str(row[CUSTOMER_ID])),
            Text(str(row[ACTION])),
            money(row[ACTION_COST]),
            money(row[EXPECTED_SAVED_VALUE]),
            Text(str(row[SELECTION_REASON] or "")),
        )
    table.caption = more_chosen(report, CHOSEN_SHOWN)
    return table


# --- JSON and CSV ------------------------------------------------------------------------


def customer_columns(report: Report) -> list[str]:
    """The listed customers' columns; a binary model has no voluntary/involuntary ones."""
    drop = {P_VOLUNTARY, P_INVOLUNTARY} if report.binary else set()
    return [c for c in report.customers.columns if c not in drop]


def report_json(report: Report) -> dict[str, Any]:
    s = report.summary
    payload: dict[str, Any] = {
        "as_of": report.as_of.isoformat() if report.as_of else None,
        "model_type": "binary" if report.binary else "multiclass",
        "churn_kinds": list(report.kinds),
    }
    if report.binary:
        payload["note"] = BINARY_NOTE
    payload.update(
        {
            "filters": report.filters,
            "summary": {
                "active_customers": s.active_customers,
                "expected_churners": jsonable(s.expected_churners, digits=ROUND),
                "expected_churners_total": jsonable(s.expected_churners_total, digits=ROUND),
                "value_at_risk": jsonable(s.value_at_risk, digits=ROUND),
                "value_at_risk_by_kind": jsonable(s.value_at_risk_by_kind, digits=ROUND),
                "revenue_at_risk": jsonable(s.revenue_at_risk, digits=ROUND),
                "customers_at_risk": s.customers_at_risk,
                "total_value": jsonable(s.total_value, digits=ROUND),
                "risk_tiers": s.risk_tiers,
            },
            "control_group": {
                "share": report.control.share,
                "customers": report.control.customers,
                "seed": report.control.seed,
            },
            "customers": _records(report.customers.select(customer_columns(report))),
            "actions": _records(report.actions),
            "budget": None,
            "top_drivers": _records(report.drivers),
            "segments": _records(report.by_segment),
            "risk_distribution": _records(report.risk_distribution),
            "model": None,
            "notes": list(report.notes),
        }
    )
    if report.budget is not None:
        b = report.budget
        payload["budget"] = {
            "amount": jsonable(b.amount, digits=ROUND),
            "spent": jsonable(b.spent, digits=ROUND),
            "expected_saved_value": jsonable(b.expected_saved_value, digits=ROUND),
            "customers": b.customers,
            "method": b.method,
            "chosen": _records(b.chosen),
        }
    if report.model is not None:
        m = report.model
        payload["model"] = {
            "name": m.name,
            "mode": m.mode,
            "horizon": m.horizon,
            "trained_as_of": m.trained_as_of,
            "metrics": jsonable(m.metrics, digits=ROUND),
            "calibration": _records(report.calibration) if report.calibration is not None else [],
            "feature_deciles": {
                f.feature: {"description": f.description, "deciles": _records(f.deciles)}
                for f in report.feature_deciles
            },
        }
    return payload


def report_csv(report: Report) -> str:
    """The listed customers, one row each; cells a spreadsheet would run are escaped."""
    frame = report.customers.select(customer_columns(report))
    frame = frame.with_columns(
        pl.col(c).cast(pl.String)
        for c, dtype in frame.schema.items()
        if dtype in (pl.Date, pl.Datetime) or isinstance(dtype, pl.Datetime)
    )
    if DRIVER_FEATURES in frame.columns:
        frame = frame.with_columns(pl.col(DRIVER_FEATURES).list.join("; "))
    frame = frame.with_columns(pl.col(pl.Float64).round(ROUND))
    return escape_formulas(frame).write_csv()


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON objects, serialised by Polars (the chosen list can be long): floats
    rounded, NaN as null, datetimes in ISO 8601."""
    ready = frame.with_columns(
        pl.col(pl.Float64).round(ROUND),
        pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%S%.f"),
        pl.col(pl.Date).dt.strftime("%Y-%m-%d"),
    )
    records: list[dict[str, Any]] = json.loads(ready.write_json())
    return records


# --- Markdown ----------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\|`*\[\]])")


def md(value: Any) -> str:
    """A table cell: pipes, brackets, emphasis and raw HTML cannot escape it."""
    text = "" if value is None else str(value)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str) -> list[str]:
    marks = {"l": "---", "r": "---:"}
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(marks[a] for a in align) + " |",
    ]
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
    return lines


def report_markdown(report: Report, charts: Sequence[ChartRef] = ()) -> str:
    """The report as Markdown; ``charts`` link images (paths relative to the .md file)."""
    out = [f"# {md(title(report))}", ""]
    if report.binary:
        out += [f"> **Note:** {md(BINARY_NOTE)}.", ""]
    out += ["## Summary", ""]
    out += _md_table(["measure", "value"], summary_rows(report), "ll")
    out += ["", f"## {md(listed_title(report))}", ""]
    out += _md_customers(report)
    out += ["", f"## {md(plan_title(report))}", ""]
    out += _md_table(
        ["action", "customers", "cost", "expected saved value", "return per unit spent"],
        (
            [
                str(r[ACTION]),
                count(r["customers"]),
                money(r["cost"]),
                money(r["expected_saved_value"]),
                _ratio(r[RETURN_PER_UNIT]),
            ]
            for r in report.actions.iter_rows(named=True)
        ),
        "lrrrr",
    )
    if report.actions.height == 0:
        out += ["", "No action is expected to pay."]
    if report.budget is not None:
        out += ["", "## Budget", "", md(budget_line(report)), ""]
        out += _md_table(
            ["customer", "action", "cost", "expected saved value", "why chosen"],
            (
                [
                    str(r[CUSTOMER_ID]),
                    str(r[ACTION]),
                    money(r[ACTION_COST]),
                    money(r[EXPECTED_SAVED_VALUE]),
                    str(r[SELECTION_REASON] or ""),
                ]
                for r in report.budget.chosen.head(report.top).iter_rows(named=True)
            ),
            "llrrl",
        )
        more = more_chosen(report, report.top)
        if more:
            out += ["", md(more)]
    if report.by_segment.height:
        header, rows = segment_rows(report)
        out += ["", "## Churn by segment", ""]
        out += _md_table(header, rows, "l" + "r" * (len(header) - 1))
    if report.drivers.height:
        out += ["", "## Top drivers among the listed customers", ""]
        out += _md_table(
            ["feature", "what it measures", "customers"],
            (
                [str(r["feature"]), str(r["description"] or ""), count(r["customers"])]
                for r in report.drivers.iter_rows(named=True)
            ),
            "llr",
        )
    if charts:
        out += ["", "## Charts"]
        for chart in charts:
            out += ["", f"### {md(chart.title)}", "", f"![{md(chart.alt)}]({chart.src})"]
    if report.notes:
        out += [""] + [f"- Note: {md(n)}" for n in report.notes]
    return "\n".join(out) + "\n"


def _md_customers(report: Report) -> list[str]:
    header = ["#", "customer", "p churn"]
    align = "llr"
    if not report.binary:
        header += ["p voluntary", "p involuntary", "kind"]
        align += "rrl"
    header += ["value", "value at risk", "drivers", "action", "cost", "expected saved value"]
    align += "rrllrr"
    budget = report.budget is not None
    if budget:
        header.append("chosen")
        align += "l"
    rows = []
    for r in report.customers.iter_rows(named=True):
        cells = [str(r[RANK]), str(r[CUSTOMER_ID]), pct(r[P_CHURN])]
        if not report.binary:
            cells += [pct(r[P_VOLUNTARY]), pct(r[P_INVOLUNTARY]), kind_cell(r)]
        cells += [
            money(r[VALUE]),
            money(r[VALUE_AT_RISK]),
            drivers_text(r),
            action_cell(r),
            _treated_money(r, ACTION_COST),
            _treated_money(r, EXPECTED_SAVED_VALUE),
        ]
        if budget:
            cells.append(_chosen_cell(r))
        rows.append(cells)
    lines = _md_table(header, rows, align)
    if report.customers.height == 0:
        lines.append("")
        lines.append("No customers to list.")
    return lines


def _treated_money(row: dict[str, Any], column: str) -> str:
    """Cost or saved value of the customer's action; none for the control group."""
    x = row[column]
    return "—" if x is None or row[CONTROL] else money(x)


def segment_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """Churn by segment and kind: the header and the rows (largest value at risk first)."""
    kinds = list(report.kinds)
    header = ["segment", "customers", *[f"expected {k}" for k in kinds], "value at risk"]
    if report.binary:
        header[2] = "expected churners"
    rows = [
        [
            str(r["segment"]),
            count(r["customers"]),
            *[f"{float(r[k] or 0.0):,.1f}" for k in kinds],
            money(r[VALUE_AT_RISK]),
        ]
        for r in report.by_segment.iter_rows(named=True)
    ]
    return header, rows


# --- HTML --------------------------------------------------------------------------------

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; color: #1f2328; background: #f6f8fa; margin: 0; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.25rem; margin: 32px 0 8px; border-bottom: 1px solid #d0d7de;
  padding-bottom: 4px; }
h3 { font-size: 1.05rem; margin: 20px 0 6px; }
.sub { color: #57606a; margin: 0 0 16px; }
.note { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px;
  padding: 8px 12px; margin: 12px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr));
  gap: 12px; margin: 12px 0; }
.card { border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 14px; }
.card .label { color: #57606a; font-size: .85rem; }
.card .value { font-size: 1.35rem; font-weight: 600; }
.card .detail { color: #57606a; font-size: .85rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; margin: 8px 0; }
th, td { padding: 5px 8px; border-bottom: 1px solid #eaeef2; text-align: left;
  vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td.id { max-width: 12rem; overflow-wrap: anywhere; }
td.wide { min-width: 16rem; }
td.action { min-width: 10rem; }
td small { color: #57606a; }
.wrap { overflow-x: auto; }
tbody tr:nth-child(even) { background: #fafbfc; }
tr.control td { color: #6e7781; background: #f3f0ff; }
.tag { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: .8rem;
  white-space: nowrap; }
.tag.control { background: #e0d8ff; color: #3e1f8f; }
.tag.chosen { background: #dafbe1; color: #116329; }
.tag.voluntary { background: #fff1d6; color: #7a4a00; }
.tag.involuntary { background: #dbeafe; color: #0b3d91; }
.tag.churned { background: #ffe2d6; color: #8a2a00; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
dl.facts dt { color: #57606a; }
dl.facts dd { margin: 0; }
figure { margin: 16px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; border-radius: 6px; }
figcaption { color: #57606a; font-size: .85rem; }
footer { color: #6e7781; font-size: .8rem; margin-top: 32px; }
"""


def h(value: Any) -> str:
    """Every data value goes through here before it reaches the page."""
    return html.escape("" if value is None else str(value), quote=True)


def report_html(report: Report, charts: Sequence[ChartRef] = ()) -> str:
    """One self-contained page: inline CSS, charts as ``data:`` URIs, no scripts."""
    body: list[str] = [
        f"<h1>{h(title(report))}</h1>",
        f'<p class="sub">{h(model_line(report))}</p>',
    ]
    if report.binary:
        body.append(f'<p class="note"><strong>Note:</strong> {h(BINARY_NOTE)}.</p>')
    body += _html_summary(report)
    body.append(f"<h2>{h(listed_title(report))}</h2>")
    body += _html_customers(report)
    body.append(f"<h2>{h(plan_title(report))}</h2>")
    body += _html_plan(report)
    if report.budget is not None:
        body += _html_budget(report)
    if report.by_segment.height:
        header, rows = segment_rows(report)
        body.append("<h2>Churn by segment</h2>")
        body += _html_table(
            [(header[0], ""), *[(c, "num") for c in header[1:]]],
            ([h(c) for c in row] for row in rows),
        )
    if report.drivers.height:
        body.append("<h2>Top drivers among the listed customers</h2>")
        body += _html_table(
            [("feature", ""), ("what it measures", ""), ("customers", "num")],
            (
                [h(r["feature"]), h(r["description"] or ""), h(count(r["customers"]))]
                for r in report.drivers.iter_rows(named=True)
            ),
        )
    if charts:
        body.append("<h2>Charts</h2>")
        for chart in charts:
            body.append(
                f'<figure><h3>{h(chart.title)}</h3><img src="{h(chart.src)}" alt="{h(chart.alt)}">'
                f"<figcaption>{h(chart.alt)}</figcaption></figure>"
            )
    for note in report.notes:
        body.append(f'<p class="note">{h(note)}</p>')
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">\n"
        f"<title>{h(title(report))}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def _html_summary(report: Report) -> list[str]:
    s = report.summary
    cards = [
        ("active customers", count(s.active_customers), ""),
        ("expected churners", f"{s.expected_churners_total:,.1f}", _split_text(report, "n")),
        ("value at risk", money(s.value_at_risk), _split_text(report, "v")),
        (
            "revenue at risk",
            money(s.revenue_at_risk),
            at_risk_text(report),
        ),
    ]
    out = ['<section class="cards">']
    for label, value, detail in cards:
        out.append(
            f'<div class="card"><div class="label">{h(label)}</div>'
            f'<div class="value">{h(value)}</div><div class="detail">{h(detail)}</div></div>'
        )
    out.append("</section>")
    shown = {c[0] for c in cards} | {"model"}  # the model line is the page's subtitle
    facts = [r for r in summary_rows(report) if r[0] not in shown]
    out.append('<dl class="facts">')
    out += [f"<dt>{h(k)}</dt><dd>{h(v)}</dd>" for k, v in facts]
    out.append("</dl>")
    return out


def _split_text(report: Report, what: str) -> str:
    if report.binary:
        return "binary model: no split by kind"
    s = report.summary
    if what == "n":
        return " · ".join(f"{k} {v:,.1f}" for k, v in s.expected_churners.items())
    return " · ".join(f"{k} {money(v)}" for k, v in s.value_at_risk_by_kind.items())


def _html_table(
    header: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[str]],
    row_classes: Sequence[str] | None = None,
) -> list[str]:
    """``rows`` hold already-escaped HTML; ``header`` is (label, css class)."""
    out = ['<div class="wrap"><table>', "<thead><tr>"]
    out += [
        f'<th class="{cls}">{h(label)}</th>' if cls else f"<th>{h(label)}</th>"
        for label, cls in header
    ]
    out += ["</tr></thead>", "<tbody>"]
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes else ""
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        for (_, col_cls), cell in zip(header, row, strict=True):
            out.append(f'<td class="{col_cls}">{cell}</td>' if col_cls else f"<td>{cell}</td>")
        out.append("</tr>")
    out += ["</tbody>", "</table></div>"]
    return out


def _tag(text: str, cls: str) -> str:
    return f'<span class="tag {h(cls)}">{h(text)}</span>'


def _html_customers(report: Report) -> list[str]:
    header = [("#", "num"), ("customer", "id"), ("p churn", "num")]
    if not report.binary:
        header.append(("kind", ""))
    header += [
        ("value", "num"),
        ("value at risk", "num"),
        ("why: drivers", "wide"),
        ("action", "action"),
        ("cost", "num"),
        ("expected saved value", "num"),
    ]
    budget = report.budget is not None
    if budget:
        header.append(("chosen", ""))
    rows, classes = [], []
    for r in report.customers.iter_rows(named=True):
        kind = kind_cell(r)
        cells = [h(r[RANK]), h(r[CUSTOMER_ID]), h(pct(r[P_CHURN]))]
        if not report.binary:
            kind_html = _tag(kind, kind) if kind in report.kinds else h(kind)
            cells.append(
                f"{kind_html}<br><small>voluntary&nbsp;{h(pct(r[P_VOLUNTARY]))}<br>"
                f"involuntary&nbsp;{h(pct(r[P_INVOLUNTARY]))}</small>"
            )
        action = _tag(CONTROL_LABEL, "control") if r[CONTROL] else h(action_cell(r))
        reason = r.get("action_reason")
        if reason and not r[CONTROL]:
            action += f"<br><small>{h(reason)}</small>"
        cells += [
            h(money(r[VALUE])),
            h(money(r[VALUE_AT_RISK])),
            "<br>".join(h(r[d]) for d in DRIVERS if r.get(d)) or "—",
            action,
            h(_treated_money(r, ACTION_COST)),
            h(_treated_money(r, EXPECTED_SAVED_VALUE)),
        ]
        if budget:
            cells.append(_tag("chosen", "chosen") if r[SELECTED] else "")
        rows.append(cells)
        classes.append("control" if r[CONTROL] else "")
    if not rows:
        return ["<p>No customers to list.</p>"]
    return _html_table(header, rows, classes)


def _html_plan(report: Report) -> list[str]:
    if report.actions.height == 0:
        return ["<p>No action is expected to pay.</p>"]
    return _html_table(
        [
            ("action", ""),
            ("customers", "num"),
            ("cost", "num"),
            ("expected saved value", "num"),
            ("return per unit spent", "num"),
        ],
        (
            [
                h(r[ACTION]),
                h(count(r["customers"])),
                h(money(r["cost"])),
                h(money(r["expected_saved_value"])),
                h(_ratio(r[RETURN_PER_UNIT])),
            ]
            for r in report.actions.iter_rows(named=True)
        ),
    )


def _html_budget(report: Report) -> list[str]:
    b = report.budget
    assert b is not None
    out = ["<h2>Budget</h2>", f"<p>{h(budget_line(report))}</p>"]
    if b.chosen.height == 0:
        return [*out, "<p>No customer fits in the budget.</p>"]
    return (
        out
        + _html_table(
            [
                ("customer", ""),
                ("action", ""),
                ("cost", "num"),
                ("expected saved value", "num"),
                ("why chosen", ""),
            ],
            (
                [
                    h(r[CUSTOMER_ID]),
                    h(r[ACTION]),
                    h(money(r[ACTION_COST])),
                    h(money(r[EXPECTED_SAVED_VALUE])),
                    h(r[SELECTION_REASON] or ""),
                ]
                for r in b.chosen.head(report.top).iter_rows(named=True)
            ),
        )
        + [f"<p>{h(more)}</p>" for more in [more_chosen(report, report.top)] if more]
    )
