"""``churnkit report``."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console

from churnkit.cli import _shell, app
from churnkit.core.config import Settings
from churnkit.core.errors import DataError, UsageError
from churnkit.core.io import write_json
from churnkit.core.schema import AS_OF, CUSTOMER_ID, DRIVER_FEATURES
from churnkit.core.workspace import Workspace, write_bytes_atomic, write_text_atomic
from churnkit.model import store
from churnkit.model.card import ModelCard
from churnkit.predict.pipeline import latest_path
from churnkit.render.formats import DOCUMENT_SUFFIX, Format
from churnkit.report.report import build_report, playbook_features
from churnkit.report.result import Report
from churnkit.retention import campaign as campaigns
from churnkit.retention.outcome import CampaignResult
from churnkit.retention.playbook import Playbook, load_playbook, playbook_path
from churnkit.segment.value_matrix import QUADRANT, QUADRANT_STRATEGY

TABLE_WIDTH = 100
# Measured campaigns shown in a report, most recently planned first.
MAX_CAMPAIGNS = 3


class KindChoice(StrEnum):
    VOLUNTARY = "voluntary"
    INVOLUNTARY = "involuntary"


@app.command("report")
@_shell.guarded
def report_command(
    predictions: Annotated[
        Path | None,
        typer.Option(help="Predictions file [default: the workspace's latest predictions]."),
    ] = None,
    top: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Customers to list [report.top]; with --budget, files list the whole plan "
            "and --top limits only the terminal.",
        ),
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option("--format", help="Output format [default: table]."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write to FILE [html/markdown default: WORKSPACE/reports/report-AS_OF.*]."
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(min=0, help="Retention budget: choose who to treat to save the most."),
    ] = None,
    control_share: Annotated[
        float | None,
        typer.Option(help="Share of customers held out untreated, 0 to <1 [report.control_share]."),
    ] = None,
    kind: Annotated[
        KindChoice | None,
        typer.Option(help="Only customers whose likelier churn kind is this."),
    ] = None,
    segment: Annotated[str | None, typer.Option(help="Only customers of this segment.")] = None,
    min_value: Annotated[
        float | None, typer.Option(help="Only customers worth at least this value.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model whose card adds calibration charts [train.model].")
    ] = None,
    playbook: Annotated[
        Path | None,
        typer.Option(
            help="Retention playbook YAML [predict.playbook; else ./configs/actions.yaml, "
            "else the shipped default]."
        ),
    ] = None,
    save_campaign: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Save the plan (treated and control customers) as campaign NAME, "
            "to measure later with `churnkit measure NAME`.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --save-campaign: replace a campaign of that name.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Who is most worth saving, why, and what to do: the retention report.

    Ranks customers by value at risk (p churn × value) and lists their churn kind,
    drivers and the playbook's action; sums the action plan (customers, cost,
    expected saved value). With --budget it picks the customers and actions that
    save the most expected value within the budget and says why each was chosen; the
    CSV, JSON, Markdown and HTML outputs then list every customer of the plan (the
    control customers marked), while the terminal shows the top --top.
    --control-share holds out a random share of customers with no action, so the
    actions' effect can be measured later: --save-campaign NAME keeps the plan in
    WORKSPACE/campaigns/NAME for `churnkit measure NAME`. Measured campaigns appear in
    the report. HTML is one self-contained file; Markdown writes its chart images
    into a folder beside the .md file.

    \b
    Example:
        churnkit report --top 20
        churnkit report --budget 5000 --control-share 0.1 --format html
        churnkit report --kind involuntary --format csv --out involuntary.csv
        churnkit report --budget 5000 --control-share 0.2 --save-campaign spring
    """
    state = _shell.STATE
    fmt = _format(fmt, json_out)
    if control_share is not None and not 0 <= control_share < 1:
        raise typer.BadParameter(
            f"must be at least 0 and below 1; got {control_share}", param_hint="--control-share"
        )
    overrides: dict[str, Any] = {}
    report_overrides: dict[str, Any] = {}
    if top is not None:
        report_overrides["top"] = top
    if control_share is not None:
        report_overrides["control_share"] = control_share
    if report_overrides:
        overrides["report"] = report_overrides
    settings = state.settings(overrides)
    workspace = state.workspace_of(settings)

    if save_campaign is not None:
        campaigns.check_campaign_name(save_campaign)
    card, model_name = _card(workspace, model, default=settings.train.model)
    frame = _read_predictions(workspace, predictions)
    chosen_playbook, playbook_file = _playbook(playbook, settings, card)
    with state.step("building the report"):
        report = build_report(
            frame,
            playbook=chosen_playbook,
            top=settings.report.top,
            budget=budget,
            control_share=settings.report.control_share,
            seed=settings.report.seed,
            kind=kind.value if kind is not None else None,  # type: ignore[arg-type]
            segment=segment,
            min_value=min_value,
            card=card,
            model_name=model_name,
            campaigns=_measured(workspace),
            quadrants=_quadrants(workspace),
        )
    if save_campaign is not None:
        _save_campaign(
            save_campaign,
            report,
            frame,
            chosen_playbook=chosen_playbook,
            playbook_path=playbook_file,
            budget=budget,
            settings=settings,
            card=card,
            model_name=model_name,
            workspace=workspace,
            force=force,
        )
    _emit(report, fmt, out, workspace, state)


