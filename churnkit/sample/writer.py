"""The export files: transaction lines formatted as strings in chunks, referrals, and
writing ``transactions.csv``, ``usage.csv.gz`` and ``relations.csv``.

Output is formatted and written in chunks, so memory stays bounded by the compact
simulation arrays rather than by millions of formatted strings. Each file appears
atomically; the gzip header carries no time stamp, so equal seeds give equal bytes.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from churnkit.core.workspace import atomic_path
from churnkit.sample.mess import STATUSES, Layout, mess_up, rewritten
from churnkit.sample.usage import USAGE_COLUMNS, usage_chunks
from churnkit.sample.world import NO_AMOUNT, REASONS, World, customer_ids, pick

__all__ = [
    "CHUNK_ROWS",
    "FILES",
    "RELATION_COLUMNS",
    "TRANSACTION_COLUMNS",
    "relations_frame",
    "transaction_chunks",
    "write_files",
]

TRANSACTION_COLUMNS = (
    "Customer ID",
    "Invoice Date",
    "Amount",
    "Status",
    "Plan",
    "Reason",
    "Transaction ID",
    "Card Exp",
    "Channel",
    "Discount",
)
RELATION_COLUMNS = ("customer_id", "related_customer_id", "kind", "since")
FILES = {
    "transactions": "transactions.csv",
    "usage": "usage.csv.gz",
    "relations": "relations.csv",
}
CHUNK_ROWS = 1_000_000
_PERCENTS = tuple(str(i) for i in range(101))


@dataclass(frozen=True)
class _Labels:
    """Every string a column can hold, computed once: formatting a line is then a
    gather by index, which is far cheaper than formatting millions of values."""

    customer: pl.Series
    day: pl.Series
    day_lo: int
    time: pl.Series
    card: pl.Series  # the last entry is null
    card_lo: int
    fraction: pl.Series  # ".00" .. ".99"


def _labels(world: World) -> _Labels:
    days = np.arange(world.start_day - 7, world.end_day + 1)
    card = world.rows["card"]
    card = card[card >= 0]
    card_lo, card_hi = (int(card.min()), int(card.max())) if len(card) else (0, 0)
    months = np.arange(card_lo, card_hi + 1)
    card_text = pl.DataFrame({"m": months}).select(
        pl.concat_str(
            (pl.col("m") % 12 + 1).cast(pl.String).str.zfill(2),
            pl.lit("/"),
            ((pl.col("m") // 12 + 1970) % 100).cast(pl.String).str.zfill(2),
        )
    )
    seconds = np.arange(86_400)
    time_text = pl.DataFrame({"s": seconds}).select(
        pl.concat_str(
            (pl.col("s") // 3600).cast(pl.String).str.zfill(2),
            pl.lit(":"),
            (pl.col("s") // 60 % 60).cast(pl.String).str.zfill(2),
            pl.lit(":"),
            (pl.col("s") % 60).cast(pl.String).str.zfill(2),
        )
    )
    return _Labels(
        customer=customer_ids(world.n),
        day=pl.Series(days.astype("datetime64[D]")).dt.strftime("%Y-%m-%d"),
        day_lo=int(days[0]),
        time=time_text.to_series(),
        card=pl.concat([card_text.to_series(), pl.Series([None], dtype=pl.String)]),
        card_lo=card_lo,
        fraction=pl.Series([f".{i:02d}" for i in range(100)]),
    )


def transaction_chunks(world: World, lay: Layout, chunk: int) -> Iterator[pl.DataFrame]:
    """The export's lines, formatted as strings, ``chunk`` lines at a time."""
    labels = _labels(world)
    for start in range(0, len(lay.order), chunk):
        frame = _clean_lines(world, lay, labels, start, chunk)
        mess = lay.mess[start : start + chunk]
        messy = rewritten(mess)
        if len(messy):
            idx = lay.order[start : start + chunk][messy]
            raw = pl.DataFrame(
                {
                    "mess": mess[messy],
                    "variant": lay.variant[start : start + chunk][messy],
                    "cents": world.rows["cents"][idx].astype(np.int64),
                    "day": world.rows["day"][idx].astype("datetime64[D]"),
                    "sec": world.rows["sec"][idx],
                }
            )
            frame = mess_up(frame, messy, raw)
        yield frame


