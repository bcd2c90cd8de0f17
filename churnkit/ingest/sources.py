"""One seam for every kind of input file: a ``Source`` says who it is (path and content
hash), how it was read (encoding, delimiter), and gives its rows as a LazyFrame with a
locator (file and line) for rejects.

CSV-family files (``.csv``, ``.tsv``, ``.txt``, gzipped or not) are read as text, so
parsing stays in ingest's hands and no row is lost to type inference; their encoding
and delimiter are decided from evidence (see ``dialect``). A file that is not UTF-8 is
transcoded once into a UTF-8 staging copy, with undecodable bytes marked so the rows
holding them are rejected, never silently altered. Parquet keeps its own types.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import os
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import polars as pl

from churnkit.core.errors import DataError
from churnkit.core.io import LINE, OVERFLOW, OVERFLOW_COLUMNS, first_line, is_parquet
from churnkit.ingest import dialect
from churnkit.ingest.dialect import REPLACEMENT, Dialect, Encoding

BLOCK = 1 << 20
HEAD_BYTES = 1 << 20
SPREAD_CHUNKS = 16
CHUNK_BYTES = 1 << 16


# Hashing runs beside the parse (hashlib releases the GIL): its answer is needed only
# to skip a file seen before, which a file of a size never seen cannot be.
_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="churnkit-sha256")


@dataclass(frozen=True)
class SourceId:
    """A source's identity: where it is, its size, and what it holds (SHA-256 of its
    bytes, computed in the background)."""

    path: Path
    size: int
    digest: Future[str] = field(repr=False, compare=False)

    @property
    def sha256(self) -> str:
        """Waits for the hash; a ``DataError`` when the file could not be read."""
        return self.digest.result()

    @property
    def batch(self) -> str:
        return self.sha256[:16]


def source_id(path: Path) -> SourceId:
    return SourceId(path, path.stat().st_size, _HASHER.submit(_hash, path))


class Source(Protocol):
    """What ingest needs from an input file, whatever its format."""

    @property
    def id(self) -> SourceId: ...

    @property
    def format(self) -> str: ...

    @property
    def encoding(self) -> str | None: ...

    @property
    def delimiter(self) -> str | None: ...

    @property
    def headers(self) -> list[str]:
        """The column names as written (duplicates included)."""
        ...

    @property
    def columns(self) -> list[str]:
        """The unique names the columns have in ``scan()``, aligned with ``headers``."""
        ...

    @property
    def undecodable(self) -> bool:
        """True when values may hold U+FFFD standing for bytes that did not decode."""
        ...

    def scan(self) -> pl.LazyFrame:
        """Every row, with its 1-based ``_line`` (the header is line 1)."""
        ...

    def sample(self, rows: int) -> pl.DataFrame:
        """About ``rows`` rows taken from the start and from across the whole file."""
        ...

    def count(self) -> int:
        """How many rows ``scan()`` yields, without parsing them."""
        ...

    def overflow(self) -> tuple[pl.Expr, pl.Expr]:
        """(row has more fields than the header, those fields as text)."""
        ...

    def close(self) -> None: ...


def unique_names(headers: Sequence[str]) -> list[str]:
    """Polars' names for repeated headers (``amount``, ``amount_duplicated_0``)."""
    seen: dict[str, int] = {}
    names: list[str] = []
    for header in headers:
        if header in seen:
            names.append(f"{header}_duplicated_{seen[header]}")
            seen[header] += 1
        else:
            seen[header] = 0
            names.append(header)
    return names


