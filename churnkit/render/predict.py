"""The predict summary: who was scored, how many are expected to leave and how, the
money at risk, and the customers most worth a look."""

from __future__ import annotations

from pathlib import Path

from rich.console import Group, RenderableType
from rich.text import Text

from churnkit.core.schema import CHURN_TYPE, CUSTOMER_ID, P_CHURN, VALUE_AT_RISK
from churnkit.predict.pipeline import Predictions
from churnkit.render.common import count, kv_table, money, pct
from churnkit.render.formats import Column, Kind, Table
from churnkit.render.terminal import fitted_table, whole

TOP = 10
KIND = {
    "multiclass": "multiclass: retained / voluntary / involuntary",
    "binary": "binary: retained / churned",
}


def predict_summary(result: Predictions, path: Path | None, *, top: int = TOP) -> RenderableType:
    churners = [
        (f"  {kind}", f"{value:,.1f}") for kind, value in sorted(result.expected_churners.items())
    ]
    total = sum(result.expected_churners.values())
    facts = [
        ("type", KIND[result.mode]),
        ("as of", result.as_of.strftime("%Y-%m-%d")),
        ("horizon", f"churn within {result.horizon} days"),
        ("active customers", count(result.active_customers)),
        ("expected churners", f"{total:,.1f}"),
        *churners,
        ("risk tiers", ""),
        *[(_tier(tier, result.risk_tiers), count(n)) for tier, n in result.tier_counts.items()],
        ("value at risk", money(result.value_at_risk)),
        ("  value measure", result.value_measure.replace("_", " ")),
        ("customers with drivers", f"{count(result.with_drivers)}"),
    ]
    parts: list[RenderableType] = [kv_table(f"Predictions of model {result.model_name!r}", facts)]
    if result.mode == "binary":
        parts.append(Text(result.mode_note[:1].upper() + result.mode_note[1:] + "."))
    if result.with_drivers < result.active_customers:
        parts.append(
            Text(
                f"Drivers are computed for {result.drivers_for}; the other "
                f"{count(result.active_customers - result.with_drivers)} customers have "
                "empty drivers (name one with --explain ID, raise predict.drivers_top_n, "
                "or pass --drivers all)."
            )
        )
    if path is not None:
        parts.append(Text(f"Written to {path} (every customer; below: the top {top})"))
    parts.append(_top_table(result, top))
    parts += [Text(f"note: {note}") for note in result.notes]
    return Group(*parts)


def _tier(name: str, thresholds: dict[str, float]) -> str:
    if name in thresholds:
        return f"  {name} (p churn >= {pct(thresholds[name], 0)})"
    return f"  {name}"


def _top_table(result: Predictions, top: int) -> RenderableType:
    """The top customers: ids whole, the main driver folded to the width left."""
    shown = result.top(top)
    ids = [str(c) for c in shown[CUSTOMER_ID].to_list()]
    columns = (
        whole("customer", CUSTOMER_ID, ids),
        Column("p churn", Kind.PERCENT, name=P_CHURN),
        Column("churn type", name=CHURN_TYPE, wrap=False),
        Column("value at risk", Kind.MONEY, name=VALUE_AT_RISK),
        Column("main driver", name="driver_1", min_width=16, overflow="fold", ratio=1),
    )
    rows = tuple(
        (customer, p, str(kind), at_risk, driver if driver is not None else "—")
        for customer, p, kind, at_risk, driver in zip(
            ids,
            *(shown[c].to_list() for c in (P_CHURN, CHURN_TYPE, VALUE_AT_RISK, "driver_1")),
            strict=True,
        )
    )
    table = Table(f"Top {len(rows)} by value at risk", columns, rows)
    return fitted_table(table, drop=(P_CHURN, CHURN_TYPE))
