"""WooCommerce orders, as the Customer/Order/Coupon Export extension writes them (one row
per order, line items packed into ``line_items``).

Guests have ``customer_id`` 0, so their billing e-mail identifies them. A refund
(``refunded_total``) is a second event beside the purchase, dated at the order.
"""

from __future__ import annotations

import polars as pl

from churnkit.core.schema import EventKind as K
from churnkit.ingest.recipe import Event, Recipe, Row
from churnkit.ingest.vendors.base import Columns, Vendor, negated

ORDERS_HEADERS = (
    "order_id", "order_number", "order_number_formatted", "order_date", "status",
    "shipping_total", "shipping_tax_total", "fee_total", "fee_tax_total", "tax_total",
    "cart_discount", "order_discount", "discount_total", "order_total", "refunded_total",
    "order_currency", "payment_method", "shipping_method", "customer_id",
    "billing_first_name", "billing_last_name", "billing_company", "billing_email",
    "billing_phone", "billing_address_1", "billing_address_2", "billing_postcode",
    "billing_city", "billing_state", "billing_state_code", "billing_country",
    "shipping_first_name", "shipping_last_name", "shipping_address_1", "shipping_address_2",
    "shipping_postcode", "shipping_city", "shipping_state", "shipping_state_code",
    "shipping_country", "shipping_company", "customer_note", "line_items", "shipping_items",
    "fee_items", "tax_items", "coupon_items", "order_notes", "download_permissions_granted",
)  # fmt: skip
STATUSES = {
    "completed": K.PURCHASE,
    "processing": K.PURCHASE,
    "refunded": K.PURCHASE,  # the refund is a second event
    "failed": K.PAYMENT_FAILED,
    "cancelled": K.OTHER,
    "pending": K.OTHER,
    "on_hold": K.OTHER,
    "checkout_draft": K.OTHER,
}


def _orders(row: Row, c: Columns) -> Recipe:
    status = row.text(c["status"]).str.to_lowercase().str.replace(r"^wc-", "")
    kind = row.kind(c["status"], {**STATUSES, **{f"wc_{k}": v for k, v in STATUSES.items()}})
    total = row.amount(c["amount"])
    refunded = row.amount(c["refunded"])
    customer = row.text(c["customer_id"])
    order = Event(
        kind=kind,
        ts=c["ts"],
        amount=total,
        plan=row.text(c["line_items"]).str.extract(r"name:([^|;]+)", 1),
        transaction_id=row.text(c["transaction_id"]),
        status=c["status"],
        known=frozenset(row.lookup(STATUSES)) | {f"wc_{k}" for k in STATUSES},
    )
    refund = Event(
        kind=pl.lit(K.REFUND.value),
        ts=c["ts"],
        when=(kind == K.PURCHASE.value)
        & ((refunded.fill_null(0) > 0) | (status == "refunded")).fill_null(False),
        amount=negated(pl.when(refunded.fill_null(0) > 0).then(refunded).otherwise(total)),
        reason=pl.lit("refunded"),
        transaction_id=row.text(c["transaction_id"]),
    )
    return Recipe(
        source="woocommerce-orders",
        label="WooCommerce orders",
        customer_id=pl.when(customer.is_null() | (customer == "0"))
        .then(row.text(c["customer_email"]))
        .otherwise(customer),
        events=(order, refund),
        card_expiry=row.card_expiry(None),
        mapping=dict(c),
        attributes=tuple(
            h for h in ("order_currency", "payment_method", "coupon_items") if row.has(h)
        ),
        known=frozenset(ORDERS_HEADERS),
    )


VENDORS = [
    Vendor(
        name="woocommerce-orders",
        label="WooCommerce orders",
        headers=ORDERS_HEADERS,
        signature=frozenset(
            {
                "order_id",
                "order_date",
                "status",
                "order_total",
                "refunded_total",
                "customer_id",
                "billing_email",
                "line_items",
            }
        ),
        columns={
            "customer_id": "customer_id",
            "customer_email": "billing_email",
            "ts": "order_date",
            "amount": "order_total",
            "refunded": "refunded_total",
            "status": "status",
            "line_items": "line_items",
            "transaction_id": "order_id",
        },
        build=_orders,
        becomes=(
            ("customer_id (billing_email for guests, id 0)", "customer_id"),
            ("order_date", "ts"),
            ("status completed / processing", "purchase of order_total"),
            ("refunded_total > 0 or status refunded", "a refund besides the purchase"),
            ("status failed", "payment_failed"),
            ("status cancelled / pending / on-hold", "other"),
            ("first name in line_items", "plan"),
        ),
    ),
]
