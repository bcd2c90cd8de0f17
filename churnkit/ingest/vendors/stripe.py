"""Stripe dashboard exports: payments (charges), invoices and subscriptions.

Amounts are in the currency's major unit, dates in UTC (``Created (UTC)``). A refunded
charge is a purchase and a refund of the refunded amount, both dated at the charge (the
export has no refund date); test-mode rows are rejected.
"""

from __future__ import annotations

import polars as pl

from churnkit.core.schema import EventKind as K
from churnkit.ingest.recipe import Event, Recipe, Row
from churnkit.ingest.vendors.base import Columns, Vendor, negated

PAYMENTS_HEADERS = (
    "id", "Description", "Seller Message", "Created (UTC)", "Amount", "Amount Refunded",
    "Currency", "Converted Amount", "Converted Amount Refunded", "Fee", "Tax",
    "Converted Currency", "Mode", "Status", "Statement Descriptor", "Customer ID",
    "Customer Description", "Customer Email", "Captured", "Card ID", "Card Last4",
    "Card Brand", "Card Funding", "Card Exp Month", "Card Exp Year", "Card Name",
    "Card Address Line1", "Card Address Line2", "Card Address City", "Card Address State",
    "Card Address Country", "Card Address Zip", "Card Issue Country", "Card Fingerprint",
    "Card CVC Status", "Card AVS Zip Status", "Card AVS Line1 Status",
    "Card Tokenization Method", "Disputed Amount", "Dispute Status", "Dispute Reason",
    "Dispute Date (UTC)", "Dispute Evidence Due (UTC)", "Invoice ID", "Payment Source Type",
    "Destination", "Transfer", "Transfer Group", "PaymentIntent ID",
)  # fmt: skip
PAYMENT_STATUSES = {
    "paid": K.PURCHASE,
    "succeeded": K.PURCHASE,
    "partially_refunded": K.PURCHASE,
    "refunded": K.PURCHASE,  # the refund is a second event
    "failed": K.PAYMENT_FAILED,
    "disputed": K.PURCHASE,  # a lost dispute is a second event (refund)
    "pending": K.OTHER,
    "uncaptured": K.OTHER,
    "requires_capture": K.OTHER,
    "canceled": K.OTHER,
}


def _payments(row: Row, c: Columns) -> Recipe:
    status = row.text(c["status"]).str.to_lowercase().str.replace_all(r"[\s\-]+", "_")
    captured = row.text(c["captured"]).str.to_lowercase()
    kind = (
        pl.when(captured == "false")
        .then(pl.lit(K.OTHER.value))  # authorised, never captured: no money moved
        .otherwise(row.kind(c["status"], PAYMENT_STATUSES))
    )
    amount = row.amount(c["amount"])
    refunded = row.amount(c["amount_refunded"])
    lost = row.text(c["dispute_status"]).str.to_lowercase() == "lost"
    disputed = row.amount(c["disputed_amount"])
    purchase = Event(
        kind=kind,
        ts=c["ts"],
        amount=amount,
        reason=pl.when(status == "failed").then(row.text(c["reason"])),
        transaction_id=row.text(c["transaction_id"]),
        plan=row.text(c["plan"]),
        status=c["status"],
        known=frozenset(row.lookup(PAYMENT_STATUSES)),
    )
    refund = Event(
        kind=pl.lit(K.REFUND.value),
        ts=c["ts"],
        when=(kind == K.PURCHASE.value) & (refunded.fill_null(0) > 0),
        amount=negated(refunded),
        reason=pl.lit("refunded"),
        transaction_id=row.text(c["transaction_id"]),
    )
    chargeback = Event(
        kind=pl.lit(K.REFUND.value),
        ts=c["ts"],
        when=(kind == K.PURCHASE.value) & lost.fill_null(False),
        amount=negated(pl.when(disputed.fill_null(0) > 0).then(disputed).otherwise(amount)),
        reason=pl.concat_str(pl.lit("chargeback: "), row.text(c["dispute_reason"]).fill_null("")),
        transaction_id=row.text(c["transaction_id"]) + ":dispute",
    )
    return Recipe(
        source="stripe-payments",
        label="Stripe payments",
        customer_id=pl.coalesce(row.text(c["customer_id"]), row.text(c["customer_email"])),
        events=(purchase, refund, chargeback),
        card_expiry=row.card_expiry(None, c["card_exp_month"], c["card_exp_year"]),
        mapping={k: v for k, v in c.items() if k in _SHOWN},
        attributes=_present(row, ("Currency", "Card Brand", "Card Funding", "Card Issue Country")),
        known=frozenset(PAYMENTS_HEADERS),
        excluded=((row.text("Mode").str.to_lowercase() == "test", "test-mode payment"),),
    )


