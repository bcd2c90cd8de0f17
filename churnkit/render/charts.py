"""Charts for the HTML and Markdown reports, drawn with matplotlib's Agg backend.

matplotlib is imported inside the functions, so commands that draw nothing never pay
for it. Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no global
state) and saved as PNG without a timestamp or software tag, so the same data gives
the same bytes.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from churnkit.report.result import Report
    from churnkit.retention.outcome import CampaignResult
    from churnkit.segment.survival import SurvivalReport

DPI = 100
# Colour-blind-safe colours (Okabe-Ito), one per churn kind.
KIND_COLOURS = {"voluntary": "#E69F00", "involuntary": "#0072B2", "churned": "#D55E00"}
BAR = "#0072B2"
MUTED = "#999999"
MAX_SEGMENTS = 12
LABEL_CHARS = 60


@dataclass(frozen=True)
class Chart:
    """One figure: a file-name-safe key, a title, a text alternative and the PNG bytes."""

    key: str
    title: str
    alt: str
    png: bytes


def report_charts(report: Report) -> list[Chart]:
    """Every chart the report has data for, in reading order."""
    charts = [risk_distribution(report), churn_by_segment(report)]
    if report.drivers.height:
        charts.append(top_drivers(report))
    if report.calibration is not None and report.calibration.height:
        charts.append(calibration(report))
    if report.feature_deciles:
        charts.append(feature_deciles(report))
    charts += [campaign_retention(result) for result in report.campaigns]
    return charts


GROUP_COLOURS = {"treated": "#0072B2", "control": "#E69F00"}


def campaign_retention(result: CampaignResult) -> Chart:
    """Treated vs control: the share not yet churned on each day of the window."""
    curve = result.curve
    fig, ax = _figure(7.5, 3.4)
    lowest = 1.0
    for group in ("treated", "control"):
        values = [100 * float(v) for v in curve[group].to_list() if v is not None and v == v]
        if not values:
            continue
        lowest = min(lowest, min(values) / 100)
        n = result.overall.treated if group == "treated" else result.overall.control
        ax.step(
            curve["day"].to_list()[: len(values)],
            values,
            where="post",
            color=GROUP_COLOURS[group],
            linewidth=2 if group == "treated" else 1.6,
            linestyle="-" if group == "treated" else "--",
            label=f"{group} ({n:,})",
        )
    ax.set_ylim(max(0.0, 100 * lowest - 5), 100.5)
    ax.set_xlim(0, max(result.days, 1))
    ax.set_xlabel(f"days after {result.as_of.isoformat()}", fontsize=9)
    ax.set_ylabel("% not churned", fontsize=9)
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    c = result.overall
    title = f"Campaign {result.campaign}: treated vs control retention"
    alt = (
        f"Share of treated and control customers not yet churned on each of the {result.days} "
        f"days after {result.as_of.isoformat()}; at the end {100 * (1 - c.treated_rate):.1f}% "
        f"of treated and {100 * (1 - c.control_rate):.1f}% of control customers remain."
    )
    return Chart(f"campaign_{result.campaign}", title, alt, _png(fig))


def risk_distribution(report: Report) -> Chart:
    dist = report.risk_distribution
    fig, ax = _figure(7.5, 3.2)
    labels = [f"{lo:.1f}–{hi:.1f}" for lo, hi in zip(dist["low"], dist["high"], strict=True)]
    ax.bar(labels, dist["customers"].to_list(), color=BAR)
    ax.set_xlabel("predicted probability of churn", fontsize=9)
    ax.set_ylabel("customers", fontsize=9)
    _integer_ticks(ax.yaxis)
    ax.tick_params(axis="x", labelsize=8)
    title = "Risk distribution"
    busiest = max(dist["customers"].to_list(), default=0)
    alt = f"Customers by predicted churn probability, in tenths; the fullest bin holds {busiest}."
    return Chart("risk_distribution", title, alt, _png(fig))


def churn_by_segment(report: Report) -> Chart:
    seg = report.by_segment.head(MAX_SEGMENTS)
    kinds = list(report.kinds)
    fig, ax = _figure(7.5, max(2.2, 1.2 + 0.35 * seg.height))
    names = [_short(str(s)) for s in seg["segment"].to_list()][::-1]
    left = [0.0] * seg.height
    for kind in kinds:
        values = [float(v or 0.0) for v in seg[kind].to_list()][::-1]
        ax.barh(names, values, left=left, color=KIND_COLOURS[kind], label=kind)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("expected churners", fontsize=9)
    if seg.height == 0:
        ax.text(0.5, 0.5, "no customers", ha="center", va="center", transform=ax.transAxes)
    ax.legend(
        loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(kinds), fontsize=8, frameon=False
    )
    split = "by segment" if report.binary else "by segment and kind"
    title = f"Expected churners {split}"
    alt = f"Expected churners {split} for the {seg.height} segments with the most value at risk."
    return Chart("churn_by_segment", title, alt, _png(fig))


def top_drivers(report: Report) -> Chart:
    drivers = report.drivers
    fig, ax = _figure(7.5, 0.9 + 0.35 * drivers.height)
    labels = [
        _short(str(d or f)) for f, d in zip(drivers["feature"], drivers["description"], strict=True)
    ][::-1]
    ax.barh(labels, drivers["customers"].to_list()[::-1], color=BAR)
    ax.set_xlabel(f"listed customers (of {report.customers.height}) driven by it", fontsize=9)
    _integer_ticks(ax.xaxis)
    title = "Top drivers among the listed customers"
    alt = "How often each feature is among the top three drivers of a listed customer's risk."
    return Chart("top_drivers", title, alt, _png(fig))


def calibration(report: Report) -> Chart:
    curve = report.calibration
    assert curve is not None
    fig, ax = _figure(4.8, 4.2)
    top = max([1e-9, *curve["predicted"].to_list(), *curve["observed"].to_list()])
    ax.plot([0, top], [0, top], color=MUTED, linestyle="--", linewidth=1, label="perfect")
    ax.plot(
        curve["predicted"].to_list(),
        curve["observed"].to_list(),
        marker="o",
        color=BAR,
        label="model",
    )
    ax.set_xlabel("predicted churn rate (decile mean)", fontsize=9)
    ax.set_ylabel("observed churn rate", fontsize=9)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    title = "Calibration on the validation snapshot"
    alt = "Predicted against observed churn rate by decile of predicted risk."
    return Chart("calibration", title, alt, _png(fig))


def feature_deciles(report: Report) -> Chart:
    items = report.feature_deciles
    cols = 2 if len(items) > 1 else 1
    rows = (len(items) + cols - 1) // cols
    fig = _new_figure(7.5, 3.0 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, item in enumerate(items):
        ax: Axes = axes[i // cols][i % cols]
        dec = item.deciles
        labels = [_range(lo, hi) for lo, hi in zip(dec["low"], dec["high"], strict=True)]
        rates = [100 * float(r or 0.0) for r in dec["churn_rate"].to_list()]
        ax.bar(range(len(labels)), rates, color=BAR)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
        title = item.feature
        if item.description:
            title += "\n" + "\n".join(textwrap.wrap(item.description, 52)[:2])
        ax.set_title(title, fontsize=8)
        ax.set_ylabel("churn %", fontsize=8)
        _tidy(ax)
    for j in range(len(items), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    fig.tight_layout()
    title = "Churn rate by decile of the most important features"
    alt = "For each important feature, the observed churn rate in each tenth of its values."
    return Chart("feature_deciles", title, alt, _png(fig, tight=False))


# --- helpers -----------------------------------------------------------------------------


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.set_facecolor("white")
    return fig


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = _new_figure(width, height)
    ax = fig.add_subplot()
    _tidy(ax)
    return fig, ax


def _tidy(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


def _integer_ticks(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _png(fig: Figure, *, tight: bool = True) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    if tight:
        fig.tight_layout()
    buf = io.BytesIO()
    meta: dict[str, Any] = {"Software": None}
    fig.savefig(buf, format="png", dpi=DPI, metadata=meta)
    return buf.getvalue()


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _range(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "?"
    if low == high:
        return _num(low)
    return f"{_num(low)}–{_num(high)}"


def _num(x: float) -> str:
    if abs(x) >= 10_000:
        return f"{x / 1000:.0f}k"
    if abs(x) >= 1000:
        return f"{x / 1000:.1f}k"
    if x == int(x):
        return f"{int(x)}"
    return f"{x:.2g}"


SURVIVAL_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")


def survival_charts(report: SurvivalReport) -> list[Chart]:
    """A Kaplan-Meier chart with 95% bands per dimension, then the competing risks."""
    titles = {
        "overall": "all customers",
        "cohort": "signup cohort",
        "plan": "plan",
        "segment": "segment",
        "channel": "acquisition channel",
    }
    charts = []
    for dim, groups in report.dimensions.items():
        if not groups:
            continue
        fig, ax = _figure(7.5, 3.6)
        for i, g in enumerate(groups[: len(SURVIVAL_COLOURS)]):
            colour = SURVIVAL_COLOURS[i]
            days = [0, *g.curve.days.tolist()]
            ax.step(
                days,
                [100.0, *(100 * g.curve.survival).tolist()],
                where="post",
                color=colour,
                linewidth=1.6,
                label=f"{_short(g.group)} ({g.customers:,})",
            )
            ax.fill_between(
                days,
                [100.0, *(100 * g.curve.lower).tolist()],
                [100.0, *(100 * g.curve.upper).tolist()],
                step="post",
                color=colour,
                alpha=0.15,
                linewidth=0,
            )
        ax.axhline(50, color=MUTED, linewidth=0.8, linestyle=":")
        ax.set_ylim(0, 101)
        ax.set_xlabel("days since start", fontsize=9)
        ax.set_ylabel("% still customers", fontsize=9)
        ax.legend(loc="lower left", fontsize=7, frameon=False, ncol=2)
        title = f"Retention by {titles.get(dim, dim)}"
        alt = (
            f"Kaplan-Meier share of customers still customers by days since they started, "
            f"by {titles.get(dim, dim)}, with 95% bands; the dotted line marks the median."
        )
        charts.append(Chart(f"survival_{dim}", title, alt, _png(fig)))
    overall = report.dimensions.get("overall") or ()
    if overall:
        g = overall[0]
        fig, ax = _figure(7.5, 3.2)
        days = [0, *g.curve.days.tolist()]
        for name, values in (
            ("voluntary", g.curve.voluntary),
            ("involuntary", g.curve.involuntary),
        ):
            ax.step(
                days,
                [0.0, *(100 * values).tolist()],
                where="post",
                color=KIND_COLOURS[name],
                linewidth=1.8,
                label=name,
            )
        ax.set_xlabel("days since start", fontsize=9)
        ax.set_ylabel("% ended", fontsize=9)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        title = "Voluntary and involuntary ends (competing risks)"
        alt = (
            "Cumulative incidence of voluntary and involuntary ends by days since start "
            "(Aalen-Johansen); with the survival curve they add up to 100%."
        )
        charts.append(Chart("survival_competing_risks", title, alt, _png(fig)))
    return charts
