"""The canonical vocabulary: column names, dtypes and enums of the event log.

No other module spells a canonical column name as a bare string; they import
these constants, so a rename is one edit and a typo is an import error.
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl

from churnkit.core.errors import MissingColumnError

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

# Per-customer outputs: labels, predictions, segments and actions share these names.
CHURN_TYPE = "churn_type"
P_CHURN = "p_churn"
P_VOLUNTARY = "p_voluntary"
P_INVOLUNTARY = "p_involuntary"
RISK_TIER = "risk_tier"
VALUE = "value"
VALUE_AT_RISK = "value_at_risk"
SEGMENT = "segment"
CUSTOMER_TYPE = "customer_type"
STRATEGY = "strategy"
VALUE_TIER = "value_tier"
LIFECYCLE_STAGE = "lifecycle_stage"
RFM_SEGMENT = "rfm_segment"
# The churn kind seen in the horizon after the as-of, when the data reaches that far.
OBSERVED_CHURN = "observed_churn"
DRIVERS = ("driver_1", "driver_2", "driver_3")
DRIVER_FEATURES = "driver_features"
ACTION = "action"
ACTION_REASON = "action_reason"
AS_OF = "as_of"
# The `predict` columns of docs/contract.md, in the order predictions are written.
PREDICTION_COLUMNS = (
    CUSTOMER_ID,
    P_CHURN,
    P_VOLUNTARY,
    P_INVOLUNTARY,
    CHURN_TYPE,
    RISK_TIER,
    VALUE,
    VALUE_AT_RISK,
    SEGMENT,
    *DRIVERS,
    ACTION,
    ACTION_REASON,
    CUSTOMER_TYPE,
    STRATEGY,
    VALUE_TIER,
    LIFECYCLE_STAGE,
    DRIVER_FEATURES,
    AS_OF,
)

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
