"""``churnkit train`` and ``churnkit evaluate``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import typer

from churnkit.cli import _options, _shell, app
from churnkit.cli._options import AsOf, JsonOut, ModelName
from churnkit.core.io import scan_events, scan_relations
from churnkit.model import store
from churnkit.model.training import train
from churnkit.quality.evaluate import evaluate, parse_gates
from churnkit.render.training import gate_summary, train_summary


@app.command("train")
@_shell.guarded
def train_command(
    as_of: AsOf = None,
    horizon: Annotated[
        int | None, typer.Option(min=1, help="Churn window in days [labels.horizon].")
    ] = None,
    model: ModelName = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Save the model even when the data cannot support it (marked weak)."
        ),
    ] = False,
    json_out: JsonOut = False,
) -> None:
    """Train a churn model on leakage-free snapshots and print its validation metrics.

    Only events up to --as-of are read. The model tells voluntary churn (cancels,
    lapses) from involuntary churn (failed payments); with no failed payments in the
    data it is binary (churned vs retained). The business model decides who is scored:
    the active customers of a subscription business, every past buyer of a shop
    (labels.population). The model is compared with a naive and a BG/NBD baseline;
    with too few churners, or no better than the naive ranking, it is refused (exit 3)
    unless --force.

    \b
    Example:
        churnkit train --horizon 90
        churnkit train --as-of 2026-06-30 --model backtest
    """
    state = _shell.STATE
    if model is not None:
        store.check_name(model)
    overrides: dict[str, object] = {}
    if horizon is not None:
        overrides["labels"] = {"horizon": horizon}
    settings = state.settings(overrides)
    workspace = state.workspace_of(settings)
    events = scan_events(workspace)
    with state.step("training"), workspace.lock():
        result = train(
            events,
            settings=settings,
            workspace=workspace,
            relations=scan_relations(workspace),
            as_of=_options.day(as_of),
            model_name=model,
            force=force,
        )
    if json_out:
        state.emit_json(result.to_json())
    elif not state.quiet:
        state.out.print(train_summary(result))


class EvaluateMode(StrEnum):
    AUTO = "auto"
    VALIDATION = "validation"
    BACKTEST = "backtest"


@app.command("evaluate")
@_shell.guarded
def evaluate_command(
    as_of: Annotated[
        datetime | None,
        typer.Option(
            help="Back-test: past date whose outcomes are known [default: the latest such "
            "date]. Validation: date of the population checked [default: the last day].",
            formats=_options.DATE_FORMATS,
        ),
    ] = None,
    mode: Annotated[
        EvaluateMode,
        typer.Option(
            help="backtest (a past date with known outcomes), validation (the model's "
            "out-of-time validation and today's drift) or auto (backtest when possible)."
        ),
    ] = EvaluateMode.AUTO,
    model: ModelName = None,
    fail_under: Annotated[
        list[str] | None,
        typer.Option(help="Minimum for a metric, e.g. auc=0.75 (repeatable)."),
    ] = None,
    fail_over: Annotated[
        list[str] | None,
        typer.Option(help="Maximum for a metric, e.g. brier=0.1 (repeatable)."),
    ] = None,
    max_drift: Annotated[
        list[str] | None,
        typer.Option(
            help="Maximum drift: psi (any one feature) or psi_weighted (weighted by "
            "importance), e.g. psi=0.25."
        ),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Check a model against the quality gates (exit 1 when one fails).

    Right after training (no later date with known outcomes yet) the gates apply to the
    model's out-of-time validation, and today's customers are checked for drift and
    for the estimated AUC (no outcomes needed). When a date at or after the model's
    --as-of has known outcomes, the model is back-tested there. Gates come from
    `quality_gates` in the config; flags override them. With --json every outcome is
    one JSON object with `passed`, `exit_code` and `reason`.

    \b
    Example:
        churnkit train
        churnkit evaluate --fail-under auc=0.75 --max-drift psi=0.25 --json > gate.json
        churnkit train --as-of 2026-06-30 --model backtest
        churnkit evaluate --model backtest --mode backtest
    """
    state = _shell.STATE
    if model is not None:
        store.check_name(model)
    settings = state.settings()
    gates = {
        **parse_gates(
            _shell.parse_pairs(fail_under, flag="--fail-under"),
            flag="--fail-under",
            direction="min",
        ),
        **parse_gates(
            _shell.parse_pairs(fail_over, flag="--fail-over"), flag="--fail-over", direction="max"
        ),
        **parse_gates(
            _shell.parse_pairs(max_drift, flag="--max-drift"), flag="--max-drift", direction="max"
        ),
    }
    workspace = state.workspace_of(settings)
    with state.step("evaluating"):
        report = evaluate(
            scan_events(workspace),
            settings=settings,
            model_dir=store.model_dir(workspace, model or settings.train.model),
            relations=scan_relations(workspace),
            as_of=_options.day(as_of),
            gates=gates,
            mode=mode.value,
        )
    if json_out:
        state.emit_json(report.to_json())
    elif not state.quiet:
        state.out.print(gate_summary(report))
    _shell.exit_with(report.exit_code)
