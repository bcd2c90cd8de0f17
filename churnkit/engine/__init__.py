"""Where per-customer work runs: bucket by bucket, in this process or on a Dask cluster.

``open_engine(settings.engine)`` gives an :class:`~churnkit.engine.base.Engine`;
``buckets.derive_buckets`` splits the workspace's event log by customer hash; and
``parts.map_to_parquet`` runs a task per bucket and commits its Parquet output
atomically. Dask is imported only when the Dask engine is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from churnkit.core.config import EngineSettings
from churnkit.engine.base import Engine, EngineError, LocalEngine, TaskError


@contextmanager
def open_engine(settings: EngineSettings) -> Iterator[Engine]:
    """The configured engine, closed (its cluster connection released) on exit."""
    engine: Engine
    if settings.kind == "dask":
        from churnkit.engine.cluster import DaskEngine

        assert settings.scheduler is not None  # the settings' validation ensures it
        engine = DaskEngine(settings.scheduler)
    else:
        engine = LocalEngine()
    try:
        yield engine
    finally:
        engine.close()


__all__ = ["Engine", "EngineError", "LocalEngine", "TaskError", "open_engine"]
