"""``churnkit segment``: segments, strategies and (with --health) churn health."""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from churnkit.cli import _options, _shell, app
from churnkit.cli._options import AsOf, JsonOut, ModelName
from churnkit.core.io import escape_formulas, scan_events, scan_relations, write_table
from churnkit.core.workspace import write_bytes_atomic, write_text_atomic
from churnkit.render import segments as render
from churnkit.render.formats import SUFFIX_FORMAT, Format
from churnkit.segment.health import workspace_health
from churnkit.segment.segments import segment

log = logging.getLogger("churnkit")


class RiskSource(StrEnum):
    auto = "auto"
    model = "model"
    rules = "rules"


@app.command("segment")
@_shell.guarded
def segment_command(
    as_of: AsOf = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Also write the per-customer table here (.parquet, .csv or .json)."),
    ] = None,
    health: Annotated[
        bool,
        typer.Option(
            "--health",
            help="Add churn health: monthly churn by kind, failed-payment outcomes, cohorts.",
        ),
    ] = False,
    output_format: Annotated[
        Format | None,
        typer.Option(
            "--format",
            help="table, json, csv (one row per customer), markdown or html [table].",
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Write the Markdown/HTML report to this file (.md or .html) instead of stdout."
        ),
    ] = None,
    risk: Annotated[
        RiskSource | None,
        typer.Option(help="Risk for the strategy: auto, model or rules [segments.risk_source]."),
    ] = None,
    model: ModelName = None,
    horizon: Annotated[
        int | None,
        typer.Option(min=1, help="Window for the observed churn rate [labels.horizon]."),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Segment the active customers: RFM, lifecycle, behavioural type, value and strategy.

    Writes one row per customer active at --as-of to WORKSPACE/segments.parquet (and
    --out), and prints customers, revenue share and (when the outcome is in the data)
    churn rate per RFM segment, lifecycle stage, type, value tier and strategy. Risk
    comes from the trained model when it can score at --as-of, else from rules.
    --health adds monthly churn (voluntary / involuntary), revenue churn and net
    revenue retention, failed-payment recovery and a cohort retention matrix; its
    Markdown and HTML reports include a cohort heat map (Markdown: a PNG beside the
    file).

    \b
    Example:
        churnkit segment --out segments.csv
        churnkit segment --health --report health.html
        churnkit segment --as-of 2026-06-30 --health --json > segments.json
    """
    state = _shell.STATE
    fmt = _choose_format(output_format, json_out, report)
    overrides: dict[str, object] = {}
    if horizon is not None:
        overrides["labels"] = {"horizon": horizon}
    if risk is not None:
        overrides["segments"] = {"risk_source": risk.value}
    settings = state.settings(overrides)
    workspace = state.workspace_of(settings)
    events = scan_events(workspace)
    relations = scan_relations(workspace)
    with state.step("segmenting customers"), workspace.lock():
        result = segment(
            events,
            settings=settings,
            relations=relations,
            as_of=_options.day(as_of),
            model_dir=workspace.model_dir(model or settings.train.model),
        )
        write_table(result.customers, workspace.segments_path)
        outputs = {"segments": str(workspace.segments_path)}
        if out is not None:
            write_table(result.customers, out)
            outputs["out"] = str(out)
    health_report = None
    if health:
        with state.step("measuring churn health") as progress:
            health_report = workspace_health(
                workspace, settings=settings, as_of=result.as_of, progress=progress
            )

    if fmt in (Format.MARKDOWN, Format.HTML):
        heatmap = render.cohort_heatmap(health_report) if health_report is not None else None
        if fmt is Format.HTML:
            text = render.segment_html(result, health_report, heatmap)
        else:
            link = None
            if heatmap is not None:
                image = _image_path(report, workspace.reports_dir, result.as_of)
                write_bytes_atomic(image, heatmap)
                outputs["heatmap"] = str(image)
                link = image.name if report is not None else str(image.resolve())
            text = render.segment_markdown(result, health_report, link)
        if report is not None:
            write_text_atomic(report, text)
            outputs["report"] = str(report)
        else:
            typer.echo(text, nl=False)
    for name, path in outputs.items():
        log.info("wrote %s: %s", name, path)
    if fmt is Format.JSON:
        state.emit_json(render.json_payload(result, health_report, outputs))
    elif fmt is Format.CSV:
        typer.echo(escape_formulas(result.customers).write_csv(), nl=False)
    elif fmt is Format.TABLE and not state.quiet:
        state.out.print(render.segment_summary(result, health_report))


def _choose_format(given: Format | None, json_out: bool, report: Path | None) -> Format:
    if json_out:
        if given not in (None, Format.JSON):
            raise typer.BadParameter(f"--json and --format {given} disagree", param_hint="--json")
        return Format.JSON
    if report is None:
        return given or Format.TABLE
    if given in (Format.MARKDOWN, Format.HTML):
        return given
    if given in (Format.JSON, Format.CSV):
        raise typer.BadParameter("a report file is Markdown or HTML", param_hint="--report")
    implied = SUFFIX_FORMAT.get(report.suffix.lower())
    if implied is None:
        raise typer.BadParameter(
            f"{report}: name a .md or .html file, or pass --format markdown|html",
            param_hint="--report",
        )
    return implied


def _image_path(report: Path | None, reports_dir: Path, as_of: datetime) -> Path:
    """The heat map PNG: beside the report file, else in the workspace's reports."""
    if report is not None:
        return report.with_name(f"{report.stem}-cohorts.png")
    return reports_dir / f"segment-cohorts-{as_of:%Y-%m-%d}.png"