def _save_campaign(
    name: str,
    report: Report,
    predictions: pl.DataFrame,
    *,
    chosen_playbook: Playbook | None,
    playbook_path: Path,
    budget: float | None,
    settings: Settings,
    card: ModelCard | None,
    model_name: str | None,
    workspace: Workspace,
    force: bool,
) -> None:
    """Keep the plan the report chose as a campaign (see ``retention.campaign``)."""
    if chosen_playbook is None or report.frame is None:
        raise UsageError(
            "--save-campaign needs a retention playbook: a plan without actions has "
            "nothing to measure",
            hint="create configs/actions.yaml or pass --playbook FILE",
        )
    as_of = predictions[AS_OF].drop_nulls().max() if AS_OF in predictions.columns else None
    if not isinstance(as_of, datetime):
        raise DataError(
            "the predictions carry no as_of, so a campaign cannot say when it starts",
            hint="save campaigns from predictions written by `churnkit predict`",
        )
    horizon = (card.horizon if card is not None else None) or settings.labels.horizon
    campaign = campaigns.new_campaign(
        name,
        campaigns.build_plan(report.frame, budget=budget),
        as_of=as_of,
        horizon=int(horizon),
        grace=settings.labels.grace_period,
        model=model_name,
        control_share=report.control.share,
        seed=report.control.seed,
        budget=budget,
        playbook=chosen_playbook,
        playbook_path=playbook_path,
    )
    with workspace.lock():
        folder = campaigns.save_campaign(workspace, campaign, force=force)
    logging.getLogger("churnkit").info(
        "saved campaign %s: %d treated, %d control customers in %s",
        name,
        campaign.treated,
        campaign.control,
        folder,
    )


def _quadrants(workspace: Workspace) -> pl.DataFrame | None:
    """The value × cost-to-serve quadrants of the last segment run, if it has them."""
    path = workspace.segments_path
    if not path.is_file():
        return None
    wanted = [CUSTOMER_ID, QUADRANT, QUADRANT_STRATEGY]
    try:
        if not set(wanted) <= set(pl.read_parquet_schema(path)):
            return None
        return pl.read_parquet(path, columns=wanted)
    except (OSError, pl.exceptions.PolarsError):
        return None


def _measured(workspace: Workspace) -> list[CampaignResult]:
    """The latest measurement of the most recent measured campaigns."""
    found = []
    for data in campaigns.measurements(workspace)[:MAX_CAMPAIGNS]:
        try:
            found.append(CampaignResult.from_json(data))
        except (KeyError, TypeError, ValueError):
            continue  # written by another version: measure it again to show it
    return found


def _format(fmt: Format | None, json_out: bool) -> Format:
    if json_out and fmt not in (None, Format.JSON):
        raise typer.BadParameter(f"--json conflicts with --format {fmt}", param_hint="--json")
    if json_out:
        return Format.JSON
    return fmt or Format.TABLE