def _clean_lines(
    world: World, lay: Layout, labels: _Labels, start: int, chunk: int
) -> pl.DataFrame:
    """Lines ``start`` .. ``start + chunk`` of the export, spelled cleanly."""
    rows = world.rows
    idx = lay.order[start : start + chunk]
    cust = rows["cust"][idx]
    cents = rows["cents"][idx].astype(np.int64)
    kind = rows["kind"][idx]
    card = rows["card"][idx]
    discount = rows["discount"][idx]
    reason = rows["reason"][idx]
    parts = pl.DataFrame(
        {
            "customer": labels.customer.gather(cust),
            "date": labels.day.gather(rows["day"][idx] - labels.day_lo),
            "time": labels.time.gather(rows["sec"][idx]),
            "sign": pick(("", "-"), np.where(NO_AMOUNT[kind], -1, cents < 0)),
            "whole": np.abs(cents) // 100,
            "fraction": labels.fraction.gather(np.abs(cents) % 100),
            "status": pick(STATUSES, lay.status[idx]),
            "plan": pick(world.items, rows["item"][idx]),
            "reason": pick(REASONS, np.where(reason > 0, reason, -1)),
            "txid": lay.txid[idx],
            "card": labels.card.gather(np.where(card >= 0, card - labels.card_lo, -1)),
            "channel": pick(world.channels, world.channel[cust]),
            "discount": pick(_PERCENTS, np.where(discount >= 0, discount, -1)),
        }
    )
    return parts.select(
        pl.col("customer").alias("Customer ID"),
        pl.concat_str("date", "time", separator=" ").alias("Invoice Date"),
        pl.concat_str("sign", pl.col("whole").cast(pl.String), "fraction").alias("Amount"),
        pl.col("status").alias("Status"),
        pl.col("plan").alias("Plan"),
        pl.col("reason").alias("Reason"),
        pl.concat_str(pl.lit("T"), pl.col("txid").cast(pl.String).str.zfill(9)).alias(
            "Transaction ID"
        ),
        pl.col("card").alias("Card Exp"),
        pl.col("channel").alias("Channel"),
        pl.col("discount").alias("Discount"),
    )


def relations_frame(world: World) -> pl.DataFrame:
    """Referrals: ``customer_id`` referred ``related_customer_id``, who signed up on ``since``."""
    ids = customer_ids(world.n)
    return pl.DataFrame(
        {
            "customer_id": ids.gather(world.referrer),
            "related_customer_id": ids.gather(world.referred),
            "kind": pl.Series(["referral"] * len(world.referred_on), dtype=pl.String),
            "since": world.referred_on.astype("datetime64[D]"),
        },
        schema={c: pl.Date if c == "since" else pl.String for c in RELATION_COLUMNS},
    )


def write_files(out_dir: Path, world: World, lay: Layout) -> tuple[dict[str, Path], dict[str, int]]:
    """Write the three files into ``out_dir``; returns their paths and row counts."""
    paths = {name: out_dir / filename for name, filename in FILES.items()}
    rows: dict[str, int] = {}
    with atomic_path(paths["transactions"]) as tmp, open(tmp, "wb") as handle:
        rows["transactions"] = _write_chunks(
            handle.write, transaction_chunks(world, lay, CHUNK_ROWS), TRANSACTION_COLUMNS
        )
    with (
        atomic_path(paths["usage"]) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=3) as handle,
    ):
        rows["usage"] = _write_chunks(handle.write, usage_chunks(world), USAGE_COLUMNS)
    relations = relations_frame(world)
    with atomic_path(paths["relations"]) as tmp:
        relations.write_csv(tmp)
    rows["relations"] = relations.height
    return paths, rows


def _write_chunks(
    write: Callable[[bytes], object], chunks: Iterator[pl.DataFrame], header: tuple[str, ...]
) -> int:
    """Write CSV chunks; the previous chunk is written (and compressed) on a second
    thread while the next one is formatted, which roughly halves the time for gzip."""
    total, first = 0, True
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[object] | None = None
        for frame in chunks:
            buffer = io.BytesIO()
            frame.write_csv(buffer, include_header=first)
            total, first = total + frame.height, False
            if pending is not None:
                pending.result()
            pending = pool.submit(write, buffer.getvalue())
        if pending is not None:
            pending.result()
    if first:
        write((",".join(header) + "\n").encode())
    return total
