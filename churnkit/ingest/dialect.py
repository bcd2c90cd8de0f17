"""How a text export is written: its encoding, its delimiter and its decimal mark.

Each is decided once per file from evidence (a byte-order mark, a strict UTF-8 check of
the whole file, a sample of lines), never guessed per value, and every decision is
reported so a user can see it and override it (``--encoding``, ``--delimiter``,
``ingest.decimal``). Nothing here decodes lossily: bytes that do not decode become
U+FFFD only where the caller turns every such value into an ``invalid encoding`` reject.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

UTF8 = "utf-8"
UTF8_SIG = "utf-8-sig"
UTF16_LE = "utf-16-le"
UTF16_BE = "utf-16-be"
REPLACEMENT = "\ufffd"

_BOMS = (
    (codecs.BOM_UTF8, UTF8_SIG),
    (codecs.BOM_UTF16_LE, UTF16_LE),
    (codecs.BOM_UTF16_BE, UTF16_BE),
)
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True)
class Encoding:
    """The decision for one file: the codec, whether its bytes are proven valid in it,
    and why it was chosen (shown to the user)."""

    codec: str
    valid: bool
    how: str
    bom: int = 0  # bytes of byte-order mark to skip

    @property
    def name(self) -> str:
        return {UTF8_SIG: "utf-8 (BOM)", UTF16_LE: "utf-16-le", UTF16_BE: "utf-16-be"}.get(
            self.codec, self.codec
        )

    @property
    def is_utf8(self) -> bool:
        return self.codec in (UTF8, UTF8_SIG)


def bom_encoding(head: bytes) -> Encoding | None:
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return Encoding(codec, valid=False, how="byte-order mark", bom=len(bom))
    return None


def utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 text without a BOM is valid UTF-8 (its ASCII has NUL bytes in between), so
    it is recognised by where the NULs fall."""
    sample = head[:4096]
    if len(sample) < 4 or sample.count(0) < len(sample) // 4:
        return None
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    if odd > 3 * max(even, 1):
        return UTF16_LE
    if even > 3 * max(odd, 1):
        return UTF16_BE
    return None


class Utf8Check:
    """Strict UTF-8 validation fed block by block (alongside the content hash, so the
    file is read once); remembers where the first invalid byte was."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder(UTF8)("strict")
        self._offset = 0
        self.first_error: int | None = None

    def feed(self, block: bytes, *, final: bool = False) -> None:
        if self.first_error is not None:
            return
        pending = len(self._decoder.getstate()[0])  # bytes of a character cut by the block
        if not pending and block.isascii():  # the common case, checked without decoding
            self._offset += len(block)
            return
        try:
            self._decoder.decode(block, final=final)
        except UnicodeDecodeError as exc:
            self.first_error = self._offset - pending + max(exc.start, 0)
        self._offset += len(block)

    @property
    def valid(self) -> bool:
        return self.first_error is None


_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_HIGH = re.compile(rb"[\x80-\xff]")


# The legacy encodings exports come in, most common first: a detector cannot tell
# them apart on a short sample, so among its equally good candidates the first wins.
LEGACY = (
    "cp1252", "cp1250", "cp1251", "cp1254", "cp1257", "cp1253", "shift_jis", "gb18030",
    "big5", "euc_kr", "koi8_r", "mac_roman",
)  # fmt: skip


def legacy_encoding(sample: bytes) -> Encoding | None:
    """The encoding of a file that is not valid UTF-8, or None when none fits.

    A file that is mostly UTF-8 with a few broken values (a row pasted from elsewhere)
    stays UTF-8: its broken values are rejected. Otherwise a detector ranks the common
    legacy encodings; ties go to the more common one (cp1252 for Western text).
    """
    good = sum(len(m) for m in _UTF8_MULTIBYTE.findall(sample))
    high = len(_HIGH.findall(sample))
    if good and 2 * good >= high:  # most high bytes form valid UTF-8 sequences
        return Encoding(UTF8, valid=False, how="mostly UTF-8; undecodable values rejected")
    from charset_normalizer import from_bytes

    matches = list(from_bytes(sample, cp_isolation=list(LEGACY)))
    if not matches:
        return None
    least = min(m.chaos for m in matches)
    tied = [m.encoding for m in matches if m.chaos <= least + 0.01]
    codec = min(tied, key=lambda c: LEGACY.index(c) if c in LEGACY else len(LEGACY))
    if codec != "cp1252" and _decodes_alike(sample, codec, "cp1252"):
        codec = "cp1252"
    return Encoding(codecs.lookup(codec).name, valid=False, how="not UTF-8; detected")


def _decodes_alike(sample: bytes, codec: str, other: str) -> bool:
    try:
        return sample.decode(codec) == sample.decode(other)
    except UnicodeDecodeError:
        return False


def check_codec(name: str) -> str:
    """The canonical codec name, or ``LookupError`` for an unknown one."""
    return codecs.lookup(name).name


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    how: str

    @property
    def name(self) -> str:
        return _DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))


def sniff_delimiter(lines: Sequence[str], *, explicit: str | None, suffix: str) -> Dialect:
    """The delimiter that splits the header and the sample lines into the same number of
    fields (more than one); ties go to the file type's usual one (tab for .tsv/.txt)."""
    if explicit:
        return Dialect(_unescape(explicit), "--delimiter / ingest.delimiter")
    text = "\n".join(lines)
    preferred = "\t" if suffix in (".tsv", ".txt") else ","
    best: tuple[float, int, int, str] | None = None
    for delim in DELIMITERS:
        rows = list(csv.reader(io.StringIO(text), delimiter=delim))
        rows = [r for r in rows if r]
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        body = rows[1:] or rows
        agree = sum(len(r) == width for r in body) / len(body)
        score = (agree, width, int(delim == preferred), delim)
        if best is None or score[:3] > best[:3]:
            best = score
    if best is None:
        return Dialect(preferred, "default (one column)")
    return Dialect(best[3], "sniffed from the header and sample")


def _unescape(value: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    return named.get(value.lower(), value)


# A decimal mark followed by one, two or four and more digits (three would be a group).
_COMMA_DECIMAL = re.compile(r"^\D*-?(\d{1,3}([. ]\d{3})*|\d+),(\d{1,2}|\d{4,})\D*$")
_DOT_DECIMAL = re.compile(r"^\D*-?(\d{1,3}([, ]\d{3})*|\d+)\.(\d{1,2}|\d{4,})\D*$")


def decimal_mark(values: pl.Series) -> str | None:
    """ "," when the amounts prove a decimal comma ("12,50", "1.234,50": a comma not
    followed by exactly three digits) and none proves a decimal point; "." for the
    reverse; None when the sample proves neither."""
    text = values.cast(pl.String).str.strip_chars().drop_nulls()
    comma = bool(text.str.contains(_COMMA_DECIMAL.pattern).any())
    dot = bool(text.str.contains(_DOT_DECIMAL.pattern).any())
    if comma and not dot:
        return ","
    if dot and not comma:
        return "."
    return None
