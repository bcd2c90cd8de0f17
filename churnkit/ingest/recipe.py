"""What a source's rows become: a ``Recipe`` of canonical events.

A plain export yields one event per row, its columns found by header names
(``generic``). A recognised vendor export says more: a subscription row yields a
signup, a cancel and a failed payment, each with its own date column; order line items
are grouped into one order. Recipes are built from Polars expressions over the source's
columns (``Row`` gives them parsed), so the whole file still runs as one query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from churnkit.core import schema as s
from churnkit.ingest.columns import STATUS
from churnkit.ingest.parsing import (
    card_expiry_from_parts,
    card_expiry_from_text,
    on_distinct,
    parse_amount,
    parse_kind,
    parse_number,
    status_lookup,
)


@dataclass(frozen=True)
class Row:
    """Parsed access to one source's columns, by their names in the scan."""

    schema: Mapping[str, pl.DataType]
    decimal: str
    status_map: Mapping[str, s.EventKind] = field(default_factory=dict)
    # Columns that repeat a few values → the values the sample holds, parsed once.
    low_card: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def has(self, column: str | None) -> bool:
        return column is not None and column in self.schema

    def text(self, column: str | None) -> pl.Expr:
        """Stripped text; blank cells and absent columns are null."""
        if not self.has(column):
            return pl.lit(None, dtype=pl.String)
        assert column is not None
        if column in self.low_card:
            return on_distinct(
                pl.col(column).cast(pl.String), _blank_is_null, pl.String(), self.low_card[column]
            )
        return _blank_is_null(pl.col(column).cast(pl.String))

    def stripped(self, column: str) -> pl.Expr:
        """An attribute as written, without surrounding spaces (blank stays blank)."""
        if column in self.low_card:
            return on_distinct(
                pl.col(column).cast(pl.String),
                lambda e: e.str.strip_chars(),
                pl.String(),
                self.low_card[column],
            )
        return pl.col(column).cast(pl.String).str.strip_chars()

    def amount(self, column: str | None) -> pl.Expr:
        """Money; a blank cell is 0.0, a malformed one null (rejected)."""
        if not self.has(column):
            return pl.lit(0.0)
        assert column is not None
        return parse_amount(pl.col(column), self.schema[column], decimal=self.decimal)

    def number(self, column: str | None) -> pl.Expr:
        """A plain number; blank is null, malformed is NaN (rejected)."""
        if not self.has(column):
            return pl.lit(None, dtype=pl.Float64)
        assert column is not None
        return parse_number(pl.col(column), self.schema[column])

    def kind(
        self,
        column: str | None,
        statuses: Mapping[str, s.EventKind] | None = None,
        *,
        blank: s.EventKind = s.EventKind.PURCHASE,
    ) -> pl.Expr:
        """Status text → kind: the defaults, then ``statuses`` (a vendor's own words),
        then the user's ``ingest.status_map``; unknown statuses become ``other``."""
        if not self.has(column):
            return pl.lit(blank.value)
        lookup = self.lookup(statuses)

        def kind_of(raw: pl.Expr) -> pl.Expr:
            raw = _blank_is_null(raw)
            return (
                pl.when(raw.is_null()).then(pl.lit(blank.value)).otherwise(parse_kind(raw, lookup))
            )

        assert column is not None
        if column in self.low_card:
            return on_distinct(
                pl.col(column).cast(pl.String), kind_of, pl.String(), self.low_card[column]
            )
        return kind_of(pl.col(column).cast(pl.String))

    def lookup(self, statuses: Mapping[str, s.EventKind] | None = None) -> dict[str, str]:
        """Normalised status → kind: defaults < a vendor's own words < the user's map."""
        return status_lookup({**(statuses or {}), **self.status_map})

    def is_in(self, column: str | None, values: Sequence[str]) -> pl.Expr:
        """Case-insensitive membership test on a status-like column."""
        if not self.has(column):
            return pl.lit(False)
        return self.text(column).str.to_lowercase().is_in(list(values)).fill_null(False)

    def card_expiry(
        self, column: str | None, month: str | None = None, year: str | None = None
    ) -> tuple[pl.Expr, pl.Expr]:
        """(first day of the month after expiry, the raw text) from one column or two."""
        if self.has(column):
            assert column is not None
            dtype = self.schema[column]
            if dtype.is_temporal():
                value = card_expiry_from_parts(pl.col(column).dt.month(), pl.col(column).dt.year())
            elif column in self.low_card:
                value = on_distinct(
                    pl.col(column).cast(pl.String),
                    lambda e: card_expiry_from_text(_blank_is_null(e)),
                    pl.Date(),
                    self.low_card[column],
                )
            else:
                value = card_expiry_from_text(self.text(column))
            return value.cast(pl.Date), self.text(column)
        if self.has(month) and self.has(year):
            value = card_expiry_from_parts(self.text(month), self.text(year))
            raw = pl.concat_str(self.text(month), self.text(year), separator="/")
            return value.cast(pl.Date), raw
        return pl.lit(None, dtype=pl.Date), pl.lit(None, dtype=pl.String)


