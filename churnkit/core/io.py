"""Reading sources and writing outputs: the only module that knows file formats.

Sources are scanned lazily (CSV as text, so parsing stays in our hands and no row
is lost to type inference). Outputs are written atomically by extension, and CSV
cells a spreadsheet would run as formulas are escaped.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from churnkit.core.errors import DataError
from churnkit.core.schema import BATCH, DEDUP_KEY, RELATIONS_SCHEMA
from churnkit.core.workspace import Workspace, atomic_path, write_text_atomic

TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
SOURCE_SUFFIXES = (*TEXT_SUFFIXES, *(f"{s}.gz" for s in TEXT_SUFFIXES), ".parquet", ".pq")
SUPPORTED_HINT = "use .csv, .tsv, .txt (optionally .gz) or .parquet"
LINE = "_line"
OVERFLOW = "_overflow_"
OVERFLOW_COLUMNS = 1
# Leading characters that make a spreadsheet evaluate a cell (OWASP's CSV injection list).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def expand_sources(sources: Iterable[str | Path]) -> list[Path]:
    """Files, directories (their supported files, sorted) and globs → file list.

    A ``.txt`` file found in a directory is taken only when its first line looks like
    a delimited header (a README beside the exports is not data); named explicitly or
    by a glob it is always taken.
    """
    files: list[Path] = []
    for source in sources:
        text = str(source)
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if _supported(p) and _tabular(p))
            if not found:
                raise DataError(
                    f"{path}: directory holds no CSV, TSV or Parquet files",
                    hint=SUPPORTED_HINT,
                )
            files += found
        elif path.is_file():
            if not _supported(path):
                raise DataError(f"{path}: unsupported file type", hint=SUPPORTED_HINT)
            files.append(path)
        elif any(ch in text for ch in "*?["):
            matched = sorted(
                Path(p) for p in glob.glob(text, recursive=True) if _supported(Path(p))
            )
            if not matched:
                raise DataError(f"{text}: the pattern matches no CSV, TSV or Parquet file")
            files += matched
        else:
            raise DataError(f"{text}: no such file or directory", hint="check the path")
    return list(dict.fromkeys(files))


def _supported(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(SOURCE_SUFFIXES)


def _tabular(path: Path) -> bool:
    if not path.name.lower().endswith((".txt", ".txt.gz")):
        return True
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as handle:
            first = handle.readline(1 << 16)
    except (OSError, EOFError):
        return True  # let ingest say why it cannot be read
    if first[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True  # UTF-16 "Unicode text" from Excel
    return any(first.count(d) >= 1 for d in (b",", b";", b"\t", b"|"))


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith((".parquet", ".pq"))


def content_hash(path: Path) -> str:
    """SHA-256 of the bytes: the identity of a batch, whatever its file name."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message: enough to name the problem."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def scan_events(workspace: Workspace, data: Path | None = None) -> pl.LazyFrame:
    """The ingested event log as one LazyFrame (or an explicit --data file)."""
    if data is not None:
        if not data.exists():
            raise DataError(f"{data}: no such file", hint="pass an ingested Parquet file")
        return pl.scan_parquet(data)
    files = workspace.require_events()
    check_parquet(files)
    # Each file is one batch; its id (``_batch``) comes from the manifest.
    ids = [b["id"] for b in workspace.read_manifest()["batches"] if b.get("data")]
    frames = [
        pl.scan_parquet(f).with_columns(pl.lit(i, dtype=pl.String).alias(BATCH))
        for f, i in zip(files, ids, strict=True)
    ]
    lf = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
    return lf.drop(DEDUP_KEY, LINE, "_status", strict=False)


def check_parquet(files: Sequence[Path]) -> None:
    """Read each file's footer, so a truncated or corrupt file is a data error naming it
    (exit 3) before a query fails somewhere deep inside."""
    for path in files:
        try:
            pl.read_parquet_schema(path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise DataError(
                f"{path}: not a readable Parquet file ({first_line(exc)})",
                hint="the file is truncated or corrupt: restore it, or remove its batch "
                "from manifest.json and ingest its source again",
            ) from None


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
