"""Duplicates: the same event twice, within a batch or against the workspace.

The key is the same ``transaction_id`` with the same kind and time (a retried invoice
keeps its failed and its paid attempt; a subscription's signup and cancel share an id),
else the same canonical row. Only the 64-bit keys of earlier batches are read, so the
check stays within bounded memory however large the workspace grows.
"""

from __future__ import annotations

import polars as pl

from churnkit.core import schema as s
from churnkit.core.io import check_parquet
from churnkit.core.workspace import Workspace

HASH_SEED = 20240601


def dedup_key() -> pl.Expr:
    txid = pl.col(s.TRANSACTION_ID)
    by_txid = pl.struct(txid, pl.col(s.KIND).cast(pl.String), pl.col(s.TS)).hash(HASH_SEED)
    by_row = pl.struct(
        *[pl.col(c).cast(pl.String) if c == s.KIND else pl.col(c) for c in s.EVENT_SCHEMA]
    ).hash(HASH_SEED)
    return pl.when(txid.is_not_null()).then(by_txid).otherwise(by_row)


def new_events(events: pl.LazyFrame, workspace: Workspace, batch: str) -> pl.LazyFrame:
    """The events not seen before: first of their key in this batch, absent from the
    workspace's earlier batches."""
    keyed = events.with_columns(pl.lit(batch).alias(s.BATCH), dedup_key().alias(s.DEDUP_KEY))
    unique = keyed.unique(subset=[s.DEDUP_KEY], keep="first", maintain_order=True)
    existing = workspace.event_files()
    if not existing:
        return unique
    check_parquet(existing)
    seen = pl.concat([pl.scan_parquet(f).select(s.DEDUP_KEY) for f in existing])
    return unique.join(seen, on=s.DEDUP_KEY, how="anti", maintain_order="left")
