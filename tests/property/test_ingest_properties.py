"""Messy CSV text never crashes ingest and every row is accounted for."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from churnkit.core.config import load_settings
from churnkit.core.errors import DataError
from churnkit.core.io import scan_events
from churnkit.core.workspace import Workspace
from churnkit.ingest.pipeline import ingest

IDS = st.sampled_from(["c1", "c2", " c3 ", "", "  ", "=cmd()", "<script>", "ü-7", "c1"])
DATES = st.sampled_from(
    [
        "2025-03-14",
        "2025-03-14 09:31:00",
        "2025-03-14T09:31:00+02:00",
        "14/03/2025",
        "31/02/2025",
        "not a date",
        "",
        "1741944660",
        "1741944660000",
        "0001-01-01",
    ]
)
AMOUNTS = st.sampled_from(
    ["10", "$1,234.50", "€49.00", "USD 19.00", "(12.00)", "n/a", "12..5", "", "-3", "1e400"]
)
STATUSES = st.sampled_from(["paid", "FAILED", "refunded", "cancelled", "pending", "", "Other"])
ROWS = st.lists(st.tuples(IDS, DATES, AMOUNTS, STATUSES), min_size=1, max_size=25)


def to_csv(rows: list[tuple[str, str, str, str]], *, bom: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Customer ID", "Invoice Date", "Amount", "Status"])
    writer.writerows(rows)
    return ("\ufeff" if bom else "") + buffer.getvalue()


@hyp_settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS, duplicate=st.booleans(), bom=st.booleans())
def test_read_equals_accepted_plus_rejected_plus_duplicates(tmp_path_factory, rows, duplicate, bom):
    root: Path = tmp_path_factory.mktemp("prop")
    if duplicate:
        rows = rows + rows[:3]
    path = root / "export.csv"
    path.write_text(to_csv(rows, bom=bom), encoding="utf-8")
    workspace = Workspace(root / "ws")
    settings = load_settings(None, env={}, overrides={"ingest": {"date_order": "dmy"}})

    try:
        result = ingest([path], settings=settings, workspace=workspace)
    except DataError as exc:
        assert "no usable rows" in exc.message
        return

    assert result.rows_read == len(rows)
    assert result.rows_read == result.accepted + result.rejected + result.duplicates
    assert scan_events(workspace).collect().height == result.accepted

    again = ingest([path], settings=settings, workspace=workspace)
    assert again.files[0].already_ingested
    assert scan_events(workspace).collect().height == result.accepted
