"""The engine seam: run one function per customer-hash bucket, here or on a cluster.

A task is a plain module-level function ``fn(bucket, *args)``: its arguments are
small and picklable (paths, a :class:`~churnkit.engine.buckets.BucketSet`,
settings), and it returns a small frame or the path of a Parquet part it wrote.
Because every per-customer computation is bucket-local, the results of all buckets
together equal the computation over the whole log, whichever engine ran them.

A failing task stops the run with a ``ChurnkitError`` that names the bucket: a
``ChurnkitError`` raised by the task keeps its class (and exit code); anything else
is a :class:`TaskError` (exit 70, a bug), its traceback logged under ``--verbose``.
"""

from __future__ import annotations

import copy
import logging
import traceback
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from churnkit.core.errors import ChurnkitError, ExitCode
from churnkit.core.progress import Progress, silent

logger = logging.getLogger(__name__)

R = TypeVar("R")


class EngineError(ChurnkitError):
    """The engine could not run the work: workers lost, storage not shared."""

    exit_code = ExitCode.DATA


class TaskError(ChurnkitError):
    """A task failed with an unexpected exception: a bug, reported with its bucket."""

    exit_code = ExitCode.INTERNAL


class Engine(Protocol):
    """Where per-bucket tasks run. Results come back in the order of ``buckets``."""

    kind: str

    def map_buckets(
        self,
        fn: Callable[..., R],
        buckets: Sequence[int],
        *args: Any,
        progress: Progress = silent,
        what: str = "buckets",
    ) -> list[R]:
        """``[fn(b, *args) for b in buckets]``, wherever the engine runs tasks."""
        ...

    def check_shared(self, path: str) -> None:
        """Fail early when a task could not read ``path`` (a cluster without shared storage)."""
        ...

    def close(self) -> None: ...


def in_bucket(exc: BaseException, bucket: int) -> ChurnkitError:
    """The error a failed task becomes: the same ``ChurnkitError`` naming the bucket,
    or a :class:`TaskError` for anything unexpected."""
    where = f"bucket {bucket}"
    if isinstance(exc, ChurnkitError):
        named = copy.copy(exc)
        named.message = f"{where}: {exc.message}"
        named.args = (named.message,)
        return named
    text = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    logger.debug("%s failed:\n%s", where, "".join(traceback.format_exception(exc)).rstrip())
    return TaskError(
        f"{where}: task failed with {detail}",
        hint="the workspace is unchanged; rerun with --verbose for the traceback",
    )


class LocalEngine:
    """Runs the tasks in this process, one bucket after another.

    Sequential on purpose: Polars already uses every core inside a task, and one
    bucket at a time keeps memory to one bucket's worth.
    """

    kind = "local"

    def map_buckets(
        self,
        fn: Callable[..., R],
        buckets: Sequence[int],
        *args: Any,
        progress: Progress = silent,
        what: str = "buckets",
    ) -> list[R]:
        results: list[R] = []
        progress(what, 0, len(buckets))
        for done, bucket in enumerate(buckets, start=1):
            try:
                results.append(fn(bucket, *args))
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # Polars panics are BaseExceptions
                raise in_bucket(exc, bucket) from exc
            progress(what, done, len(buckets))
        return results

    def check_shared(self, path: str) -> None:
        """Tasks run here: whatever this process reads, they read."""

    def close(self) -> None:
        """Nothing to release."""
