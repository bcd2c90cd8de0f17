"""Paddle Billing's transactions report (columns named as in Paddle's API).

``status`` completed or paid is a purchase, past_due a failed payment (the subscription
is in dunning); draft, ready, billed and canceled transactions moved no money.
"""

from __future__ import annotations

from churnkit.core.schema import EventKind as K
from churnkit.ingest.recipe import Event, Recipe, Row
from churnkit.ingest.vendors.base import Columns, Vendor

TRANSACTIONS_HEADERS = (
    "id", "status", "invoice_number", "customer_id", "customer_email", "address_id",
    "address_country_code", "business_id", "business_name", "price_ids", "discount_ids",
    "subscription_id", "created_at", "updated_at", "billed_at", "origin", "collection_mode",
    "currency_code", "subtotal", "discount", "tax", "total", "fee", "earnings",
)  # fmt: skip
STATUSES = {
    "completed": K.PURCHASE,
    "paid": K.PURCHASE,
    "past_due": K.PAYMENT_FAILED,
    "canceled": K.OTHER,
    "draft": K.OTHER,
    "ready": K.OTHER,
    "billed": K.OTHER,
}


def _transactions(row: Row, c: Columns) -> Recipe:
    transaction = Event(
        kind=row.kind(c["status"], STATUSES),
        ts=(c["ts"], c["created"]),
        amount=row.amount(c["amount"]),
        plan=row.text(c["plan"]),
        reason=row.text(c["origin"]),
        transaction_id=row.text(c["transaction_id"]),
        status=c["status"],
        known=frozenset(row.lookup(STATUSES)),
    )
    return Recipe(
        source="paddle-transactions",
        label="Paddle transactions",
        customer_id=row.text(c["customer_id"]),
        events=(transaction,),
        card_expiry=row.card_expiry(None),
        mapping=dict(c),
        attributes=tuple(
            h for h in ("currency_code", "subscription_id", "collection_mode") if row.has(h)
        ),
        known=frozenset(TRANSACTIONS_HEADERS),
    )


VENDORS = [
    Vendor(
        name="paddle-transactions",
        label="Paddle transactions",
        headers=TRANSACTIONS_HEADERS,
        signature=frozenset(
            {
                "id",
                "status",
                "customer_id",
                "subscription_id",
                "billed_at",
                "origin",
                "collection_mode",
                "currency_code",
            }
        ),
        columns={
            "customer_id": "customer_id",
            "ts": "billed_at",
            "created": "created_at",
            "amount": "total",
            "status": "status",
            "plan": "price_ids",
            "origin": "origin",
            "transaction_id": "id",
        },
        build=_transactions,
        becomes=(
            ("customer_id", "customer_id"),
            ("billed_at (else created_at)", "ts"),
            ("status completed / paid", "purchase of total"),
            ("status past_due", "payment_failed"),
            ("status draft / ready / billed / canceled", "other"),
            ("price_ids; origin", "plan; reason"),
        ),
    ),
]
