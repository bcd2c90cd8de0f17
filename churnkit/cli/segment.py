"""``churnkit segment``: segments, strategies and (with --health) churn health."""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from churnkit.cli import _options, _shell, app
from churnkit.cli._options import AsOf, JsonOut, ModelName
from churnkit.core.io import scan_events, scan_relations, write_table
from churnkit.core.workspace import write_bytes_atomic, write_text_atomic
from churnkit.model import store
from churnkit.render import segments as render
from churnkit.render.formats import SUFFIX_FORMAT, Format, frame_csv
from churnkit.render.report_parts import ChartRef, embedded
from churnkit.segment.health import HealthReport, workspace_health
from churnkit.segment.segments import SegmentResult, segment

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
    earlier = _earlier_segments(workspace.segments_path, _options.day(as_of))
    with state.step("segmenting customers"), workspace.lock():
        result = segment(
            events,
            settings=settings,
            relations=relations,
            as_of=_options.day(as_of),
            model_dir=store.model_dir(workspace, model or settings.train.model),
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
                workspace,
                settings=settings,
                as_of=result.as_of,
                segments=earlier
                if earlier is not None and _before(earlier, result.as_of)
                else None,
                progress=progress,
            )

    if fmt in (Format.MARKDOWN, Format.HTML):
        outputs.update(_document(fmt, result, health_report, report, workspace.reports_dir))
    for name, path in outputs.items():
        log.info("wrote %s: %s", name, path)
    if fmt is Format.JSON:
        state.emit_json(render.json_payload(result, health_report, outputs))
    elif fmt is Format.CSV:
        typer.echo(frame_csv(result.customers), nl=False)
    elif fmt is Format.TABLE and not state.quiet:
        state.out.print(render.segment_summary(result, health_report))


def _document(
    fmt: Format,
    result: SegmentResult,
    health: HealthReport | None,
    report: Path | None,
    reports_dir: Path,
) -> dict[str, str]:
    """Write the Markdown/HTML report to ``report`` (else stdout); Markdown links the
    heat map as a PNG file, HTML embeds it. Returns the files written."""
    written: dict[str, str] = {}
    heatmap = render.cohort_heatmap(health) if health is not None else None
    curves = []
    if health is not None and health.survival is not None:
        from churnkit.render.charts import survival_charts

        curves = survival_charts(health.survival)
    if fmt is Format.HTML:
        text = render.segment_html(result, health, heatmap, embedded(curves))
    else:
        link = None
        if heatmap is not None:
            image = _image_path(report, reports_dir, result.as_of)
            write_bytes_atomic(image, heatmap)
            written["heatmap"] = str(image)
            link = image.name if report is not None else str(image.resolve())
        refs = []
        for chart in curves:
            image = _image_path(report, reports_dir, result.as_of, chart.key)
            write_bytes_atomic(image, chart.png)
            written[chart.key] = str(image)
            src = image.name if report is not None else str(image.resolve())
            refs.append(ChartRef(chart.key, chart.title, chart.alt, src))
        text = render.segment_markdown(result, health, link, refs)
    if report is not None:
        write_text_atomic(report, text)
        written["report"] = str(report)
    else:
        typer.echo(text, nl=False)
    return written


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


def _image_path(
    report: Path | None, reports_dir: Path, as_of: datetime, key: str = "cohorts"
) -> Path:
    """A chart's PNG: beside the report file, else in the workspace's reports."""
    if report is not None:
        return report.with_name(f"{report.stem}-{key}.png")
    return reports_dir / f"segment-{key}-{as_of:%Y-%m-%d}.png"


def _earlier_segments(path: Path, as_of: datetime | None) -> pl.DataFrame | None:
    """The last segment run's table, read before this run replaces it: retention curves
    by segment follow the customers it segmented, when it is older than this as-of."""
    if not path.is_file():
        return None
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError):
        return None


def _before(table: pl.DataFrame | None, as_of: datetime) -> bool:
    if table is None or "as_of" not in table.columns or table.height == 0:
        return False
    seen = table["as_of"].max()
    return isinstance(seen, datetime) and seen < as_of
