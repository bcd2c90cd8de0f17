"""Seeded, realistic sample data to try (and test) every churnkit command on.

Used by ``churnkit sample``, the tests and the benchmarks, so it must be fast: the
simulation is vectorised over customers with numpy and loops over weeks only. A
business (``BUSINESSES``: ``subscription``, a subscription business that also sells
one-off items; ``saas``, its usage-heavy variant; ``retail``, a shop whose customers
follow a Pareto/NBD purchase process) simulates its customers into a ``world.World``;
``mess`` lays its rows out as a real billing/order export would, with a small share of
messy lines for ingest to reject, repair or de-duplicate, and ``writer`` formats and
writes the files. Nothing on a row reveals the future.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from churnkit.core.errors import UsageError
from churnkit.sample import mess, retail_business, subscription_business
from churnkit.sample.days import to_date
from churnkit.sample.usage import USAGE_COLUMNS, empty_usage, usage_chunks
from churnkit.sample.world import Business, World
from churnkit.sample.writer import (
    CHUNK_ROWS,
    FILES,
    RELATION_COLUMNS,
    TRANSACTION_COLUMNS,
    relations_frame,
    transaction_chunks,
    write_files,
)

__all__ = [
    "BUSINESSES",
    "FILES",
    "RELATION_COLUMNS",
    "TRANSACTION_COLUMNS",
    "USAGE_COLUMNS",
    "SampleResult",
    "SyntheticData",
    "generate",
    "make_sample",
    "write_sample",
]

# The kinds of business a sample can come from, by name.
BUSINESSES: dict[str, Business] = {
    "subscription": subscription_business.simulate,
    "retail": retail_business.simulate,
    "saas": subscription_business.simulate_saas,
}


@dataclass(frozen=True)
class SyntheticData:
    """The three exports, shaped as written (transactions: strings as in the CSV), plus
    the ground truth per customer for tests (never written: no export carries it)."""

    transactions: pl.DataFrame
    usage: pl.DataFrame
    relations: pl.DataFrame
    customers: pl.DataFrame


@dataclass(frozen=True)
class SampleResult:
    """What ``make_sample`` wrote: paths and row counts per file, and the messy rows."""

    paths: dict[str, Path]
    rows: dict[str, int]
    customers: int
    seed: int
    start: date
    end: date
    messy_rows: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "seed": self.seed,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "files": {
                name: {"path": str(path), "rows": self.rows[name]}
                for name, path in self.paths.items()
            },
            "messy_rows": self.messy_rows,
        }


def generate(
    customers: int,
    *,
    seed: int = 7,
    end: date = date(2026, 10, 31),
    months: int = 24,
    messy_share: float = 0.015,
    business: str = "subscription",
) -> SyntheticData:
    """Simulate ``customers`` customers signing up over ``months`` months up to ``end``.

    The same arguments give the same frames, bit for bit; ``messy_share=0`` gives
    clean data (no rejects, no duplicates).
    """
    world = _simulate(business, customers, seed=seed, end=end, months=months)
    lay = mess.layout(world, messy_share)
    transactions = pl.concat(list(transaction_chunks(world, lay, CHUNK_ROWS)))
    usage_frames = list(usage_chunks(world))
    usage = pl.concat(usage_frames) if usage_frames else empty_usage()
    return SyntheticData(transactions, usage, relations_frame(world), world.truth)


def write_sample(
    out_dir: Path,
    customers: int,
    *,
    seed: int = 7,
    end: date = date(2026, 10, 31),
    months: int = 24,
    messy_share: float = 0.015,
    business: str = "subscription",
) -> dict[str, Path]:
    """Write ``transactions.csv``, ``usage.csv.gz`` and ``relations.csv`` into ``out_dir``."""
    return make_sample(
        out_dir,
        customers,
        seed=seed,
        end=end,
        months=months,
        messy_share=messy_share,
        business=business,
    ).paths


def make_sample(
    out_dir: Path,
    customers: int,
    *,
    seed: int = 7,
    end: date = date(2026, 10, 31),
    months: int = 24,
    messy_share: float = 0.015,
    business: str = "subscription",
) -> SampleResult:
    """Like ``write_sample``, returning row counts and messy lines per kind too.

    Memory stays bounded by the compact simulation arrays (the files are formatted and
    written in chunks); equal arguments give equal bytes.
    """
    world = _simulate(business, customers, seed=seed, end=end, months=months)
    lay = mess.layout(world, messy_share)
    paths, rows = write_files(out_dir, world, lay)
    return SampleResult(
        paths=paths,
        rows=rows,
        customers=customers,
        seed=seed,
        start=to_date(world.start_day),
        end=end,
        messy_rows=mess.messy_counts(lay),
    )


def _simulate(business: str, customers: int, *, seed: int, end: date, months: int) -> World:
    simulate = BUSINESSES.get(business)
    if simulate is None:
        raise UsageError(
            f"unknown business {business!r}",
            hint=f"choose one of: {', '.join(BUSINESSES)}",
        )
    return simulate(customers, seed=seed, end=end, months=months)
