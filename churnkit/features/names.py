"""Feature names that other parts of churnkit read by name.

Segments, training baselines, scoring checks and the default retention playbook
look these columns up, so they are spelled once, here; the families that make
them use the same constants. Windowed names use the default windows
(``features.windows``).
"""

from __future__ import annotations

import re

# recency
RECENCY_DAYS = "recency_days"
TENURE_DAYS = "tenure_days"
PURCHASES_TOTAL = "purchases_total"
REVENUE_TOTAL = "revenue_total"
PURCHASES_90D = "purchases_90d"
REVENUE_TREND_90D = "revenue_trend_90d"
# gaps
GAP_MEDIAN_DAYS = "gap_median_days"
GAP_CV = "gap_cv"
OVERDUE_RATIO = "overdue_ratio"
# failures
FAILED_PAYMENTS_30D = "failed_payments_30d"
FAILED_PAYMENTS_90D = "failed_payments_90d"
FAILED_PAYMENTS_UNRECOVERED = "failed_payments_unrecovered"
FAILED_CARD_EXPIRED = "failed_card_expired"
FAILED_INSUFFICIENT_FUNDS = "failed_insufficient_funds"
# complaints
COMPLAINTS_90D = "complaints_90d"
COMPLAINTS_UNRESOLVED = "complaints_unresolved"
# plan
PRICE_INCREASES = "price_increases"
LAST_PRICE_INCREASE_PCT = "last_price_increase_pct"
# card
DAYS_TO_CARD_EXPIRY = "days_to_card_expiry"
# network
RELATED_CUSTOMERS = "related_customers"
RELATED_ACTIVE = "related_active"
RELATED_CHURNED = "related_churned"
NETWORK_STICKINESS = "network_stickiness"
NETWORK_FEATURES = (RELATED_CUSTOMERS, RELATED_ACTIVE, RELATED_CHURNED, NETWORK_STICKINESS)


def slug(name: str) -> str:
    """A source name as a column-name fragment: ``"Report Run"`` → ``report_run``."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "x"
