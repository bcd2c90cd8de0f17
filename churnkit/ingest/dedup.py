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


def _by_txid() -> pl.Expr:
    txid = pl.col(s.TRANSACTION_ID)
    return pl.struct(txid, pl.col(s.KIND).cast(pl.String), pl.col(s.TS)).hash(HASH_SEED)


def _by_row() -> pl.Expr:
    return pl.struct(
        *[pl.col(c).cast(pl.String) if c == s.KIND else pl.col(c) for c in s.EVENT_SCHEMA]
    ).hash(HASH_SEED)


def dedup_key() -> pl.Expr:
    """The key of each event; the whole-row hash is computed only for the events that
    have no transaction_id (the values are those of earlier versions, so a workspace
    built by them still de-duplicates)."""
    return pl.struct(list(s.EVENT_SCHEMA)).map_batches(
        _key_chunk, return_dtype=pl.UInt64, is_elementwise=True
    )


def _key_chunk(rows: pl.Series) -> pl.Series:
    frame = rows.struct.unnest()
    keys = frame.select(_by_txid()).to_series()
    missing = frame[s.TRANSACTION_ID].is_null()
    if missing.any():
        at = missing.arg_true()
        keys = keys.scatter(at, frame[at].select(_by_row()).to_series())
    return keys.alias(s.DEDUP_KEY)


def new_events(events: pl.LazyFrame, workspace: Workspace) -> pl.LazyFrame:
    """The events not seen before: first of their key in this batch, absent from the
    workspace's earlier batches."""
    keyed = events.with_columns(dedup_key().alias(s.DEDUP_KEY))
    unique = keyed.unique(subset=[s.DEDUP_KEY], keep="first", maintain_order=True)
    existing = workspace.event_files()
    if not existing:
        return unique
    check_parquet(existing)
    seen = pl.concat([pl.scan_parquet(f).select(s.DEDUP_KEY) for f in existing])
    return unique.join(seen, on=s.DEDUP_KEY, how="anti", maintain_order="left")
