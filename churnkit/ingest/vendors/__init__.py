"""Well-known billing and shop exports, recognised by their header signature.

Each vendor module declares its exports: the columns as the vendor writes them, the
few that identify the export, and a builder that turns the export's rows into canonical
events (its statuses, its dates, its line items). Recognition is exact: every signature
column must be present; when several exports match, the one with the longest signature
wins. ``--source NAME`` (``ingest.source``) forces one, by export name or vendor name.
"""

from __future__ import annotations

from collections.abc import Sequence

from churnkit.core.errors import DataError
from churnkit.ingest.vendors.base import Vendor

GENERIC = "generic"
AUTO = "auto"


def _registry() -> dict[str, Vendor]:
    from churnkit.ingest.vendors import chargebee, paddle, recurly, shopify, stripe, woocommerce

    vendors: list[Vendor] = []
    for module in (stripe, shopify, chargebee, recurly, paddle, woocommerce):
        vendors += module.VENDORS
    return {v.name: v for v in vendors}


REGISTRY = _registry()


def names() -> list[str]:
    """Every name ``--source`` accepts."""
    families = sorted({v.family for v in REGISTRY.values()})
    return [AUTO, GENERIC, *families, *sorted(REGISTRY)]


def recognise(headers: Sequence[str]) -> Vendor | None:
    present = set(headers)
    matches = [v for v in REGISTRY.values() if v.signature <= present]
    if not matches:
        return None
    return max(matches, key=lambda v: (len(v.signature), v.name))


def choose(name: str, headers: Sequence[str]) -> Vendor | None:
    """The vendor export to read ``headers`` with: recognised (``auto``), none
    (``generic``), or forced by export or vendor name."""
    if name == AUTO:
        return recognise(headers)
    if name == GENERIC:
        return None
    if name in REGISTRY:
        return REGISTRY[name]
    family = [v for v in REGISTRY.values() if v.family == name]
    if not family:
        raise DataError(f"unknown source {name!r}", hint=f"choose one of: {', '.join(names())}")
    present = set(headers)
    return max(family, key=lambda v: (len(v.signature & present), len(v.signature)))