INVOICES_HEADERS = (
    "id", "Number", "Customer", "Customer Name", "Customer Email", "Amount Due",
    "Amount Paid", "Amount Remaining", "Attempt Count", "Attempted", "Billing",
    "Billing Reason", "Charge", "Closed", "Currency", "Date (UTC)", "Description",
    "Due Date (UTC)", "Finalized At (UTC)", "Paid", "Period End (UTC)", "Period Start (UTC)",
    "Receipt Number", "Status", "Subscription", "Subtotal", "Tax", "Total",
)  # fmt: skip
INVOICE_STATUSES = {
    "paid": K.PURCHASE,
    "uncollectible": K.PAYMENT_FAILED,
    "open": K.OTHER,
    "draft": K.OTHER,
    "void": K.OTHER,
}


def _invoices(row: Row, c: Columns) -> Recipe:
    status = row.text(c["status"]).str.to_lowercase()
    attempts = row.number(c["attempt_count"]).fill_nan(None).fill_null(0)
    failed_open = (status == "open") & (attempts > 0)
    kind = (
        pl.when(failed_open)
        .then(pl.lit(K.PAYMENT_FAILED.value))
        .otherwise(row.kind(c["status"], INVOICE_STATUSES))
    )
    amount = pl.when(kind == K.PURCHASE.value).then(row.amount(c["amount_paid"]))
    invoice = Event(
        kind=kind,
        ts=c["ts"],
        amount=amount.otherwise(row.amount(c["amount"])),
        reason=pl.when(kind == K.PAYMENT_FAILED.value).then(
            pl.concat_str(pl.lit("unpaid after "), attempts.cast(pl.Int64), pl.lit(" attempts"))
        ),
        transaction_id=row.text(c["transaction_id"]),
        plan=row.text(c["plan"]),
        status=c["status"],
        known=frozenset(row.lookup(INVOICE_STATUSES)),
    )
    return Recipe(
        source="stripe-invoices",
        label="Stripe invoices",
        customer_id=pl.coalesce(row.text(c["customer_id"]), row.text(c["customer_email"])),
        events=(invoice,),
        card_expiry=row.card_expiry(None),
        mapping={k: v for k, v in c.items() if k in _SHOWN},
        attributes=_present(row, ("Currency", "Billing", "Billing Reason", "Subscription")),
        known=frozenset(INVOICES_HEADERS),
    )


SUBSCRIPTIONS_HEADERS = (
    "id", "Customer ID", "Customer Description", "Customer Email", "Plan", "Product",
    "Quantity", "Currency", "Interval", "Amount", "Status", "Created (UTC)", "Start (UTC)",
    "Current Period Start (UTC)", "Current Period End (UTC)", "Trial Start (UTC)",
    "Trial End (UTC)", "Application Fee Percent", "Coupon", "Tax Percent",
    "Canceled At (UTC)", "Cancel At Period End", "Ended At (UTC)",
)  # fmt: skip


def _subscriptions(row: Row, c: Columns) -> Recipe:
    status = row.text(c["status"]).str.to_lowercase()
    sub_id = row.text(c["transaction_id"])
    plan = row.text(c["plan"])
    signup = Event(
        kind=pl.lit(K.SIGNUP.value),
        ts=(c["ts"], c["created"]),
        plan=plan,
        quantity=row.number(c["quantity"]),
        transaction_id=sub_id,
        status=c["status"],
        known=frozenset(
            {
                "active",
                "trialing",
                "past_due",
                "unpaid",
                "canceled",
                "incomplete",
                "incomplete_expired",
                "paused",
            }
        ),
    )
    cancel = Event(
        kind=pl.lit(K.CANCEL.value),
        ts=(c["canceled_at"], c["ended_at"]),
        when=status == "canceled",
        plan=plan,
        reason=pl.lit("canceled"),
        transaction_id=sub_id,
    )
    failed = Event(
        kind=pl.lit(K.PAYMENT_FAILED.value),
        ts=(c["period_start"], c["created"]),
        when=status.is_in(["past_due", "unpaid", "incomplete", "incomplete_expired"]),
        amount=row.amount(c["amount"]),
        plan=plan,
        reason=status,
        transaction_id=sub_id,
    )
    return Recipe(
        source="stripe-subscriptions",
        label="Stripe subscriptions",
        customer_id=pl.coalesce(row.text(c["customer_id"]), row.text(c["customer_email"])),
        events=(signup, cancel, failed),
        card_expiry=row.card_expiry(None),
        mapping={k: v for k, v in c.items() if k in _SHOWN},
        attributes=_present(row, ("Currency", "Interval", "Amount", "Product", "Coupon")),
        known=frozenset(SUBSCRIPTIONS_HEADERS),
        note="a subscriptions export gives signups, cancels and failed renewals; "
        "ingest the payments or invoices export too, for the payments themselves",
    )


