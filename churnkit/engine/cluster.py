"""The Dask engine: per-bucket tasks on an existing ``distributed`` cluster.

churnkit connects a ``distributed.Client`` to ``engine.scheduler`` and submits one
task per bucket. Tasks are module-level churnkit functions, so every worker must
have the same churnkit installed and see the workspace at the same path (shared
storage); both are checked before the first task runs. Workers write only under
staging names; the client commits outputs once every bucket succeeded, so a worker
that dies mid-run leaves the workspace as it was. Dask reruns a dead worker's tasks
on the others (``distributed.scheduler.allowed-failures`` times); past that, or with
no worker left for ``no_workers_timeout`` seconds, the run stops with exit 3.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from churnkit import __version__
from churnkit.core.errors import ConfigError
from churnkit.core.progress import Progress, silent
from churnkit.engine.base import EngineError, in_bucket

logger = logging.getLogger(__name__)

R = TypeVar("R")

CONNECT_TIMEOUT_SECONDS = 20.0
NO_WORKERS_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.5
START_HINT = "start a scheduler with `dask scheduler` and workers with `dask worker ADDRESS`"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def installed_version() -> str:
    """churnkit's version as a worker sees it (run there by ``client.run``; a worker
    without churnkit fails to load this function)."""
    return __version__


class DaskEngine:
    """Runs per-bucket tasks on the Dask cluster behind ``scheduler``."""

    kind = "dask"

    def __init__(
        self,
        scheduler: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        no_workers_timeout: float = NO_WORKERS_TIMEOUT_SECONDS,
    ) -> None:
        try:
            import distributed
        except ImportError:  # pragma: no cover - a core dependency
            raise ConfigError(
                "setting `engine.kind` is dask but the `distributed` package is missing",
                hint="pip install 'dask[distributed]'",
            ) from None
        self.scheduler = scheduler
        self.no_workers_timeout = no_workers_timeout
        try:
            # distributed is only partly typed: the client is used through Any.
            client_class: Any = distributed.Client
            self.client: Any = client_class(
                scheduler, timeout=connect_timeout, set_as_default=False
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {scheduler} "
                f"(setting `engine.scheduler`): {_first_line(exc)}",
                hint=f"{START_HINT}, or fix --scheduler",
            ) from None
        self._checked = False
        self._shared: set[str] = set()

    # --- checks before work ------------------------------------------------------------

    def _workers(self) -> list[str]:
        try:
            info = self.client.scheduler_info(n_workers=-1)
        except (OSError, TimeoutError) as exc:
            raise EngineError(
                f"lost the connection to the Dask scheduler at {self.scheduler}: "
                f"{_first_line(exc)}",
                hint="the workspace is unchanged; re-run once the scheduler is back",
            ) from None
        return sorted(info.get("workers", {}))

    def _preflight(self) -> None:
        """Workers present, each with this churnkit version."""
        if self._checked:
            return
        try:
            self.client.wait_for_workers(1, timeout=self.no_workers_timeout)
        except (TimeoutError, OSError):
            raise EngineError(
                f"no Dask worker joined the scheduler at {self.scheduler} "
                f"within {self.no_workers_timeout:.0f} s",
                hint=START_HINT,
            ) from None
        versions = self.client.run(installed_version, on_error="return")
        wrong = {w: v for w, v in versions.items() if v != __version__}
        if wrong:
            worker, version = sorted(wrong.items(), key=lambda item: item[0])[0]
            found = (
                f"cannot run churnkit ({_first_line(version)})"
                if isinstance(version, BaseException)
                else f"has churnkit {version}, this client {__version__}"
            )
            raise EngineError(
                f"Dask worker {worker} {found} ({len(wrong)} of {len(versions)} workers)",
                hint="install the same churnkit version on every worker",
            )
        self._checked = True

    def check_shared(self, path: str) -> None:
        """Every worker must see ``path``: the workspace lives on storage they share."""
        if path in self._shared:
            return
        self._preflight()
        seen = self.client.run(os.path.exists, path, on_error="return")
        blind = sorted(w for w, ok in seen.items() if ok is not True)
        if blind:
            raise EngineError(
                f"Dask worker {blind[0]} cannot see {path} "
                f"({len(blind)} of {len(seen)} workers cannot)",
                hint="put the workspace on storage every worker mounts at the same path "
                "(pass an absolute --workspace)",
            )
        self._shared.add(path)

    # --- running -----------------------------------------------------------------------

    def map_buckets(
        self,
        fn: Callable[..., R],
        buckets: Sequence[int],
        *args: Any,
        progress: Progress = silent,
        what: str = "buckets",
    ) -> list[R]:
        import distributed

        wait: Any = distributed.wait
        self._preflight()
        total = len(buckets)
        progress(what, 0, total)
        if not total:
            return []
        run = uuid.uuid4().hex[:8]
        keys = [f"churnkit-{getattr(fn, '__name__', 'task')}-{run}-{b}" for b in buckets]
        futures = self.client.map(
            fn, list(buckets), *[[arg] * total for arg in args], key=keys, pure=False
        )
        bucket_of = {f.key: b for f, b in zip(futures, buckets, strict=True)}
        pending = set(futures)
        idle_since: float | None = None
        try:
            while pending:
                try:
                    with self.client.as_current():
                        finished, pending = wait(
                            pending, timeout=POLL_SECONDS, return_when="FIRST_COMPLETED"
                        )
                except TimeoutError:
                    idle_since = self._check_alive(idle_since)
                    continue
                for future in finished:
                    if future.status != "finished":
                        raise self._failure(future, bucket_of[future.key])
                progress(what, total - len(pending), total)
            return [f.result() for f in futures]
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def _check_alive(self, idle_since: float | None) -> float | None:
        """Between results: stop when the cluster has had no worker for too long."""
        if self.client.status not in ("running", "connecting"):
            raise EngineError(
                f"lost the connection to the Dask scheduler at {self.scheduler}",
                hint="the workspace is unchanged; re-run once the scheduler is back",
            )
        if self._workers():
            return None
        now = time.monotonic()
        if idle_since is None:
            logger.warning("no Dask worker is connected; waiting for one")
            return now
        if now - idle_since > self.no_workers_timeout:
            raise EngineError(
                f"no Dask worker has been connected to {self.scheduler} "
                f"for {self.no_workers_timeout:.0f} s",
                hint=f"the workspace is unchanged; {START_HINT}, then re-run",
            )
        return idle_since

    def _failure(self, future: Any, bucket: int) -> Exception:
        from distributed import KilledWorker

        if future.status == "cancelled":
            return EngineError(
                f"bucket {bucket}: the task was cancelled by the Dask cluster",
                hint="the workspace is unchanged; re-run to complete",
            )
        exc = future.exception()
        if isinstance(exc, KilledWorker):
            last = getattr(exc.last_worker, "address", exc.last_worker)
            return EngineError(
                f"bucket {bucket}: the {exc.allowed_failures + 1} workers that ran it died "
                f"(the last: {last})",
                hint="a worker may be running out of memory: give workers more memory or "
                "use more buckets (engine.buckets); the workspace is unchanged, re-run",
            )
        return in_bucket(exc, bucket)

    def close(self) -> None:
        self.client.close()
