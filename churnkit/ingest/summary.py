"""What the workspace holds after a run: events, customers, date range and kinds."""

from __future__ import annotations

import polars as pl

from churnkit.core import schema as s
from churnkit.core.io import scan_events
from churnkit.core.workspace import Workspace
from churnkit.ingest.results import DatasetSummary


def summarise_dataset(workspace: Workspace) -> DatasetSummary:
    if not workspace.event_files():
        return DatasetSummary(0, 0, None, None, {})
    lf = scan_events(workspace)
    stats = lf.select(
        pl.len().alias("events"),
        pl.col(s.CUSTOMER_ID).n_unique().alias("customers"),
        pl.col(s.TS).min().alias("first"),
        pl.col(s.TS).max().alias("last"),
    ).collect(engine="streaming")
    kinds = (
        lf.group_by(pl.col(s.KIND).cast(pl.String))
        .len()
        .sort(["len", s.KIND], descending=[True, False])
        .collect(engine="streaming")
    )
    row = stats.row(0, named=True)
    return DatasetSummary(
        events=int(row["events"]),
        customers=int(row["customers"]),
        first_ts=row["first"],
        last_ts=row["last"],
        kinds=dict(zip(kinds[s.KIND].to_list(), kinds["len"].to_list(), strict=True)),
    )
