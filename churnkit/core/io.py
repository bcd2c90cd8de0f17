"""Reading sources and writing outputs: the only module that knows file formats.

Sources are scanned lazily (CSV as text, so parsing stays in our hands and no row
is lost to type inference). Outputs are written atomically by extension, and CSV
cells a spreadsheet would run as formulas are escaped.
"""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from churnkit.core.errors import DataError
from churnkit.core.schema import DEDUP_KEY, RELATIONS_SCHEMA
from churnkit.core.workspace import Workspace, atomic_path, write_text_atomic

SOURCE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
LINE = "_line"
OVERFLOW = "_overflow_"
OVERFLOW_COLUMNS = 8
# Leading characters that make a spreadsheet evaluate a cell (OWASP's CSV injection list).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def expand_sources(sources: Iterable[str | Path]) -> list[Path]:
    """Files, directories (their supported files, sorted) and globs → file list."""
    files: list[Path] = []
    for source in sources:
        text = str(source)
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if _supported(p))
            if not found:
                raise DataError(
                    f"{path}: directory holds no CSV or Parquet files",
                    hint="point at files ending in .csv, .csv.gz or .parquet",
                )
            files += found
        elif path.is_file():
            if not _supported(path):
                raise DataError(
                    f"{path}: unsupported file type", hint="use .csv, .csv.gz or .parquet"
                )
            files.append(path)
        elif any(ch in text for ch in "*?["):
            matched = sorted(
                Path(p) for p in glob.glob(text, recursive=True) if _supported(Path(p))
            )
            if not matched:
                raise DataError(f"{text}: the pattern matches no CSV or Parquet file")
            files += matched
        else:
            raise DataError(f"{text}: no such file or directory", hint="check the path")
    return list(dict.fromkeys(files))


def _supported(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(SOURCE_SUFFIXES)


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith((".parquet", ".pq"))


def scan_source(path: Path) -> pl.LazyFrame:
    """A lazy view of one source with a 1-based ``_line`` (CSV: the file's line number,
    counting the header as line 1; Parquet: the row number).

    CSV is read as text with a few spare ``_overflow_*`` columns: a row with more
    fields than the header (an unquoted comma in "$1,234.50") fills them and is
    rejected, instead of having its values silently shifted or failing the file.
    """
    try:
        if is_parquet(path):
            return pl.scan_parquet(path).with_row_index(LINE, offset=1)
        headers = pl.read_csv(path, n_rows=0, infer_schema=False, encoding="utf8-lossy").columns
        schema = dict.fromkeys(headers, pl.String) | {
            f"{OVERFLOW}{i}": pl.String for i in range(OVERFLOW_COLUMNS)
        }
        return pl.scan_csv(
            path,
            has_header=False,
            skip_rows=1,
            schema=schema,
            missing_columns="insert",
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
        ).with_row_index(LINE, offset=2)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path}: cannot read file ({_first_line(exc)})") from None


def source_headers(schema: pl.Schema) -> list[str]:
    """The source's own columns (without the line number and overflow columns)."""
    return [c for c in schema.names() if c != LINE and not c.startswith(OVERFLOW)]


def overflowed(schema: pl.Schema) -> pl.Expr:
    """True for rows with more fields than the header."""
    spare = [c for c in schema.names() if c.startswith(OVERFLOW)]
    if not spare:
        return pl.lit(False)
    return pl.any_horizontal(pl.col(c).is_not_null() for c in spare)


def source_schema(path: Path, lf: pl.LazyFrame) -> pl.Schema:
    try:
        return lf.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(
            f"{path}: cannot read file ({_first_line(exc)})",
            hint="check that it is a CSV with a header row, or a Parquet file",
        ) from None


def collect_sample(path: Path, lf: pl.LazyFrame, rows: int) -> pl.DataFrame:
    try:
        return lf.head(rows).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path}: cannot read file ({_first_line(exc)})") from None


def content_hash(path: Path) -> str:
    """SHA-256 of the bytes: the identity of a batch, whatever its file name."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def scan_events(workspace: Workspace, data: Path | None = None) -> pl.LazyFrame:
    """The ingested event log as one LazyFrame (or an explicit --data file)."""
    if data is not None:
        if not data.exists():
            raise DataError(f"{data}: no such file", hint="pass an ingested Parquet file")
        return pl.scan_parquet(data)
    files = workspace.require_events()
    frames = [pl.scan_parquet(f) for f in files]
    lf = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
    return lf.drop(DEDUP_KEY, strict=False)


def scan_relations(workspace: Workspace) -> pl.LazyFrame | None:
    if not workspace.relations_path.exists():
        return None
    return pl.scan_parquet(workspace.relations_path).cast(RELATIONS_SCHEMA, strict=False)  # type: ignore[arg-type]


def escape_formula(expr: pl.Expr) -> pl.Expr:
    """Prefix a text cell that starts like a formula with a quote, so a spreadsheet
    shows it instead of running it (``=HYPERLINK(...)`` stays text)."""
    pattern = "^[" + "".join(FORMULA_PREFIXES).replace("-", r"\-") + "]"
    return pl.when(expr.str.contains(pattern)).then("'" + expr).otherwise(expr)


def escape_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        escape_formula(pl.col(c)).alias(c)
        for c, dtype in frame.schema.items()
        if dtype == pl.String
    )


def overflow_text(schema: pl.Schema) -> pl.Expr:
    """The fields beyond the header, joined, so a reject shows the whole raw row."""
    spare = [pl.col(c) for c in schema.names() if c.startswith(OVERFLOW)]
    if not spare:
        return pl.lit(None, dtype=pl.String)
    return pl.concat_str(spare, separator=",", ignore_nulls=True)


def write_table(frame: pl.DataFrame, path: Path) -> None:
    """Write by extension (.parquet, .csv, .json), atomically."""
    suffix = path.suffix.lower()
    try:
        with atomic_path(path) as tmp:
            if suffix in (".parquet", ".pq"):
                frame.write_parquet(tmp)
            elif suffix == ".csv":
                escape_formulas(frame).write_csv(tmp)
            elif suffix == ".json":
                tmp.write_text(json.dumps(frame.to_dicts(), indent=2, default=str))
            else:
                raise DataError(
                    f"{path}: unsupported output type", hint="use .parquet, .csv or .json"
                )
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror}") from None


def write_json(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, default=str))


def columns_of(lf: pl.LazyFrame) -> Sequence[str]:
    return lf.collect_schema().names()