def _blank_is_null(expr: pl.Expr) -> pl.Expr:
    value = expr.str.strip_chars()
    return pl.when(value == "").then(None).otherwise(value)


@dataclass(frozen=True)
class Event:
    """One canonical event a source row may yield."""

    kind: pl.Expr  # kind value as text
    ts: str | tuple[str, ...]  # the source column holding its date (first non-blank of several)
    when: pl.Expr | None = None  # the rows that yield it (None: every row)
    amount: pl.Expr | None = None  # Float64; null means unparseable (None: 0.0)
    quantity: pl.Expr | None = None  # Float64; NaN means unparseable
    plan: pl.Expr | None = None
    reason: pl.Expr | None = None
    event: pl.Expr | None = None
    transaction_id: pl.Expr | None = None
    status: str | None = None  # the status column, to count statuses kept as `other`
    known: frozenset[str] = frozenset()  # normalised statuses given a kind on purpose

    @property
    def ts_columns(self) -> tuple[str, ...]:
        return (self.ts,) if isinstance(self.ts, str) else self.ts


@dataclass(frozen=True)
class Group:
    """Rows that make one event: an order's line items, keyed by ``key``; the ``head``
    row carries the order's totals, every row may add a quantity and a product."""

    key: str
    head: pl.Expr
    quantity: pl.Expr | None = None
    plan: pl.Expr | None = None


@dataclass(frozen=True)
class Recipe:
    source: str  # "generic" or a vendor export's name
    label: str  # shown to the user
    customer_id: pl.Expr
    events: tuple[Event, ...]
    card_expiry: tuple[pl.Expr, pl.Expr]
    mapping: dict[str, str]  # canonical → source column, shown to the user
    attributes: tuple[str, ...]  # source columns kept beside the canonical ones
    known: frozenset[str] = frozenset()  # columns the recipe knows (never "unmapped")
    group: Group | None = None
    excluded: tuple[tuple[pl.Expr, str], ...] = ()  # (rows to reject, reason), e.g. test mode
    note: str | None = None

    @property
    def simple(self) -> bool:
        """One event per row and no grouping: the whole file streams in one pass."""
        return len(self.events) == 1 and self.events[0].when is None and self.group is None

    @property
    def date_columns(self) -> list[str]:
        return list(dict.fromkeys(c for e in self.events for c in e.ts_columns))


def generic_recipe(
    columns: Mapping[str, str],
    row: Row,
    *,
    headers: Sequence[str],
    default_kind: s.EventKind,
) -> Recipe:
    """One event per row, columns found by header names (``columns.map_columns``)."""

    def text(canonical: str) -> pl.Expr:
        return row.text(columns.get(canonical))

    status = columns.get(STATUS)
    event = Event(
        kind=row.kind(status, blank=default_kind) if status else pl.lit(default_kind.value),
        ts=columns[s.TS],
        amount=row.amount(columns[s.AMOUNT]) if s.AMOUNT in columns else None,
        quantity=row.number(columns.get(s.QUANTITY)),
        plan=text(s.PLAN),
        reason=text(s.REASON),
        event=text(s.EVENT),
        transaction_id=text(s.TRANSACTION_ID),
        status=status,
        known=frozenset(row.lookup()),
    )
    used = set(columns.values())
    return Recipe(
        source="generic",
        label="generic (columns found by header names)",
        customer_id=text(s.CUSTOMER_ID),
        events=(event,),
        card_expiry=row.card_expiry(
            columns.get(s.CARD_EXPIRY), columns.get(s.CARD_EXP_MONTH), columns.get(s.CARD_EXP_YEAR)
        ),
        mapping=dict(columns),
        attributes=tuple(h for h in headers if h not in used and h not in s.EVENT_SCHEMA),
    )