_SHOWN = {"customer_id", "ts", "amount", "status", "plan", "transaction_id", "reason", "quantity"}


def _present(row: Row, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in names if row.has(n))


VENDORS = [
    Vendor(
        name="stripe-payments",
        label="Stripe payments",
        headers=PAYMENTS_HEADERS,
        signature=frozenset(
            {
                "id",
                "Created (UTC)",
                "Amount",
                "Amount Refunded",
                "Status",
                "Customer ID",
                "Captured",
            }
        ),
        columns={
            "customer_id": "Customer ID",
            "customer_email": "Customer Email",
            "ts": "Created (UTC)",
            "amount": "Amount",
            "amount_refunded": "Amount Refunded",
            "status": "Status",
            "captured": "Captured",
            "transaction_id": "id",
            "reason": "Seller Message",
            "plan": "Description",
            "card_exp_month": "Card Exp Month",
            "card_exp_year": "Card Exp Year",
            "dispute_status": "Dispute Status",
            "dispute_reason": "Dispute Reason",
            "disputed_amount": "Disputed Amount",
        },
        build=_payments,
        becomes=(
            ("Customer ID (else Customer Email)", "customer_id"),
            ("Created (UTC)", "ts"),
            ("Status Paid / Failed", "purchase / payment_failed (Seller Message as reason)"),
            ("Amount Refunded > 0", "a refund of that amount, besides the purchase"),
            ("Captured false; Pending", "other"),
            ("Dispute Status lost", "a refund (chargeback)"),
            ("Card Exp Month + Card Exp Year", "card_expiry"),
            ("Mode Test", "rejected (test-mode payment)"),
        ),
    ),
    Vendor(
        name="stripe-invoices",
        label="Stripe invoices",
        headers=INVOICES_HEADERS,
        signature=frozenset(
            {
                "id",
                "Customer",
                "Amount Due",
                "Amount Paid",
                "Attempt Count",
                "Date (UTC)",
                "Status",
                "Subscription",
            }
        ),
        columns={
            "customer_id": "Customer",
            "customer_email": "Customer Email",
            "ts": "Date (UTC)",
            "amount": "Amount Due",
            "amount_paid": "Amount Paid",
            "attempt_count": "Attempt Count",
            "status": "Status",
            "transaction_id": "id",
            "plan": "Description",
        },
        build=_invoices,
        becomes=(
            ("Customer", "customer_id"),
            ("Date (UTC)", "ts"),
            ("Status paid", "purchase of Amount Paid"),
            ("Status open with attempts; uncollectible", "payment_failed of Amount Due"),
            ("Status draft / void / open unattempted", "other"),
        ),
    ),
    Vendor(
        name="stripe-subscriptions",
        label="Stripe subscriptions",
        headers=SUBSCRIPTIONS_HEADERS,
        signature=frozenset(
            {
                "id",
                "Customer ID",
                "Plan",
                "Status",
                "Start (UTC)",
                "Current Period Start (UTC)",
                "Canceled At (UTC)",
            }
        ),
        columns={
            "customer_id": "Customer ID",
            "customer_email": "Customer Email",
            "ts": "Start (UTC)",
            "created": "Created (UTC)",
            "canceled_at": "Canceled At (UTC)",
            "ended_at": "Ended At (UTC)",
            "period_start": "Current Period Start (UTC)",
            "status": "Status",
            "plan": "Plan",
            "quantity": "Quantity",
            "amount": "Amount",
            "transaction_id": "id",
        },
        build=_subscriptions,
        becomes=(
            ("Start (UTC), Plan, Quantity", "a signup with its plan"),
            ("Status canceled, Canceled At (UTC)", "a cancel"),
            (
                "Status past_due / unpaid / incomplete",
                "a payment_failed at the current period start",
            ),
        ),
    ),
]
