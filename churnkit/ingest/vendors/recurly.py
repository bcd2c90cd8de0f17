"""Recurly's transactions export: every exchange with the payment gateway.

``type`` (purchase, refund, authorization, verify) and ``status`` (success, declined,
void, processing) together give the kind; the gateway's ``message`` explains a decline.
Dates carry a time-zone abbreviation ("2012-01-19 11:16:41 PST"); test-gateway rows
are rejected.
"""

from __future__ import annotations

import polars as pl

from churnkit.core.schema import EventKind as K
from churnkit.ingest.recipe import Event, Recipe, Row
from churnkit.ingest.vendors.base import Columns, Vendor, negated

TRANSACTIONS_HEADERS = (
    "account_code", "name", "transaction_id", "type", "amount", "tax_amount", "currency",
    "date", "status", "message", "test", "cc_type", "cvv_result", "avs_result",
    "gateway_type", "origin", "subscription_id", "invoice_number", "modified_at",
    "cc_first_6", "backup_payment_method_used",
)  # fmt: skip


def _transactions(row: Row, c: Columns) -> Recipe:
    kind_of = row.text(c["type"]).str.to_lowercase()
    status = row.text(c["status"]).str.to_lowercase()
    kind = (
        pl.when((kind_of == "purchase") & (status == "success"))
        .then(pl.lit(K.PURCHASE.value))
        .when((kind_of == "purchase") & (status == "declined"))
        .then(pl.lit(K.PAYMENT_FAILED.value))
        .when((kind_of == "refund") & (status == "success"))
        .then(pl.lit(K.REFUND.value))
        .otherwise(pl.lit(K.OTHER.value))
    )
    amount = row.amount(c["amount"])
    transaction = Event(
        kind=kind,
        ts=c["ts"],
        amount=pl.when(kind == K.REFUND.value).then(negated(amount)).otherwise(amount),
        reason=pl.when(kind == K.PAYMENT_FAILED.value).then(row.text(c["reason"])),
        transaction_id=row.text(c["transaction_id"]),
    )
    return Recipe(
        source="recurly-transactions",
        label="Recurly transactions",
        customer_id=row.text(c["customer_id"]),
        events=(transaction,),
        card_expiry=row.card_expiry(None),
        mapping=dict(c),
        attributes=tuple(h for h in ("currency", "origin", "subscription_id") if row.has(h)),
        known=frozenset(TRANSACTIONS_HEADERS),
        excluded=((row.text("test").str.to_lowercase() == "true", "test-gateway transaction"),),
    )


VENDORS = [
    Vendor(
        name="recurly-transactions",
        label="Recurly transactions",
        headers=TRANSACTIONS_HEADERS,
        signature=frozenset(
            {"account_code", "transaction_id", "type", "amount", "date", "status", "message"}
        ),
        columns={
            "customer_id": "account_code",
            "ts": "date",
            "amount": "amount",
            "type": "type",
            "status": "status",
            "reason": "message",
            "transaction_id": "transaction_id",
        },
        build=_transactions,
        becomes=(
            ("account_code", "customer_id"),
            ("date (with its zone abbreviation)", "ts"),
            (
                "type purchase, status success / declined",
                "purchase / payment_failed (message as reason)",
            ),
            ("type refund, status success", "refund"),
            ("authorization, verify, void, processing", "other"),
            ("test TRUE", "rejected (test-gateway transaction)"),
        ),
    ),
]
