"""Files shipped inside the package: the default settings and retention playbook.

``churnkit.yaml`` lists every setting with its default; ``actions.yaml`` is the
default retention playbook. They are found from any directory, so ``report
--budget`` suggests actions without a checkout of the repository. A user's own files
override them (``--config``, ``$CHURNKIT_CONFIG`` or ``./configs/churnkit.yaml``;
``--playbook``, ``predict.playbook`` or ``./configs/actions.yaml``), and
``churnkit init`` writes editable copies into ``./configs/``. The repository's
``configs/churnkit.yaml`` and ``configs/actions.yaml`` are such copies, kept equal to
these by a test.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from churnkit.core.errors import DataError, UsageError
from churnkit.core.workspace import write_text_atomic

CONFIG = "churnkit.yaml"
PLAYBOOK = "actions.yaml"
SHIPPED = (CONFIG, PLAYBOOK)
# Where `churnkit init` writes them, and where commands look for the user's copies.
CONFIGS_DIR = Path("configs")


def packaged(name: str) -> Path:
    """The path of a shipped file (the package is installed as plain files)."""
    return Path(str(files(__name__).joinpath(name)))


def write_copies(directory: Path, *, force: bool = False) -> list[Path]:
    """Write editable copies of the shipped files into ``directory/configs``; the
    paths written. Without ``force`` nothing is written when any of them exists."""
    targets = [directory / CONFIGS_DIR / name for name in SHIPPED]
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        raise UsageError(
            f"{', '.join(str(t) for t in existing)} already "
            f"{'exists' if len(existing) == 1 else 'exist'}; nothing was written",
            hint="pass --force to replace them with the shipped defaults",
        )
    for name, target in zip(SHIPPED, targets, strict=True):
        try:
            write_text_atomic(target, packaged(name).read_text(encoding="utf-8"))
        except OSError as exc:
            raise DataError(f"cannot write {target}: {exc.strerror or exc}") from None
    return targets


__all__ = ["CONFIG", "CONFIGS_DIR", "PLAYBOOK", "packaged", "write_copies"]
