"""Shopify's orders export: one order spans several line-item rows, and only the first
carries the order's status and totals.

The rows of an order (same ``Name``) become one order event: its kind from
``Financial Status``, its amount the order ``Total``, its quantity the sum of the line
items and its plan the first line item's name. A refunded order is a purchase and a
refund of ``Refunded Amount``, both dated at the order (the export has no refund date);
voided, pending and authorized orders moved no money and are ``other``.
"""

from __future__ import annotations

import polars as pl

from churnkit.core.schema import EventKind as K
from churnkit.ingest.recipe import Event, Group, Recipe, Row
from churnkit.ingest.vendors.base import Columns, Vendor, negated

ORDERS_HEADERS = (
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at",
    "Accepts Marketing", "Currency", "Subtotal", "Shipping", "Taxes", "Total",
    "Discount Code", "Discount Amount", "Shipping Method", "Created at", "Lineitem quantity",
    "Lineitem name", "Lineitem price", "Lineitem compare at price", "Lineitem sku",
    "Lineitem requires shipping", "Lineitem taxable", "Lineitem fulfillment status",
    "Billing Name", "Billing Street", "Billing Address1", "Billing Address2",
    "Billing Company", "Billing City", "Billing Zip", "Billing Province", "Billing Country",
    "Billing Phone", "Shipping Name", "Shipping Street", "Shipping Address1",
    "Shipping Address2", "Shipping Company", "Shipping City", "Shipping Zip",
    "Shipping Province", "Shipping Country", "Shipping Phone", "Notes", "Note Attributes",
    "Cancelled at", "Payment Method", "Payment Reference", "Refunded Amount", "Vendor",
    "Outstanding Balance", "Employee", "Location", "Device ID", "Id", "Tags", "Risk Level",
    "Source", "Lineitem discount", "Tax 1 Name", "Tax 1 Value", "Tax 2 Name", "Tax 2 Value",
    "Tax 3 Name", "Tax 3 Value", "Tax 4 Name", "Tax 4 Value", "Tax 5 Name", "Tax 5 Value",
    "Phone", "Receipt Number", "Duties", "Billing Province Name", "Shipping Province Name",
    "Payment ID", "Payment Terms Name", "Next Payment Due At", "Payment References",
)  # fmt: skip
FINANCIAL_STATUSES = {
    "paid": K.PURCHASE,
    "partially_paid": K.PURCHASE,
    "partially_refunded": K.PURCHASE,  # the refund is a second event
    "refunded": K.PURCHASE,
    "voided": K.OTHER,
    "pending": K.OTHER,
    "authorized": K.OTHER,
    "expired": K.OTHER,
}


def _orders(row: Row, c: Columns) -> Recipe:
    status = row.text(c["status"]).str.to_lowercase()
    kind = row.kind(c["status"], FINANCIAL_STATUSES)
    total = row.amount(c["amount"])
    refunded = row.amount(c["refunded"])
    order_id = row.text(c["transaction_id"])
    order = Event(
        kind=kind,
        ts=c["ts"],
        amount=total,
        transaction_id=order_id,
        status=c["status"],
        known=frozenset(row.lookup(FINANCIAL_STATUSES)),
    )
    refund = Event(
        kind=pl.lit(K.REFUND.value),
        ts=c["ts"],
        when=status.is_in(["refunded", "partially_refunded"]).fill_null(False),
        amount=negated(pl.when(refunded.fill_null(0) > 0).then(refunded).otherwise(total)),
        reason=status,
        transaction_id=order_id,
    )
    return Recipe(
        source="shopify-orders",
        label="Shopify orders",
        customer_id=row.text(c["customer_id"]),
        events=(order, refund),
        card_expiry=row.card_expiry(None),
        mapping={k: v for k, v in c.items() if k not in ("refunded",)},
        attributes=tuple(
            h
            for h in ("Currency", "Discount Code", "Discount Amount", "Source", "Tags")
            if row.has(h)
        ),
        known=frozenset(ORDERS_HEADERS),
        group=Group(
            key=c["transaction_id"],
            head=row.text(c["status"]).is_not_null(),
            quantity=row.number(c["quantity"]),
            plan=row.text(c["plan"]),
        ),
    )


VENDORS = [
    Vendor(
        name="shopify-orders",
        label="Shopify orders",
        headers=ORDERS_HEADERS,
        signature=frozenset(
            {
                "Name",
                "Email",
                "Financial Status",
                "Paid at",
                "Fulfillment Status",
                "Total",
                "Created at",
                "Lineitem quantity",
                "Lineitem name",
            }
        ),
        columns={
            "customer_id": "Email",
            "ts": "Created at",
            "amount": "Total",
            "refunded": "Refunded Amount",
            "status": "Financial Status",
            "transaction_id": "Name",
            "quantity": "Lineitem quantity",
            "plan": "Lineitem name",
        },
        build=_orders,
        becomes=(
            (
                "rows with the same Name",
                "one order; Lineitem quantity summed, first Lineitem name as plan",
            ),
            ("Email", "customer_id"),
            ("Created at", "ts"),
            ("Financial Status paid / partially_paid", "purchase of Total"),
            (
                "Financial Status refunded / partially_refunded",
                "purchase of Total and a refund of Refunded Amount",
            ),
            ("Financial Status voided / pending / authorized / expired", "other"),
        ),
    ),
]
