"""The canonical vocabulary: column names, dtypes and enums of the event log.

No other module spells a canonical column name as a bare string; they import
these constants, so a rename is one edit and a typo is an import error.
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl

from churnkit.errors import MissingColumnError

CUSTOMER_ID = "customer_id"
TS = "ts"
AMOUNT = "amount"
KIND = "kind"
QUANTITY = "quantity"
PLAN = "plan"
REASON = "reason"
EVENT = "event"
TRANSACTION_ID = "transaction_id"
CARD_EXPIRY = "card_expiry"
# Two source columns that ingest assembles into CARD_EXPIRY.
CARD_EXP_MONTH = "card_exp_month"
CARD_EXP_YEAR = "card_exp_year"
# Ingest bookkeeping kept in the dataset: which batch a row came from and its dedup key.
BATCH = "_batch"
DEDUP_KEY = "_dedup_key"

RELATED_CUSTOMER_ID = "related_customer_id"
RELATION_KIND = "relation_kind"
SINCE = "since"


class EventKind(StrEnum):
    PURCHASE = "purchase"
    PAYMENT_FAILED = "payment_failed"
    REFUND = "refund"
    CANCEL = "cancel"
    SIGNUP = "signup"
    COMPLAINT = "complaint"
    PLAN_CHANGE = "plan_change"
    USAGE = "usage"
    OTHER = "other"


class ChurnType(StrEnum):
    RETAINED = "retained"
    VOLUNTARY = "voluntary"
    INVOLUNTARY = "involuntary"
    # Used by binary models, when the data holds no failed payments.
    CHURNED = "churned"


KIND_DTYPE = pl.Enum([k.value for k in EventKind])

# The canonical event log after ingest; extra source columns follow as strings.
EVENT_SCHEMA: dict[str, pl.DataType] = {
    CUSTOMER_ID: pl.String(),
    TS: pl.Datetime("us"),
    AMOUNT: pl.Float64(),
    KIND: KIND_DTYPE,
    QUANTITY: pl.Float64(),
    PLAN: pl.String(),
    REASON: pl.String(),
    EVENT: pl.String(),
    TRANSACTION_ID: pl.String(),
    CARD_EXPIRY: pl.Date(),
}

# Canonical names a user may map source columns to (--map canonical=source).
MAPPABLE = (*EVENT_SCHEMA, CARD_EXP_MONTH, CARD_EXP_YEAR, "status")

RELATIONS_SCHEMA: dict[str, pl.DataType] = {
    CUSTOMER_ID: pl.String(),
    RELATED_CUSTOMER_ID: pl.String(),
    RELATION_KIND: pl.String(),
    SINCE: pl.Datetime("us"),
}


def require_columns(lf: pl.LazyFrame, columns: list[str] | tuple[str, ...], *, what: str) -> None:
    """Fail early, from the schema alone, when a frame lacks columns a step needs."""
    present = set(lf.collect_schema().names())
    missing = [c for c in columns if c not in present]
    if missing:
        raise MissingColumnError(
            f"{what} has no column {', '.join(repr(c) for c in missing)}",
            hint="re-run `churnkit ingest` or map the column with --map",
        )
