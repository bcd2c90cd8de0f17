"""Map a source's headers to canonical columns.

Explicit mappings (config ``ingest.mapping`` and ``--map``) win; the rest is
auto-detected from common header names, compared case-, space- and
punctuation-insensitively. Two headers that could both be one canonical column are
an error listing the candidates: a silent pick would corrupt every later step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from churnkit.core import schema as s
from churnkit.core.errors import DataError, MissingColumnError

STATUS = "status"

# Canonical column → normalised header names that mean it (exact canonical names first).
SYNONYMS: dict[str, tuple[str, ...]] = {
    s.CUSTOMER_ID: (
        "customerid",
        "customer",
        "userid",
        "user",
        "accountid",
        "account",
        "clientid",
        "client",
        "subscriberid",
        "subscriber",
        "memberid",
        "custid",
        "customerno",
        "customernumber",
        "accountnumber",
        # German, French, Spanish, Dutch exports
        "kunde",
        "kundennummer",
        "kundenid",
        "kundennr",
        "idclient",
        "numeroclient",
        "cliente",
        "idcliente",
        "klant",
        "klantnummer",
    ),
    s.TS: (
        "ts",
        "date",
        "timestamp",
        "time",
        "datetime",
        "created",
        "createdat",
        "invoicedate",
        "transactiondate",
        "orderdate",
        "eventdate",
        "eventtime",
        "paymentdate",
        "chargedate",
        "occurredat",
        "week",
        "day",
        "datum",
        "rechnungsdatum",
        "fecha",
        "datefacture",
    ),
    s.AMOUNT: (
        "amount",
        "price",
        "total",
        "revenue",
        "value",
        "charge",
        "amountpaid",
        "totalamount",
        "sales",
        "netamount",
        "paid",
        "betrag",
        "summe",
        "montant",
        "importe",
        "bedrag",
    ),
    STATUS: (
        "status",
        "state",
        "kind",
        "eventtype",
        "type",
        "transactionstatus",
        "paymentstatus",
        "outcome",
        "statut",
        "estado",
    ),
    s.QUANTITY: ("quantity", "qty", "count", "units", "n"),
    s.PLAN: ("plan", "product", "sku", "tier", "subscription", "planname", "productname"),
    s.REASON: (
        "reason",
        "reasoncode",
        "declinereason",
        "failurereason",
        "cancelreason",
        "declinecode",
    ),
    s.EVENT: ("event", "eventname", "action", "activity", "feature"),
    s.TRANSACTION_ID: (
        "transactionid",
        "txid",
        "txnid",
        "invoiceid",
        "invoiceno",
        "invoicenumber",
        "orderid",
        "paymentid",
        "chargeid",
    ),
    s.CARD_EXPIRY: (
        "cardexpiry",
        "cardexp",
        "expiry",
        "cardexpires",
        "expdate",
        "cardexpirydate",
        "expiration",
        "cardexpiration",
    ),
    s.CARD_EXP_MONTH: ("cardexpmonth", "expmonth", "expirymonth", "cardexpirymonth"),
    s.CARD_EXP_YEAR: ("cardexpyear", "expyear", "expiryyear", "cardexpiryyear"),
}

RELATION_SYNONYMS: dict[str, tuple[str, ...]] = {
    s.CUSTOMER_ID: SYNONYMS[s.CUSTOMER_ID],
    s.RELATED_CUSTOMER_ID: (
        "relatedcustomerid",
        "relatedcustomer",
        "related",
        "relatedid",
        "contactid",
        "referredcustomerid",
        "referred",
        "referee",
        "friendid",
        "peerid",
    ),
    s.RELATION_KIND: ("relationkind", "kind", "type", "relation", "relationship"),
    s.SINCE: ("since", "date", "created", "createdat", "startdate", "ts"),
}

REQUIRED = (s.CUSTOMER_ID, s.TS)


def normalise(header: str) -> str:
    return re.sub(r"[^0-9a-z]", "", header.lower())


def map_columns(
    headers: Sequence[str],
    *,
    explicit: Mapping[str, str],
    source: str,
    synonyms: Mapping[str, tuple[str, ...]] = SYNONYMS,
    required: Sequence[str] = REQUIRED,
) -> dict[str, str]:
    """Return canonical name → source header for every column that could be placed."""
    mapping: dict[str, str] = {}
    for canonical, header in explicit.items():
        if canonical not in synonyms:
            continue
        if header not in headers:
            raise MissingColumnError(
                f"{source}: mapped column {header!r} (for {canonical}) is not in the file; "
                f"columns are: {', '.join(headers)}",
                hint=f"fix the mapping: --map {canonical}=COLUMN",
            )
        mapping[canonical] = header
    taken = set(mapping.values())
    by_name = {normalise(h): h for h in headers if h not in taken}
    for canonical, names in synonyms.items():
        if canonical in mapping:
            continue
        exact = by_name.get(normalise(canonical))
        if exact is not None:
            mapping[canonical] = exact
            taken.add(exact)
            continue
        candidates = [by_name[n] for n in names if n in by_name and by_name[n] not in taken]
        if len(candidates) > 1:
            raise DataError(
                f"{source}: several columns could be {canonical}: "
                f"{', '.join(repr(c) for c in candidates)}",
                hint=f"choose one with --map {canonical}=COLUMN",
            )
        if candidates:
            mapping[canonical] = candidates[0]
            taken.add(candidates[0])
    missing = [c for c in required if c not in mapping]
    if missing:
        raise MissingColumnError(
            f"{source}: no column for {', '.join(missing)}; columns are: {', '.join(headers)}",
            hint=f"map it with --map {missing[0]}=COLUMN",
        )
    return mapping
