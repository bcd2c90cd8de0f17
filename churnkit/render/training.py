"""The training and back-test tables: the model against a naive baseline, gates."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table

from churnkit.model.training import OUT_OF_TIME, TrainResult
from churnkit.quality.evaluate import GateReport
from churnkit.render.common import count, kv_table, money, num

# (key, label, higher is better)
HEADLINE = (
    ("auc", "ROC AUC (churn vs retained)", True),
    ("pr_auc", "PR AUC", True),
    ("lift_top_decile", "lift at top decile", True),
    ("capture_top_decile", "capture at top decile", True),
    ("brier", "Brier score", False),
    ("log_loss", "log loss", False),
    ("auc_voluntary", "AUC voluntary (one vs rest)", True),
    ("auc_involuntary", "AUC involuntary (one vs rest)", True),
    ("auc_churned", "AUC churned (one vs rest)", True),
    ("auc_involuntary_vs_voluntary", "AUC involuntary vs voluntary, among churners", True),
)


def metrics_table(
    title: str,
    model: dict[str, float],
    baseline: dict[str, float] | None = None,
    customer_base: dict[str, float] | None = None,
) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("model", justify="right")
    if baseline is not None:
        table.add_column("naive baseline", justify="right")
    if customer_base:
        table.add_column("BG/NBD baseline", justify="right")
    for key, label, _ in HEADLINE:
        if key not in model:
            continue
        row = [label, num(model.get(key))]
        if baseline is not None:
            row.append(num(baseline.get(key)))
        if customer_base:
            row.append(num(customer_base.get(key)))
        table.add_row(*row)
    return table


def train_summary(result: TrainResult) -> RenderableType:
    kind = (
        "multiclass: retained / voluntary / involuntary"
        if result.mode == "multiclass"
        else "binary: retained / churned"
    )
    snapshots = Table(
        title="Snapshots (customers in the population and what happened next)", title_justify="left"
    )
    for col in ("cutoff", "customers", *result.classes):
        snapshots.add_column(col, justify="left" if col == "cutoff" else "right")
    for cutoff, counts in result.snapshot_counts.items():
        snapshots.add_row(
            cutoff, count(counts["customers"]), *[count(counts.get(c, 0)) for c in result.classes]
        )
    validated = (
        f"the latest snapshot ({result.cutoffs[-1]:%Y-%m-%d}), out of time"
        if result.validation == OUT_OF_TIME
        else f"a customer-hash split of the only snapshot ({result.cutoffs[-1]:%Y-%m-%d})"
    )
    population = (
        "every customer who has bought and not ended, lapsed ones included"
        if result.population == "all"
        else "customers active at each cutoff"
    )
    facts = kv_table(
        f"Model {result.model_name!r}",
        [
            ("type", kind),
            ("business model", result.business_model.replace("_", "-")),
            ("population", population),
            ("customers scored", _scored(result)),
            ("as of", result.as_of.strftime("%Y-%m-%d")),
            ("horizon", f"{result.horizon} days"),
            ("validated on", validated),
            ("beats baselines", "yes" if result.beats_baselines else "NO"),
            ("calibration error", f"{num(result.calibration_error)} (expected, over deciles)"),
            ("boosting rounds", str(result.best_iteration)),
            ("features", str(len(result.features))),
            *[("sampled", note) for note in result.sampling],
            *([("WEAK", "; ".join(result.weak_reasons))] if result.weak else []),
            ("saved to", str(result.model_dir)),
        ],
    )
    note = (
        f"Business model {result.business_evidence}.\n"
        "Naive baseline: customers ranked by days since their last purchase; involuntary "
        "called for customers with failed payments; Brier and log loss of predicting the "
        "training churn rate for everyone."
    )
    if result.customer_base_baseline:
        note += (
            " BG/NBD baseline: customers ranked by the customer-base model's probability of "
            "no purchase in the horizon."
        )
    return Group(
        facts,
        snapshots,
        metrics_table(
            "Validation metrics", result.metrics, result.baseline, result.customer_base_baseline
        ),
        note,
    )


def _scored(result: TrainResult) -> str:
    if not result.buyers:
        return "n/a (no purchases)"
    return (
        f"{result.scored_share:.0%} of the {count(result.buyers)} customers who had bought "
        f"by the latest cutoff"
    )


def gate_summary(report: GateReport) -> RenderableType:
    """The evaluation: what was checked, the metrics, the estimate, drift and the gates."""
    gates = Table(title="Quality gates", title_justify="left")
    for col in ("metric", "value", "gate", "result"):
        gates.add_column(col, justify="left" if col in ("metric", "result") else "right")
    for check in report.checks:
        sign = ">=" if check.direction == "min" else "<="
        gates.add_row(
            check.metric,
            num(check.value),
            f"{sign} {check.threshold:g}",
            "pass" if check.passed else "FAIL",
        )
    backtest = report.mode == "backtest"
    trained = f"{report.trained_as_of:%Y-%m-%d}" if report.trained_as_of else "unknown"
    rows = [
        ("mode", "backtest" if backtest else "validation"),
        ("trained as of", trained),
        ("as of", report.as_of.strftime("%Y-%m-%d")),
        ("horizon", f"{report.horizon} days"),
        ("active customers", count(report.customers)),
        *[(f"  {k} churners", count(v)) for k, v in sorted(report.churners.items())],
    ]
    if "expected_profit" in report.profit:
        rows.append(
            (
                "expected profit at the best cut-off",
                f"{money(report.profit['expected_profit'])} "
                f"(contact the top {report.profit['best_share']:.0%})",
            )
        )
    title = "Back-test" if backtest else "Validation check"
    facts = kv_table(f"{title} of model {report.model!r}", rows)
    what = (
        "Scored at a past date and compared with what happened next."
        if backtest
        else "The gates apply to the model's out-of-time validation; today's customers "
        "are checked for drift and for the estimated performance."
    )
    lines = [
        what,
        f"Performance estimate: {report.estimate.statement}.",
        f"Drift: {_drift_line(report)}.",
    ]
    measured = "Metrics" if backtest else "Validation metrics (from the model card)"
    drift = Table(title="Largest feature drift", title_justify="left")
    for col in ("feature", "PSI", "importance", "weighted"):
        drift.add_column(col, justify="left" if col == "feature" else "right")
    for feature, psi, importance, weighted, _ in report.drift.head(5).iter_rows():
        drift.add_row(feature, num(psi), f"{importance:.1%}", num(weighted))
    verdict = f"{'PASSED' if report.passed else 'FAILED'}: {report.reason}"
    parts: list[RenderableType] = [facts, *lines, metrics_table(measured, report.metrics)]
    parts += [drift, gates]
    parts += [f"note: {n}" for n in report.notes]
    return Group(*parts, verdict)


def _drift_line(report: GateReport) -> str:
    return (
        f"PSI weighted by importance {num(report.psi_weighted)}, "
        f"largest of one feature {num(report.psi_max)}"
    )
