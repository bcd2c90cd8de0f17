"""Shared benchmark plumbing: generated data cached on disk, timing, peak memory."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """Minimum wall time over ``repeat`` runs: the least noisy estimate on a busy box."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_rss_mib() -> float:
    """This process's peak resident memory. ``ru_maxrss`` survives exec on Linux (a
    child would report its parent's peak), so read the address space's own high-water
    mark when /proc has it."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_child(script: Path, *args: str) -> dict[str, float]:
    """Run one measurement in a fresh process, so its peak memory is its own."""
    out = subprocess.run(
        [sys.executable, str(script), "--child", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result
