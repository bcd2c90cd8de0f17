"""Real `python -m churnkit` processes: exit codes, no tracebacks, kills and races."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from churnkit.core.io import scan_events
from churnkit.core.workspace import Workspace

pytestmark = pytest.mark.slow
ROWS = 300_000


def churnkit(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNKIT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "churnkit", "--no-progress", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(*args: str, cwd: Path) -> tuple[int, str, str]:
    proc = churnkit(*args, cwd=cwd)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def big_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few hundred thousand rows, one in a thousand rejected, some duplicated."""
    root = tmp_path_factory.mktemp("big")
    n = ROWS
    idx = pl.int_range(0, n, eager=True)
    key = idx % (n - 1000)  # the last 1000 rows repeat earlier ones exactly
    frame = pl.DataFrame(
        {
            "customer_id": "c" + (key % 5000).cast(pl.String),
            "ts": "2025-01-01 " + (key % 24).cast(pl.String).str.zfill(2) + ":00:00",
            "amount": (key % 97).cast(pl.String),
            "transaction_id": "t" + key.cast(pl.String),
        }
    ).with_columns(
        pl.when(key % 1000 == 7).then(pl.lit("oops")).otherwise(pl.col("amount")).alias("amount")
    )
    path = root / "big.csv"
    frame.write_csv(path)
    return path


def expected_counts(path: Path) -> tuple[int, int, int]:
    frame = pl.read_csv(path, infer_schema=False)
    rejected = frame.filter(pl.col("amount") == "oops").height
    valid = frame.filter(pl.col("amount") != "oops")
    accepted = valid.unique().height
    return frame.height, rejected, valid.height - accepted


def test_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "nocust.csv").write_text("when,amount\n2025-01-01,3\n")
    (tmp_path / "bad.yaml").write_text("labels:\n  horizn: 3\n")
    cases = [
        (["ingest", "missing.csv"], 3, "missing.csv"),
        (["ingest", "nocust.csv"], 3, "--map"),
        (["--config", "bad.yaml", "ingest", "nocust.csv"], 4, "labels.horizn"),
        (["ingest", "--kind", "nonsense", "x.csv"], 2, "nonsense"),
    ]
    for argv, code, fragment in cases:
        rc, _, err = run(*argv, cwd=tmp_path)
        assert rc == code, (argv, rc, err)
        assert fragment in err
        assert "Traceback" not in err


def test_killed_ingest_leaves_workspace_readable_and_rerun_completes(
    tmp_path: Path, big_export: Path
) -> None:
    workspace = Workspace(tmp_path / "ws")
    read, rejected, duplicates = expected_counts(big_export)
    first = tmp_path / "first.csv"
    first.write_text("customer_id,ts,amount,transaction_id\nz,2024-12-31,1,first\n")
    assert run("--workspace", str(workspace.root), "ingest", str(first), cwd=tmp_path)[0] == 0

    for delay in (0.2, 0.5, 0.9):
        proc = churnkit("--workspace", str(workspace.root), "ingest", str(big_export), cwd=tmp_path)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # The previous state is still readable, whatever the moment of the kill.
        events = scan_events(workspace).collect()
        assert events.height in (1, 1 + read - rejected - duplicates)

    rc, out, err = run(
        "--workspace", str(workspace.root), "ingest", str(big_export), "--json", cwd=tmp_path
    )
    assert rc == 0, err
    result = json.loads(out)
    if not result["files"][0]["already_ingested"]:
        assert (result["rows_read"], result["rejected"], result["duplicates"]) == (
            read,
            rejected,
            duplicates,
        )
    assert scan_events(workspace).collect().height == 1 + read - rejected - duplicates


def test_concurrent_ingests_end_consistent(tmp_path: Path, big_export: Path) -> None:
    workspace = tmp_path / "ws"
    other = tmp_path / "other.csv"
    other.write_text("customer_id,ts,amount\nq,2025-01-01,1\nr,2025-01-02,2\n")
    procs = [
        churnkit("--workspace", str(workspace), "ingest", str(big_export), cwd=tmp_path),
        churnkit("--workspace", str(workspace), "ingest", str(other), cwd=tmp_path),
        churnkit("--workspace", str(workspace), "ingest", str(big_export), cwd=tmp_path),
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    read, rejected, duplicates = expected_counts(big_export)
    ws = Workspace(workspace)
    assert len(ws.read_manifest()["batches"]) == 2
    assert scan_events(ws).collect().height == read - rejected - duplicates + 2
