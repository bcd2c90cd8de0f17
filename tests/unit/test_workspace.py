"""workspace: atomic outputs, the lock between runs, and the manifest as the source of truth."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from churnkit.core.errors import DataError, ExitCode, UsageError
from churnkit.core.workspace import Workspace, atomic_path, write_bytes_atomic, write_text_atomic


class WriterCrashed(RuntimeError):
    pass


# --- atomic writes ---------------------------------------------------------------------


def test_atomic_write_replaces_the_file(tmp_path):
    target = tmp_path / "report.json"
    write_text_atomic(target, "old")
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_writer_failing_midway_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "predictions.csv"
    write_text_atomic(target, "customer_id,p_churn\nc1,0.2\n")

    with pytest.raises(WriterCrashed), atomic_path(target) as tmp:
        tmp.write_text("customer_id,p_ch")  # half a file
        raise WriterCrashed

    assert target.read_text() == "customer_id,p_churn\nc1,0.2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]  # no temp litter


def test_writer_failing_on_first_write_leaves_no_file(tmp_path):
    target = tmp_path / "models" / "default" / "model.txt"
    with pytest.raises(WriterCrashed), atomic_path(target) as tmp:
        tmp.write_bytes(b"tree")
        raise WriterCrashed
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_write_creates_parent_directories(tmp_path):
    target = tmp_path / "a" / "b" / "data.bin"
    write_bytes_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"


# --- the lock --------------------------------------------------------------------------


@contextmanager
def held_in_thread(workspace: Workspace) -> Iterator[None]:
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with workspace.lock():
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(10), "the helper thread never got the lock"
    try:
        yield
    finally:
        release.set()
        thread.join(10)


def test_second_run_gives_up_with_a_usage_error_while_the_lock_is_held(workspace):
    with held_in_thread(workspace), pytest.raises(UsageError) as info, workspace.lock(0.1):
        pytest.fail("acquired a lock that another run holds")
    assert info.value.exit_code == ExitCode.USAGE
    assert "locked" in info.value.message
    assert str(workspace.root) in info.value.message


def test_lock_is_free_again_after_the_holder_finishes(workspace):
    with held_in_thread(workspace):
        pass
    with workspace.lock(timeout=0.1):
        assert workspace.root.is_dir()


def test_lock_held_by_another_process(workspace):
    holder = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from churnkit.core.workspace import Workspace\n"
        "with Workspace(Path(sys.argv[1])).lock():\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder, str(workspace.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(UsageError, match="locked"), workspace.lock(timeout=0.1):
            pass
    finally:
        proc.communicate("\n", timeout=10)
    with workspace.lock(timeout=0.1):
        pass


def test_workspace_that_cannot_be_created_is_a_data_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(DataError) as info:
        Workspace(blocker / "ws").create()
    assert str(blocker / "ws") in info.value.message
    assert "--workspace" in info.value.hint


# --- manifest --------------------------------------------------------------------------


def test_manifest_round_trip(workspace):
    manifest = {
        "batches": [
            {"sha256": "ab" * 32, "data": "events/batch-1.parquet", "rows": 10},
            {"sha256": "cd" * 32, "data": "events/batch-2.parquet", "rows": 3},
        ]
    }
    workspace.write_manifest(manifest)
    assert workspace.read_manifest() == manifest


def test_fresh_workspace_has_an_empty_manifest(workspace):
    assert workspace.read_manifest() == {"batches": []}
    assert workspace.event_files() == []


def test_corrupt_manifest_is_a_data_error_naming_it(workspace):
    workspace.create()
    workspace.manifest_path.write_text('{"batches": [')
    with pytest.raises(DataError) as info:
        workspace.read_manifest()
    assert str(workspace.manifest_path) in info.value.message


def test_event_files_ignore_files_the_manifest_does_not_list(workspace):
    workspace.events_dir.mkdir(parents=True)
    for name in ("batch-1.parquet", "batch-2.parquet", "orphan-of-killed-run.parquet"):
        (workspace.events_dir / name).write_bytes(b"")
    workspace.write_manifest(
        {
            "batches": [
                {"sha256": "1", "data": "events/batch-1.parquet"},
                {"sha256": "2", "data": "events/batch-2.parquet"},
                {"sha256": "3", "data": None},  # a batch with no accepted rows
            ]
        }
    )
    assert workspace.event_files() == [
        workspace.events_dir / "batch-1.parquet",
        workspace.events_dir / "batch-2.parquet",
    ]


def test_require_events_on_an_empty_workspace_says_to_ingest(workspace):
    with pytest.raises(DataError) as info:
        workspace.require_events()
    assert str(workspace.root) in info.value.message
    assert "churnkit ingest" in info.value.hint