def _emit(
    report: Report, fmt: Format, out: Path | None, workspace: Workspace, state: _shell.AppState
) -> None:
    from churnkit.render import report as render

    if fmt is Format.TABLE:
        if out is None:
            state.out.print(render.report_table(report))
            return
        console = Console(width=TABLE_WIDTH, no_color=True, record=True, file=io.StringIO())
        console.print(render.report_table(report))
        _write_text(out, console.export_text())
    elif fmt is Format.JSON:
        payload = render.report_json(report)
        if out is None:
            state.emit_json(payload)
            return
        write_json(out, payload)
    elif fmt is Format.CSV:
        text = render.report_csv(report)
        if out is None:
            typer.echo(text, nl=False)
            return
        _write_text(out, text)
    else:
        out = out or _default_path(workspace, report, fmt)
        with state.step("drawing charts"):
            from churnkit.render.charts import report_charts

            charts = report_charts(report)
        if fmt is Format.HTML:
            _write_text(out, render.report_html(report, render.embedded(charts)))
        else:
            folder = out.with_name(f"{out.stem}_files")
            refs = []
            for chart in charts:
                target = folder / f"{chart.key}.png"
                _write_bytes(target, chart.png)
                refs.append(
                    render.ChartRef(
                        chart.key, chart.title, chart.alt, f"{folder.name}/{target.name}"
                    )
                )
            _write_text(out, render.report_markdown(report, refs))
    typer.echo(str(out))


def _default_path(workspace: Workspace, report: Report, fmt: Format) -> Path:
    stamp = report.as_of.isoformat() if report.as_of else "latest"
    return workspace.reports_dir / f"report-{stamp}{DOCUMENT_SUFFIX[fmt]}"


def _write_text(path: Path, text: str) -> None:
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror}") from None


def _write_bytes(path: Path, data: bytes) -> None:
    try:
        write_bytes_atomic(path, data)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror}") from None


def _read_predictions(workspace: Workspace, path: Path | None) -> pl.DataFrame:
    if path is None:
        path = _latest(workspace)
    if not path.is_file():
        raise DataError(
            f"predictions file {path} does not exist",
            hint="run `churnkit predict` first, or pass an existing --predictions FILE",
        )
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
        elif suffix == ".csv":
            frame = pl.read_csv(path, infer_schema_length=10_000)
            if frame.schema.get(DRIVER_FEATURES) == pl.String:
                # predict joins the list with "; " in CSV
                frame = frame.with_columns(pl.col(DRIVER_FEATURES).str.split("; "))
        elif suffix == ".json":
            frame = pl.DataFrame(json.loads(path.read_text(encoding="utf-8")))
        else:
            raise DataError(
                f"{path}: unsupported predictions file type", hint="use .parquet, .csv or .json"
            )
    except (OSError, pl.exceptions.PolarsError, ValueError) as exc:
        raise DataError(
            f"cannot read predictions file {path}: {str(exc).splitlines()[0]}",
            hint="pass a file written by `churnkit predict`",
        ) from None
    return frame


def _latest(workspace: Workspace) -> Path:
    """``predictions/latest.parquet``, which ``churnkit predict`` replaces on every run."""
    latest = latest_path(workspace)
    if latest.is_file():
        return latest
    dated = sorted(workspace.predictions_dir.glob("predictions-*.parquet"))
    if dated:
        return dated[-1]
    raise DataError(
        f"workspace {workspace.root} holds no predictions",
        hint="run `churnkit predict` first (or pass --predictions FILE)",
    )


def _card(
    workspace: Workspace, name: str | None, *, default: str
) -> tuple[ModelCard | None, str | None]:
    """The model card, for calibration and feature descriptions. Optional unless named."""
    if name is not None:
        return store.read_card(workspace, name), name
    if default not in store.available(workspace):
        return None, None
    return store.read_card(workspace, default), default


def _playbook(
    path: Path | None, settings: Settings, card: ModelCard | None
) -> tuple[Playbook, Path]:
    """The playbook and where it was read from: --playbook (must exist), else
    ``predict.playbook`` (must exist), else ./configs/actions.yaml, else the shipped
    one (see ``retention.playbook.playbook_path``)."""
    chosen = playbook_path(path, settings.predict.playbook)
    return load_playbook(chosen, known_features=playbook_features(card, settings)), chosen
