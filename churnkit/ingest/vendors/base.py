"""The shape every vendor export module fills in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl

from churnkit.core.errors import DataError
from churnkit.ingest.recipe import Recipe, Row


class Columns(dict[str, str]):
    """A vendor's logical column names → the export's headers, with the user's
    ``--map canonical=COLUMN`` applied on top."""


@dataclass(frozen=True)
class Vendor:
    name: str  # e.g. "stripe-payments"
    label: str  # e.g. "Stripe payments"
    headers: tuple[str, ...]  # the export's columns, in the vendor's order
    signature: frozenset[str]  # columns that identify the export
    columns: Mapping[str, str]  # logical name → header, overridable with --map
    build: Callable[[Row, Columns], Recipe]
    becomes: tuple[tuple[str, str], ...] = ()  # (columns, what they become), for the docs

    @property
    def family(self) -> str:
        return self.name.split("-")[0]

    def recipe(self, row: Row, explicit: Mapping[str, str]) -> Recipe:
        cols = Columns({**self.columns, **{k: v for k, v in explicit.items() if k in self.columns}})
        missing = [h for h in self.signature | set(cols.values()) if h not in row.schema]
        required = [h for h in missing if h in self.signature or h in explicit.values()]
        if required:
            raise DataError(
                f"the {self.label} export needs column(s) {', '.join(map(repr, sorted(required)))}",
                hint="check the export, or choose another --source (or --source generic)",
            )
        return self.build(row, cols)


def first_of(*exprs: pl.Expr) -> pl.Expr:
    return pl.coalesce(*exprs)


def negated(expr: pl.Expr) -> pl.Expr:
    return -expr.abs()
