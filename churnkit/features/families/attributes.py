"""Customer attributes carried on billing rows: card expiry, and the configured
extra columns (``features.extra_numeric`` / ``extra_categorical``).

Each takes its latest value on purchase-branch rows (purchases and plan changes,
where billing exports carry them). Numeric extras also give the share of
purchases with a non-zero value (e.g. ``discount_share``: how often the customer
buys on discount).
"""

from __future__ import annotations

import polars as pl

from churnkit.core.schema import CARD_EXPIRY, EventKind
from churnkit.features.family import Family, Needs
from churnkit.features.keys import PURCHASES
from churnkit.features.names import DAYS_TO_CARD_EXPIRY, slug
from churnkit.features.query import FeatureQuery, as_float, is_kind, last_value, ratio
from churnkit.features.spec import Sentence


def _latest(q: FeatureQuery, value: pl.Expr, tag: str) -> pl.Expr:
    """The value on the latest purchase-branch row that has one."""
    q.purchase_aggs.append(last_value(value, value.is_not_null()).alias(tag))
    return pl.col(tag)


def build_card(q: FeatureQuery) -> None:
    expiry = _latest(q, pl.col(CARD_EXPIRY), "_card")
    q.add(
        (expiry - pl.lit(q.cutoff.date())).dt.total_days().cast(pl.Float64),
        DAYS_TO_CARD_EXPIRY,
        "days until the payment card expires (negative: already expired)",
        Sentence(
            "card expires in {value}",
            noun="day",
            past="card expired {value} ago",
            today="card expires today",
        ),
        "low",
        unit="days",
    )


def build_extras(q: FeatureQuery) -> None:
    for i, col in enumerate(q.layout.extra_numeric):
        _numeric(q, i, col)
    for i, col in enumerate(q.layout.extra_categorical):
        value = pl.col(col).cast(pl.String)
        name = q.free_name(f"{slug(col)}_last")
        q.add(
            _latest(q, value, f"_xc{i}"),
            name,
            f"latest value of {col}",
            Sentence(f"{_literal(col)} {{value}}", reference="category"),
            kind="categorical",
        )


def _numeric(q: FeatureQuery, i: int, col: str) -> None:
    # Parsed once per row, read by two aggregations.
    q.purchase_rows.append(as_float(col, q.schema[col]).alias(f"_xn{i}_value"))
    value = pl.col(f"_xn{i}_value")
    name = q.free_name(f"{slug(col)}_last")
    q.add(
        _latest(q, value, f"_xn{i}"),
        name,
        f"latest value of {col}",
        Sentence(f"{_literal(col)} {{value}} on the latest purchase", number=",.2f"),
    )
    nonzero = is_kind(EventKind.PURCHASE) & (value.fill_null(0.0) != 0)
    q.purchase_aggs.append(nonzero.sum().alias(f"_xn{i}_nz"))
    share = q.free_name(f"{slug(col)}_share")
    q.add(
        ratio(pl.col(f"_xn{i}_nz").cast(pl.Float64), pl.col(PURCHASES).cast(pl.Float64)),
        share,
        f"share of purchases with a non-zero {col}",
        Sentence(f"{{value}} of purchases with {_literal(col)}", number=".0%"),
    )


def _literal(text: str) -> str:
    """Text from the data, safe inside a sentence template."""
    return text.replace("{", "{{").replace("}", "}}")


CARD = Family(
    name="card",
    needs=Needs(columns=(CARD_EXPIRY,)),
    produces=(DAYS_TO_CARD_EXPIRY,),
    build=build_card,
)
EXTRAS = Family(
    name="extras",
    # One set of features per configured extra column that holds data (none: none).
    needs=Needs(),
    produces=("{column}_last", "{column}_last_{n}", "{column}_share", "{column}_share_{n}"),
    build=build_extras,
)
