"""Chargebee exports: subscriptions, invoices and transactions (``object.field`` headers).

A subscription row becomes a signup (with its plan), a cancel when it is cancelled, and a
failed payment when it has dues. A cancellation for non-payment (``not_paid``,
``no_card``) is an involuntary end, so it becomes ``payment_failed``, not ``cancel``.
"""

from __future__ import annotations

import polars as pl

from churnkit.core.schema import EventKind as K
from churnkit.ingest.recipe import Event, Recipe, Row
from churnkit.ingest.vendors.base import Columns, Vendor, negated

SUBSCRIPTIONS_HEADERS = (
    "subscription.id", "subscription.customer_id", "subscription.plan_id",
    "subscription.plan_quantity", "subscription.plan_unit_price", "subscription.currency_code",
    "subscription.status", "subscription.trial_start", "subscription.trial_end",
    "subscription.current_term_start", "subscription.current_term_end",
    "subscription.created_at", "subscription.started_at", "subscription.activated_at",
    "subscription.cancelled_at", "subscription.cancel_reason",
    "subscription.cancel_reason_code", "subscription.due_invoices_count",
    "subscription.due_since", "subscription.total_dues", "subscription.mrr",
    "subscription.billing_period", "subscription.billing_period_unit", "customer.first_name",
    "customer.last_name", "customer.email", "customer.company",
)  # fmt: skip
INVOLUNTARY = ("not_paid", "no_card")


def _subscriptions(row: Row, c: Columns) -> Recipe:
    status = row.text(c["status"]).str.to_lowercase()
    sub_id = row.text(c["transaction_id"])
    plan = row.text(c["plan"])
    reason = pl.coalesce(row.text(c["reason_code"]), row.text(c["reason"]))
    involuntary = row.text(c["reason"]).str.to_lowercase().is_in(INVOLUNTARY).fill_null(False)
    signup = Event(
        kind=pl.lit(K.SIGNUP.value),
        ts=(c["ts"], c["created"]),
        plan=plan,
        quantity=row.number(c["quantity"]),
        transaction_id=sub_id,
        status=c["status"],
        known=frozenset({"future", "in_trial", "active", "non_renewing", "paused", "cancelled"}),
    )
    cancel = Event(
        kind=pl.when(involuntary)
        .then(pl.lit(K.PAYMENT_FAILED.value))
        .otherwise(pl.lit(K.CANCEL.value)),
        ts=c["cancelled_at"],
        when=status == "cancelled",
        plan=plan,
        reason=reason,
        transaction_id=sub_id,
    )
    dues = Event(
        kind=pl.lit(K.PAYMENT_FAILED.value),
        ts=c["due_since"],
        when=row.text(c["due_since"]).is_not_null(),
        amount=row.amount(c["total_dues"]),
        plan=plan,
        reason=pl.lit("dues unpaid"),
        transaction_id=sub_id,
    )
    return Recipe(
        source="chargebee-subscriptions",
        label="Chargebee subscriptions",
        customer_id=row.text(c["customer_id"]),
        events=(signup, cancel, dues),
        card_expiry=row.card_expiry(None),
        mapping=dict(c),
        attributes=tuple(
            h
            for h in (
                "subscription.currency_code",
                "subscription.mrr",
                "subscription.billing_period_unit",
            )
            if row.has(h)
        ),
        known=frozenset(SUBSCRIPTIONS_HEADERS),
        note="a subscriptions export gives signups, cancels and dues; ingest the "
        "invoices or transactions export too, for the payments themselves",
    )


INVOICES_HEADERS = (
    "invoice.id", "invoice.customer_id", "invoice.subscription_id", "invoice.recurring",
    "invoice.status", "invoice.date", "invoice.due_date", "invoice.paid_at",
    "invoice.currency_code", "invoice.total", "invoice.amount_paid",
    "invoice.amount_adjusted", "invoice.credits_applied", "invoice.amount_due",
    "invoice.dunning_status", "customer.email", "customer.company",
)  # fmt: skip
INVOICE_STATUSES = {
    "paid": K.PURCHASE,
    "payment_due": K.PAYMENT_FAILED,
    "not_paid": K.PAYMENT_FAILED,
    "voided": K.OTHER,
    "posted": K.OTHER,
    "pending": K.OTHER,
}


def _invoices(row: Row, c: Columns) -> Recipe:
    kind = row.kind(c["status"], INVOICE_STATUSES)
    paid = kind == K.PURCHASE.value
    invoice = Event(
        kind=kind,
        ts=(c["paid_at"], c["ts"]),
        amount=pl.when(paid).then(row.amount(c["amount_paid"])).otherwise(row.amount(c["amount"])),
        reason=pl.when(kind == K.PAYMENT_FAILED.value).then(row.text(c["status"])),
        transaction_id=row.text(c["transaction_id"]),
        status=c["status"],
        known=frozenset(row.lookup(INVOICE_STATUSES)),
    )
    return Recipe(
        source="chargebee-invoices",
        label="Chargebee invoices",
        customer_id=row.text(c["customer_id"]),
        events=(invoice,),
        card_expiry=row.card_expiry(None),
        mapping=dict(c),
        attributes=tuple(
            h for h in ("invoice.currency_code", "invoice.subscription_id") if row.has(h)
        ),
        known=frozenset(INVOICES_HEADERS),
    )


