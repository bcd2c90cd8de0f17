"""The workspace directory: where each artefact lives, atomic writes and the lock.

Every file is written to a temporary name beside its target and renamed into place,
so a run killed at any moment leaves the previous state readable. One lock file
keeps two runs on the same workspace from interleaving.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from churnkit.core.errors import DataError, UsageError

log = logging.getLogger(__name__)
LOCK_TIMEOUT_SECONDS = 600.0
_UMASK = os.umask(0)
os.umask(_UMASK)


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def events_dir(self) -> Path:
        return self.root / "events"

    @property
    def rejects_dir(self) -> Path:
        return self.root / "rejects"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def relations_path(self) -> Path:
        return self.root / "relations.parquet"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def predictions_dir(self) -> Path:
        return self.root / "predictions"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def segments_path(self) -> Path:
        return self.root / "segments.parquet"

    def model_dir(self, name: str) -> Path:
        return self.models_dir / name

    def create(self) -> Workspace:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(
                f"cannot create workspace {self.root}: {exc.strerror}",
                hint="choose a writable directory with --workspace",
            ) from None
        return self

    @property
    def lock_path(self) -> Path:
        return self.root / ".lock"

    @property
    def holder_path(self) -> Path:
        """Who holds the lock (pid, host, since): read by a run that has to wait."""
        return self.root / ".lock.holder"

    @contextmanager
    def lock(self, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
        """Hold the workspace lock; a second run says whom it waits for, waits, then
        gives up with a clear error."""
        self.create()
        lock = FileLock(str(self.lock_path), timeout=timeout)
        try:
            try:
                lock.acquire(timeout=0)
            except Timeout:
                log.warning("waiting for the workspace lock held by %s", self.lock_holder())
                lock.acquire(timeout=timeout)
        except Timeout:
            raise UsageError(
                f"workspace {self.root} is locked by another churnkit run ({self.lock_holder()})",
                hint="wait for it to finish, or use another --workspace",
            ) from None
        try:
            write_text_atomic(
                self.holder_path,
                json.dumps(
                    {
                        "pid": os.getpid(),
                        "host": socket.gethostname(),
                        "since": datetime.now(UTC).isoformat(timespec="seconds"),
                    }
                ),
            )
            yield
        finally:
            self.holder_path.unlink(missing_ok=True)
            lock.release()

    def lock_holder(self) -> str:
        """ "pid N on HOST since T", or a plain phrase when the holder left no note."""
        try:
            info = json.loads(self.holder_path.read_text(encoding="utf-8"))
            return f"pid {info['pid']} on {info['host']} since {info['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "another churnkit run"

    def read_manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            return {"batches": []}
        try:
            data: dict[str, Any] = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(
                f"workspace manifest {self.manifest_path} is unreadable: {exc}",
                hint="restore it from a backup or re-ingest into a new workspace",
            ) from None
        return data

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_text_atomic(self.manifest_path, json.dumps(manifest, indent=2, sort_keys=True))

    def event_files(self) -> list[Path]:
        """The batches the manifest vouches for; orphans of killed runs are ignored."""
        manifest = self.read_manifest()
        return [self.root / b["data"] for b in manifest["batches"] if b.get("data")]

    def require_events(self) -> list[Path]:
        files = self.event_files()
        if not files:
            raise DataError(
                f"workspace {self.root} holds no ingested events",
                hint="run `churnkit ingest FILE` first (or pass --workspace)",
            )
        return files


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it into place on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are shared files
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
