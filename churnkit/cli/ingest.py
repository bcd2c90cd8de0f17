"""``churnkit ingest``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnkit.cli import _shell, app
from churnkit.core.schema import EventKind
from churnkit.ingest.pipeline import ingest
from churnkit.render.ingest import ingest_summary


@app.command("ingest")
@_shell.guarded
def ingest_command(
    sources: Annotated[
        list[str] | None,
        typer.Argument(help="CSV, .csv.gz or Parquet files, directories or globs."),
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
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Read transaction exports into the workspace's canonical event log.

    Bad rows go to a rejects file with their line and reason; duplicates are
    dropped; a file already ingested (same content) is skipped. Prints the row
    accounting: read = accepted + rejected + duplicates.

    Example:

        churnkit ingest sample_data/transactions.csv --relations sample_data/relations.csv

        churnkit ingest sample_data/usage.csv.gz --kind usage
    """
    state = _shell.STATE
    mapping = _shell.parse_pairs(map_, flag="--map")
    settings = state.settings({"ingest": {"mapping": mapping}} if mapping else None)
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
    if json_out:
        state.emit_json(result.to_json())
    elif not state.quiet:
        state.out.print(ingest_summary(result))
