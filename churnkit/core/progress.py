"""How long-running core work reports how far it got, without knowing who listens.

The core calls a :class:`Progress` with ``(what, done, total)``: ``done == 0`` when a
stage starts and ``done == total`` when it ends. The CLI turns that into a progress
bar on a terminal and into log lines elsewhere; library callers pass nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")


class Progress(Protocol):
    def __call__(self, what: str, done: int, total: int) -> None:
        """``done`` of ``total`` units of ``what`` are finished."""


def silent(what: str, done: int, total: int) -> None:
    """The default: nobody is listening."""


def tracked(items: Iterable[T], what: str, total: int, progress: Progress) -> Iterator[T]:
    """Yield ``items``, reporting one unit done after each."""
    progress(what, 0, total)
    for done, item in enumerate(items, start=1):
        yield item
        progress(what, done, total)
