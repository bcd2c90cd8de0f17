"""``churnkit measure``: what a saved campaign achieved, treated vs control."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from churnkit.cli import _options, _shell, app
from churnkit.cli._options import AsOf
from churnkit.core.errors import DataError
from churnkit.core.io import scan_events, write_json
from churnkit.core.workspace import write_bytes_atomic, write_text_atomic
from churnkit.render.formats import DOCUMENT_SUFFIX, Format
from churnkit.retention import campaign as campaigns
from churnkit.retention.feedback import suggested_playbook, write_suggestion
from churnkit.retention.outcome import UNKNOWN, CampaignResult, measure_campaign

log = logging.getLogger("churnkit")
TABLE_WIDTH = 100


@app.command("measure")
@_shell.guarded
def measure_command(
    name: Annotated[str, typer.Argument(help="The campaign saved with report --save-campaign.")],
    as_of: AsOf = None,
    fmt: Annotated[
        Format | None,
        typer.Option("--format", help="table, json, markdown or html [table]."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write to FILE [markdown/html default: WORKSPACE/campaigns/NAME/measure.*]."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Measure a saved campaign: did the treated customers churn less than the control?

    Among the customers the plan chose, compares the treated with the control group
    held out at random, over the plan's window (as-of, as-of + horizon], with the
    churn labels of training: customers, churners by kind, churn rate and revenue;
    the uplift (control churn rate − treated churn rate) with its 95% interval and
    p-value; incremental revenue and the return on the actions' cost; the same per
    action. Run it once events after the plan's as-of are ingested; until the window
    and its grace period are over, the result says window_complete: false. When an
    action's observed success rate clearly differs from the playbook's assumption, a
    suggested playbook is written beside the campaign (never over a file).

    \b
    Example:
        churnkit report --budget 5000 --control-share 0.2 --save-campaign spring
        churnkit ingest exports/billing-2026-q3.csv
        churnkit measure spring
        churnkit measure spring --json > spring.json
        churnkit measure spring --format html --out spring.html
    """
    state = _shell.STATE
    if json_out:
        if fmt not in (None, Format.JSON):
            raise typer.BadParameter(f"--json conflicts with --format {fmt}", param_hint="--json")
        fmt = Format.JSON
    fmt = fmt or Format.TABLE
    if fmt is Format.CSV:
        raise typer.BadParameter("choose table, json, markdown or html", param_hint="--format")
    settings = state.settings()
    workspace = state.workspace_of(settings)
    campaign = campaigns.load_campaign(workspace, name)
    events = scan_events(workspace)
    with state.step(f"measuring campaign {name}"):
        result = measure_campaign(
            events, campaign, label_settings=settings.labels, as_of=_options.day(as_of)
        )
    folder = campaigns.campaign_dir(workspace, campaign.name)
    with workspace.lock():
        result = _feed_back(result, campaign.playbook, folder)
        outputs = {
            "measurement": str(campaigns.save_measurement(workspace, name, result.to_json()))
        }
    if result.suggested_playbook:
        outputs["suggested_playbook"] = result.suggested_playbook
    _emit(result, fmt, out, folder, outputs, state)


def _feed_back(
    result: CampaignResult, playbook: dict[str, object] | None, folder: Path
) -> CampaignResult:
    """Write a suggested playbook when the data says so with confidence; otherwise say
    the data is consistent with the assumptions."""
    if playbook is None:
        return result.with_suggestion(None, "the campaign kept no playbook to compare with")
    suggestion = suggested_playbook(playbook, result)
    if suggestion is None:
        unknown = [a.action for a in result.actions if a.verdict == UNKNOWN]
        note = "every action's observed success rate is consistent with the playbook's assumption"
        if unknown:
            note += f" (except {', '.join(unknown)}: no control churners to compare with)"
        return result.with_suggestion(None, note)
    text, changes = suggestion
    try:
        path = write_suggestion(folder, result.window_end.isoformat(), text)
    except OSError as exc:
        raise DataError(f"cannot write a suggested playbook in {folder}: {exc.strerror}") from None
    names = ", ".join(a.action for a in changes)
    return result.with_suggestion(
        str(path),
        f"the observed success rate of {names} differs from the playbook's assumption with "
        f"95% confidence: a suggested update is in {path}",
    )


def _emit(
    result: CampaignResult,
    fmt: Format,
    out: Path | None,
    folder: Path,
    outputs: dict[str, str],
    state: _shell.AppState,
) -> None:
    from churnkit.render import campaign as render

    for label, path in outputs.items():
        log.info("wrote %s: %s", label.replace("_", " "), path)
    if fmt is Format.JSON:
        payload = render.campaign_json(result, outputs)
        if out is None:
            state.emit_json(payload)
        else:
            _write(out, lambda p: write_json(p, payload))
        return
    if fmt is Format.TABLE:
        if out is None:
            state.out.print(render.campaign_terminal(result))
            return
        console = Console(width=TABLE_WIDTH, no_color=True, record=True, file=io.StringIO())
        console.print(render.campaign_terminal(result))
        _write(out, lambda p: write_text_atomic(p, console.export_text()))
        typer.echo(str(out))
        return
    from churnkit.render.charts import campaign_retention
    from churnkit.render.report_parts import ChartRef, embedded

    out = out or folder / f"measure{DOCUMENT_SUFFIX[fmt]}"
    chart = campaign_retention(result)
    if fmt is Format.HTML:
        html = render.campaign_html(result, embedded([chart]))
        _write(out, lambda p: write_text_atomic(p, html))
    else:
        image = out.with_name(f"{out.stem}_files") / f"{chart.key}.png"
        _write(image, lambda p: write_bytes_atomic(p, chart.png))
        ref = ChartRef(chart.key, chart.title, chart.alt, f"{image.parent.name}/{image.name}")
        text = render.campaign_markdown(result, [ref])
        _write(out, lambda p: write_text_atomic(p, text))
    typer.echo(str(out))


def _write(path: Path, write: Callable[[Path], None]) -> None:
    try:
        write(path)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror}") from None