@dataclass
class ParquetSource:
    id: SourceId
    headers: list[str]
    format: str = "parquet"
    encoding: str | None = None
    delimiter: str | None = None
    undecodable: bool = False

    @property
    def columns(self) -> list[str]:
        return self.headers

    def scan(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.id.path).with_row_index(LINE, offset=1)

    def sample(self, rows: int) -> pl.DataFrame:
        lf = self.scan()
        try:
            total = int(pl.scan_parquet(self.id.path).select(pl.len()).collect().item())
            step = max(1, total // max(rows, 1))
            return lf.gather_every(step).head(rows).collect()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise DataError(
                f"{self.id.path}: cannot read Parquet file ({first_line(exc)})"
            ) from None

    def overflow(self) -> tuple[pl.Expr, pl.Expr]:
        return pl.lit(False), pl.lit(None, dtype=pl.String)

    def count(self) -> int:
        return _count(self)

    def close(self) -> None:
        return None


@dataclass
class CsvSource:
    id: SourceId
    text_path: Path  # the file polars reads: the source itself, or a UTF-8 staging copy
    headers: list[str]
    enc: Encoding
    dialect: Dialect
    gzipped: bool
    format: str = "csv"
    staged: bool = False
    columns: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.columns = unique_names(self.headers)

    @property
    def encoding(self) -> str:
        return self.enc.name

    @property
    def delimiter(self) -> str:
        return self.dialect.delimiter

    @property
    def undecodable(self) -> bool:
        return not self.enc.valid

    def _schema(self) -> dict[str, pl.DataType]:
        schema: dict[str, pl.DataType] = {name: pl.String() for name in self.columns}
        schema.update({f"{OVERFLOW}{i}": pl.String() for i in range(OVERFLOW_COLUMNS)})
        return schema

    def _scan(self, path: Path | bytes) -> pl.LazyFrame:
        return pl.scan_csv(
            path,
            has_header=False,
            skip_rows=1,
            separator=self.dialect.delimiter,
            schema=self._schema(),
            missing_columns="insert",
            truncate_ragged_lines=True,
            encoding="utf8" if self.enc.valid else "utf8-lossy",
        )

    def scan(self) -> pl.LazyFrame:
        return self._scan(self.text_path).with_row_index(LINE, offset=2)

    def sample(self, rows: int) -> pl.DataFrame:
        """The first rows plus lines from evenly spaced places in the file: a date
        format that only appears later (a new billing system from March) is seen."""
        try:
            head = self.scan().head(max(rows // 2, 1)).collect()
            if self.gzipped and not self.staged:
                return head
            size = self.text_path.stat().st_size
            if size <= HEAD_BYTES:
                return head
            spread = self._spread_lines(size, max(rows // 2, 1))
            if not spread:
                return head
            text = ("\n".join(["x", *spread]) + "\n").encode()
            frame = self._scan(text).with_row_index(LINE, offset=0).collect()
            return pl.concat([head, frame.with_columns(pl.lit(None, pl.UInt32).alias(LINE))])
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise DataError(f"{self.id.path}: cannot read file ({first_line(exc)})") from None

    def _spread_lines(self, size: int, rows: int) -> list[str]:
        per_chunk = max(rows // SPREAD_CHUNKS, 1)
        lines: list[str] = []
        with open(self.text_path, "rb") as handle:
            for i in range(1, SPREAD_CHUNKS + 1):
                handle.seek(size * i // (SPREAD_CHUNKS + 1))
                chunk = handle.read(CHUNK_BYTES).decode("utf-8", errors="replace")
                # Drop the partial lines at both ends of the chunk.
                lines += chunk.splitlines()[1:-1][:per_chunk]
        return lines

    def count(self) -> int:
        return _count(self)

    def overflow(self) -> tuple[pl.Expr, pl.Expr]:
        spare = [pl.col(f"{OVERFLOW}{i}") for i in range(OVERFLOW_COLUMNS)]
        flag = pl.any_horizontal(c.is_not_null() for c in spare)
        text = pl.concat_str(spare, separator=self.dialect.delimiter, ignore_nulls=True)
        return flag, text

    def close(self) -> None:
        if self.staged:
            self.text_path.unlink(missing_ok=True)


def _count(source: Source) -> int:
    try:
        return int(source.scan().select(pl.len()).collect().item())
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{source.id.path}: cannot read file ({first_line(exc)})") from None


def open_source(
    path: Path,
    *,
    staging: Path,
    encoding: str | None = None,
    delimiter: str | None = None,
    identity: SourceId | None = None,
) -> Source:
    """Identify and open one source file; a ``DataError`` names the file when it cannot
    be read at all."""
    try:
        identity = identity or source_id(path)
        if is_parquet(path):
            return _open_parquet(path, identity)
        return _open_text(path, identity, staging=staging, encoding=encoding, delimiter=delimiter)
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or first_line(exc)})") from None


def _open_parquet(path: Path, identity: SourceId) -> ParquetSource:
    try:
        schema = pl.read_parquet_schema(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(
            f"{path}: not a readable Parquet file ({first_line(exc)})",
            hint="the file may be truncated or corrupt; export it again",
        ) from None
    return ParquetSource(identity, list(schema))


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(BLOCK):
                digest.update(block)
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or first_line(exc)})") from None
    return digest.hexdigest()


def _check_utf8(path: Path) -> dialect.Utf8Check:
    check = dialect.Utf8Check()
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            check.feed(block)
    check.feed(b"", final=True)
    return check


def _head(path: Path, gzipped: bool) -> bytes:
    try:
        if gzipped:
            with gzip.open(path, "rb") as handle:
                return handle.read(HEAD_BYTES)
        with open(path, "rb") as handle:
            return handle.read(HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path}: not a readable gzip file ({first_line(exc)})",
            hint="the file may be truncated; export it again",
        ) from None


def _open_text(
    path: Path,
    identity: SourceId,
    *,
    staging: Path,
    encoding: str | None,
    delimiter: str | None,
) -> CsvSource:
    gzipped = path.name.lower().endswith(".gz")
    check = None if gzipped else _check_utf8(path)
    head = _head(path, gzipped)
    enc = _choose_encoding(path, head, check, explicit=encoding)
    text = head[enc.bom :].decode(enc.codec, errors="replace")
    if len(head) == HEAD_BYTES:
        text = text.rsplit("\n", 1)[0]  # a partial last line (or character) is not evidence
    lines = text.splitlines()[:200]
    suffix = _suffix(path)
    chosen = dialect.sniff_delimiter(lines, explicit=delimiter, suffix=suffix)
    headers = _header_row(lines, chosen.delimiter)
    if REPLACEMENT in "".join(headers):
        raise DataError(
            f"{path}: the header row does not decode as {enc.name}",
            hint="name the file's encoding with --encoding (e.g. cp1252, utf-16)",
        )
    text_path, staged = path, False
    if not enc.is_utf8:
        target = staging / f"{os.getpid()}-{abs(hash(str(path)))}.utf8.csv"
        text_path, staged = _transcode(path, enc, target, gzipped)
    return CsvSource(identity, text_path, headers, enc, chosen, gzipped, staged=staged)


def _suffix(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    return Path(name).suffix


def _choose_encoding(
    path: Path, head: bytes, check: dialect.Utf8Check | None, *, explicit: str | None
) -> Encoding:
    if explicit:
        try:
            codec = dialect.check_codec(explicit)
        except LookupError:
            raise DataError(
                f"unknown encoding {explicit!r}",
                hint="use a Python codec name such as utf-8, cp1252 or utf-16",
            ) from None
        how = "--encoding / ingest.encoding"
        if codec == "utf-8":
            skip = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
            valid = check is not None and check.valid
            return Encoding(dialect.UTF8_SIG if skip else dialect.UTF8, valid, how, skip)
        return Encoding(codec, False, how)
    bom = dialect.bom_encoding(head)
    if bom is not None:
        if bom.codec == dialect.UTF8_SIG:
            valid = check.valid if check is not None else False
            return Encoding(dialect.UTF8_SIG, valid, "byte-order mark", bom.bom)
        return bom
    utf16 = dialect.utf16_without_bom(head)
    if utf16 is not None:
        return Encoding(utf16, False, "NUL bytes between characters")
    if check is not None:
        if check.valid:
            return Encoding(dialect.UTF8, True, "valid UTF-8")
        return _legacy(path, head[: 1 << 16] + b"\n" + _around(path, check.first_error or 0))
    try:
        head.decode("utf-8")
        return Encoding(dialect.UTF8, False, "UTF-8 (start of the compressed file)")
    except UnicodeDecodeError as exc:
        if len(head) == HEAD_BYTES and exc.start >= len(head) - 4:
            return Encoding(dialect.UTF8, False, "UTF-8 (start of the compressed file)")
        return _legacy(path, head)


def _legacy(path: Path, sample: bytes) -> Encoding:
    found = dialect.legacy_encoding(sample)
    if found is None:
        raise DataError(
            f"{path}: the file is not UTF-8 and its encoding cannot be told",
            hint="name it with --encoding (e.g. cp1252, utf-16, shift_jis)",
        )
    return found


def _around(path: Path, offset: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(max(0, offset - (1 << 15)))
        return handle.read(1 << 16)


def _header_row(lines: Sequence[str], delimiter: str) -> list[str]:
    if not lines:
        return []
    rows = csv.reader(io.StringIO("\n".join(lines[:50])), delimiter=delimiter)
    header = next(rows, [])
    return [h.strip() for h in header]


def _transcode(path: Path, enc: Encoding, target: Path, gzipped: bool) -> tuple[Path, bool]:
    """Write a UTF-8 copy; bytes that do not decode become U+FFFD, which ingest rejects
    as ``invalid encoding`` (the copy is never the stored data)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    decoder = codecs.getincrementaldecoder(enc.codec)("replace")
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as src, open(target, "w", encoding="utf-8", newline="") as dst:
            src.read(enc.bom)
            while block := src.read(BLOCK):
                dst.write(decoder.decode(block))
            dst.write(decoder.decode(b"", final=True))
    except (OSError, EOFError, zlib.error) as exc:
        target.unlink(missing_ok=True)
        raise DataError(f"{path}: cannot read file ({first_line(exc)})") from None
    os.chmod(target, 0o600)
    return target, True
