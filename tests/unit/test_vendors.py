"""Vendor exports: recognised by their headers, read the way the vendor means them.

The corpus in tests/fixtures/exports/ is written by its own seeded generator, which
also computes the numbers each file must give; churnkit is checked against them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from churnkit.core.config import load_settings
from churnkit.core.errors import ChurnkitWarning, DataError
from churnkit.core.workspace import Workspace
from churnkit.ingest import vendors
from churnkit.ingest.pipeline import ingest

EXPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "exports"
EXPECTED = json.loads((EXPORTS / "expected.json").read_text(encoding="utf-8"))
TODAY = date(2026, 1, 31)


def test_the_committed_corpus_is_what_its_generator_writes():
    done = subprocess.run(
        [sys.executable, str(EXPORTS / "make_corpus.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_export_gives_the_generators_numbers(tmp_path, name):
    expected = EXPECTED[name]
    result = ingest(
        [EXPORTS / name],
        settings=load_settings(None, env={}),
        workspace=Workspace(tmp_path / "ws"),
        today=TODAY,
    )
    (f,) = result.files
    assert f.error is None
    assert (f.source, f.encoding, f.delimiter) == (
        expected["source"],
        expected["encoding"],
        expected["delimiter"],
    )
    assert (f.rows_read, f.accepted, f.rejected, f.duplicates) == (
        expected["rows_read"],
        expected["accepted"],
        expected["rejected"],
        expected["duplicates"],
    )
    assert f.rows_read == f.accepted + f.rejected + f.duplicates
    assert f.rejected_by_reason == expected["rejected_by_reason"]
    assert f.events == expected["events"]
    assert dict(sorted(result.dataset.kinds.items())) == expected["kinds"]
    assert result.dataset.customers == expected["customers"]


def test_every_vendor_recognises_its_own_headers_and_no_other():
    for vendor in vendors.REGISTRY.values():
        assert vendors.recognise(list(vendor.headers)) is vendor


def test_a_stripe_payments_export_needs_no_mapping(tmp_path, settings):
    path = EXPORTS / "stripe_payments.csv"
    result = ingest([path], settings=settings, workspace=Workspace(tmp_path / "ws"), today=TODAY)
    assert result.files[0].mapping["ts"] == "Created (UTC)"


def test_source_forces_an_export_by_its_name_or_its_vendors(tmp_path):
    headers = list(vendors.REGISTRY["shopify-orders"].headers)
    assert vendors.choose("shopify", headers) is vendors.REGISTRY["shopify-orders"]
    assert vendors.choose("generic", headers) is None
    with pytest.raises(DataError, match="unknown source"):
        vendors.choose("quickbooks", headers)


def test_a_forced_export_missing_its_columns_fails_naming_them(tmp_path, make_settings, write_csv):
    path = write_csv("plain.csv", "customer_id,ts,amount\na,2025-01-01,1\n")
    settings = make_settings(ingest={"source": "stripe-payments"})
    result = ingest([path], settings=settings, workspace=Workspace(tmp_path / "ws"), today=TODAY)
    (failed,) = result.failed
    assert "Stripe payments" in (failed.error or "") and "'Captured'" in (failed.error or "")


def test_a_status_like_column_left_unmapped_is_counted_and_warned_about(tmp_path, write_csv):
    text = "customer_id,ts,total,Financial Status\n" + "".join(
        f"c{i},2025-01-0{1 + i % 9},10,{'refunded' if i % 4 == 0 else 'paid'}\n" for i in range(20)
    )
    path = write_csv("orders.csv", text)
    with pytest.warns(ChurnkitWarning, match="Financial Status"):
        result = ingest(
            [path],
            settings=load_settings(None, env={}),
            workspace=Workspace(tmp_path / "ws"),
            today=TODAY,
        )
    assert result.files[0].unmapped_statuses == {"Financial Status": {"paid": 15, "refunded": 5}}
