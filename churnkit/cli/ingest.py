"""``churnkit ingest``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from churnkit.cli import _shell, app
from churnkit.core.schema import EventKind
from churnkit.ingest import vendors
from churnkit.ingest.pipeline import ingest
from churnkit.render.ingest import ingest_summary


def _source_name(value: str | None) -> str | None:
    if value is not None and value not in vendors.names():
        raise typer.BadParameter(f"choose one of: {', '.join(vendors.names())}")
    return value


@app.command("ingest")
@_shell.guarded
def ingest_command(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="CSV, TSV or .txt (optionally .gz) or Parquet files, directories or globs."
        ),
    ] = None,
    relations: Annotated[
        Path | None,
        typer.Option(help="Customer-relations table (customer_id, related_customer_id, ...)."),
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="Map a canonical column to a source column: canonical=source (repeatable).",
        ),
    ] = None,
    kind: Annotated[
        EventKind,
        typer.Option(help="Kind of every row when the source has no status column."),
    ] = EventKind.PURCHASE,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            callback=_source_name,
            help="Read every file as this export (e.g. shopify-orders, stripe, generic) "
            "[ingest.source; default: recognised by the headers].",
        ),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(help="Text encoding, e.g. cp1252 [ingest.encoding; default: detected]."),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(help="Field delimiter, e.g. ';' or tab [ingest.delimiter; default: sniffed]."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Read transaction exports into the workspace's canonical event log.

    Each file is its own batch: bad rows go to a rejects file with their line and
    reason, duplicates are dropped, a file already ingested (same content) is skipped,
    an empty file is a zero-row batch. A file that cannot be used is reported and the
    others go on; the exit code is then 3 and the next run retries it. Prints the row
    accounting: read = accepted + rejected + duplicates.

    Example:

        churnkit ingest sample_data/transactions.csv --relations sample_data/relations.csv

        churnkit ingest exports/ --source shopify-orders --encoding cp1252
    """
    state = _shell.STATE
    mapping = _shell.parse_pairs(map_, flag="--map")
    overrides: dict[str, Any] = {"mapping": mapping} if mapping else {}
    for key, value in (("source", source), ("encoding", encoding), ("delimiter", delimiter)):
        if value is not None:
            overrides[key] = value
    settings = state.settings({"ingest": overrides} if overrides else None)
    workspace = state.workspace_of(settings)
    with state.step("ingesting"):
        result = ingest(
            sources or [],
            settings=settings,
            workspace=workspace,
            mapping=mapping,
            kind=kind,
            relations=relations,
        )
    for failed in result.failed:
        _shell.report_error(failed.error or f"{failed.path}: failed", failed.hint)
    if json_out:
        state.emit_json(result.to_json())
    elif not state.quiet:
        state.out.print(ingest_summary(result))
    _shell.exit_with(result.exit_code)
