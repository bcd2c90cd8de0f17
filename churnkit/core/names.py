"""Names that become directories in the workspace (models, campaigns).

A name is a name, never a path: letters, digits, ``.``, ``_`` and ``-``, up to 100,
not starting with a dot, so ``--model ../../x`` cannot read or write outside the
workspace.
"""

from __future__ import annotations

import re

from churnkit.core.errors import UsageError

NAME_PATTERN = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}"
_NAME = re.compile(NAME_PATTERN)


def check_name(name: str, *, flag: str, what: str, home: str, example: str) -> str:
    """``name`` if it is a valid name; otherwise a ``UsageError`` naming ``flag``.

    ``what`` is the kind of thing named ("model"), ``home`` where such things live
    ("WORKSPACE/models") and ``example`` a valid name for the hint.
    """
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"{flag} {name!r}: a {what} name may hold only letters, digits, '.', '_' and '-' "
            f"(up to 100, not starting with a dot); {what}s live in {home}",
            hint=f"name it, e.g. {flag} {example}",
        )
    return name
