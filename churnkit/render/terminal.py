"""Text from data made safe for a terminal: control characters, ANSI escape sequences
and bidirectional overrides (from a cell, a header or a binary file) are shown as
visible escapes, never sent raw. Stored data and JSON/CSV outputs keep them as they are.
"""

from __future__ import annotations

import re

from rich.markup import escape

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """``text`` with every unsafe character written as ``\\xNN`` / ``\\uNNNN``."""
    return _UNSAFE.sub(_visible, str(text))


def markup_safe(text: object) -> str:
    """Printable and with rich markup escaped: for strings rich will interpret."""
    return escape(printable(text))


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