TRANSACTIONS_HEADERS = (
    "transaction.id", "transaction.customer_id", "transaction.subscription_id",
    "transaction.type", "transaction.status", "transaction.date", "transaction.amount",
    "transaction.currency_code", "transaction.payment_method", "transaction.gateway",
    "transaction.id_at_gateway", "transaction.error_code", "transaction.error_text",
    "transaction.reference_number", "customer.email",
)  # fmt: skip


def _transactions(row: Row, c: Columns) -> Recipe:
    kind_of = row.text(c["type"]).str.to_lowercase()
    status = row.text(c["status"]).str.to_lowercase()
    kind = (
        pl.when((kind_of == "payment") & (status == "success"))
        .then(pl.lit(K.PURCHASE.value))
        .when((kind_of == "payment") & (status == "failure"))
        .then(pl.lit(K.PAYMENT_FAILED.value))
        .when(kind_of.is_in(["refund", "payment_reversal"]) & (status == "success"))
        .then(pl.lit(K.REFUND.value))
        .otherwise(pl.lit(K.OTHER.value))
    )
    amount = row.amount(c["amount"])
    transaction = Event(
        kind=kind,
        ts=c["ts"],
        amount=pl.when(kind == K.REFUND.value).then(negated(amount)).otherwise(amount),
        reason=pl.when(kind == K.PAYMENT_FAILED.value).then(
            pl.coalesce(row.text(c["reason_code"]), row.text(c["reason"]))
        ),
        transaction_id=row.text(c["transaction_id"]),
    )
    return Recipe(
        source="chargebee-transactions",
        label="Chargebee transactions",
        customer_id=row.text(c["customer_id"]),
        events=(transaction,),
        card_expiry=row.card_expiry(None),
        mapping=dict(c),
        attributes=tuple(
            h
            for h in (
                "transaction.currency_code",
                "transaction.payment_method",
                "transaction.subscription_id",
            )
            if row.has(h)
        ),
        known=frozenset(TRANSACTIONS_HEADERS),
    )


VENDORS = [
    Vendor(
        name="chargebee-subscriptions",
        label="Chargebee subscriptions",
        headers=SUBSCRIPTIONS_HEADERS,
        signature=frozenset(
            {
                "subscription.id",
                "subscription.customer_id",
                "subscription.plan_id",
                "subscription.status",
                "subscription.created_at",
                "subscription.cancelled_at",
            }
        ),
        columns={
            "customer_id": "subscription.customer_id",
            "ts": "subscription.started_at",
            "created": "subscription.created_at",
            "cancelled_at": "subscription.cancelled_at",
            "due_since": "subscription.due_since",
            "total_dues": "subscription.total_dues",
            "status": "subscription.status",
            "plan": "subscription.plan_id",
            "quantity": "subscription.plan_quantity",
            "reason": "subscription.cancel_reason",
            "reason_code": "subscription.cancel_reason_code",
            "transaction_id": "subscription.id",
        },
        build=_subscriptions,
        becomes=(
            ("subscription.started_at (else created_at), plan_id", "a signup with its plan"),
            (
                "status cancelled, cancelled_at, cancel_reason",
                "a cancel (payment_failed when the reason is not_paid or no_card)",
            ),
            ("due_since, total_dues", "a payment_failed"),
        ),
    ),
    Vendor(
        name="chargebee-invoices",
        label="Chargebee invoices",
        headers=INVOICES_HEADERS,
        signature=frozenset(
            {
                "invoice.id",
                "invoice.customer_id",
                "invoice.status",
                "invoice.date",
                "invoice.total",
                "invoice.amount_paid",
            }
        ),
        columns={
            "customer_id": "invoice.customer_id",
            "ts": "invoice.date",
            "paid_at": "invoice.paid_at",
            "amount": "invoice.total",
            "amount_paid": "invoice.amount_paid",
            "status": "invoice.status",
            "transaction_id": "invoice.id",
        },
        build=_invoices,
        becomes=(
            ("invoice.customer_id", "customer_id"),
            ("status paid (at paid_at)", "purchase of amount_paid"),
            ("status payment_due / not_paid (at date)", "payment_failed of total"),
            ("status voided / posted / pending", "other"),
        ),
    ),
    Vendor(
        name="chargebee-transactions",
        label="Chargebee transactions",
        headers=TRANSACTIONS_HEADERS,
        signature=frozenset(
            {
                "transaction.id",
                "transaction.customer_id",
                "transaction.type",
                "transaction.status",
                "transaction.date",
                "transaction.amount",
            }
        ),
        columns={
            "customer_id": "transaction.customer_id",
            "ts": "transaction.date",
            "amount": "transaction.amount",
            "type": "transaction.type",
            "status": "transaction.status",
            "reason": "transaction.error_text",
            "reason_code": "transaction.error_code",
            "transaction_id": "transaction.id",
        },
        build=_transactions,
        becomes=(
            (
                "type payment, status success / failure",
                "purchase / payment_failed (error_code as reason)",
            ),
            ("type refund or payment_reversal, status success", "refund"),
            ("authorization, voided, in_progress, ...", "other"),
        ),
    ),
]
