"""``churnkit predict``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from churnkit.cli import _options, _shell, app
from churnkit.cli._options import AsOf, JsonOut, ModelName
from churnkit.core.io import scan_events, scan_relations
from churnkit.model import store
from churnkit.predict.pipeline import check_output_path, predict, read_segments, save_predictions
from churnkit.render.predict import TOP, predict_summary


class DriversChoice(StrEnum):
    TOP = "top"
    ALL = "all"


@app.command("predict")
@_shell.guarded
def predict_command(
    as_of: AsOf = None,
    model: ModelName = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write to FILE (.parquet, .csv or .json) instead of "
            "WORKSPACE/predictions/predictions-AS_OF.parquet."
        ),
    ] = None,
    json_out: JsonOut = False,
    explain_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--explain",
            metavar="ID",
            help="Also give drivers to this customer (repeatable), wherever they rank.",
        ),
    ] = None,
    drivers: Annotated[
        DriversChoice,
        typer.Option(
            help="Who gets drivers: top (the top predict.drivers_top_n by value at risk, "
            "plus --explain) or all (every customer; says first how long it will take).",
        ),
    ] = DriversChoice.TOP,
) -> None:
    """Score every active customer: churn probability and kind, value at risk, drivers.

    The population is the model's: the customers active at --as-of for a subscription
    business, every customer who has bought and not ended for a shop (the business
    model is in the notes; a model saved with `train --force` is warned about).
    Writes one row per customer in it: customer_id, p_churn, p_voluntary,
    p_involuntary, churn_type, risk_tier, value, value_at_risk, segment, driver_1..3,
    action, action_reason (and the segment columns, driver_features, as_of), sorted by
    value at risk. churn_type is the likelier churn kind for customers in a risk tier
    (predict.risk_tiers) and "retained" below it; a binary model (no failed payments
    in its data) says "churned" and leaves p_voluntary/p_involuntary empty. Drivers
    are plain sentences from the model's per-customer contributions, each saying what
    is unusual about the customer against a reference ("3 logins in the last 30 days,
    down from 14 (typical customer: 12)"). They are computed for the top
    predict.drivers_top_n by value at risk and the customers named with --explain
    (--drivers all: everyone, which costs about 165 predictions per customer); the
    others have empty drivers. By default the file goes to the workspace and
    predictions/latest.parquet points at it; --out writes only FILE. Segments come
    from the workspace's last `churnkit segment` run, if any. A model whose features
    or classes do not fit the data, or that learned from events after --as-of (its
    scores would know what happened next), is refused (exit 5).

    \b
    Example:
        churnkit predict
        churnkit predict --as-of 2026-06-30 --out at-risk.csv
        churnkit predict --json > predictions.json
        churnkit predict --explain C000251 --explain C001442
    """
    state = _shell.STATE
    if model is not None:
        store.check_name(model)
    if out is not None:
        check_output_path(out)
    settings = state.settings()
    workspace = state.workspace_of(settings)
    events = scan_events(workspace)
    day = _options.day(as_of)
    with state.step("scoring") as progress, workspace.lock():
        result = predict(
            events,
            settings=settings,
            model_dir=store.model_dir(workspace, model or settings.train.model),
            relations=scan_relations(workspace),
            as_of=day,
            segments=read_segments(workspace.segments_path),
            explain_ids=explain_ids or (),
            drivers=drivers.value,
            progress=progress,
        )
        path = save_predictions(result, workspace=workspace, out=out)
    if json_out:
        state.emit_json(result.to_json(path=path, top=TOP))
    elif not state.quiet:
        state.out.print(predict_summary(result, path))
