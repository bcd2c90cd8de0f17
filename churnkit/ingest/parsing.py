"""Polars expressions that turn messy export strings into canonical values.

Nothing here reads files: the functions take a small sample of a column (to decide
its format once, instead of guessing per value, which is 3.5x slower) and return
expressions that run inside the streaming ingest query. A value that cannot be
parsed becomes null, and ingest turns that null into a named reject reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from churnkit.core.errors import DataError
from churnkit.core.schema import EventKind

DATETIME = pl.Datetime("us")

# Day-first/month-first forms are kept apart: which order applies is decided per
# column (evidence in the sample or `ingest.date_order`), never per value.
# `%.f` also matches no fraction at all, so one format covers both forms.
_ISO_FORMATS = (
    # Exact forms first: chrono has a fast path for them (3x cheaper than ``%.f``).
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
)
_ISO_OFFSET_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S %z",  # Shopify: "2024-01-15 10:12:31 -0500"
)
# Zone abbreviations some exports append ("2012-01-19 11:16:41 PST"), as UTC offsets.
ZONE_ABBREVIATIONS = {
    "UTC": "+0000", "GMT": "+0000", "Z": "+0000",
    "EST": "-0500", "EDT": "-0400", "CST": "-0600", "CDT": "-0500",
    "MST": "-0700", "MDT": "-0600", "PST": "-0800", "PDT": "-0700",
    "CET": "+0100", "CEST": "+0200",
}  # fmt: skip
_ZONE_SUFFIX = re.compile(r"\s([A-Z]{3,4})$")
_DAY_MONTH_TAILS = ("%Y %H:%M:%S", "%Y %H:%M", "%Y", "%y")
_SEPARATORS = ("/", ".", "-")
_AMBIGUOUS_DATE = re.compile(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{2,4}\b")
_UNIX = re.compile(r"^\s*\d{9,13}(\.\d+)?\s*$")


def _day_month_formats(order: str) -> list[str]:
    first, second = ("%d", "%m") if order == "dmy" else ("%m", "%d")
    return [f"{first}{sep}{second}{sep}{tail}" for sep in _SEPARATORS for tail in _DAY_MONTH_TAILS]


@dataclass(frozen=True)
class DatePlan:
    """How one date column is parsed, decided once from a sample."""

    formats: tuple[str, ...]
    offset_formats: tuple[str, ...]
    unix_unit: str | None  # "s", "ms" or None
    zones: tuple[str, ...] = ()  # zone abbreviations to read as offsets
    primary: str | None = None  # the format most values use: tried alone first


def plan_dates(
    column: str,
    sample: Sequence[str | None],
    *,
    order: str,
    extra_formats: Sequence[str] = (),
    source: str,
) -> DatePlan:
    """Choose the formats a date column uses.

    Day/month order comes from ``order`` ("dmy"/"mdy"), or with "auto" from evidence
    in the sample (a first field above 12 proves day-first). Slash dates with no
    evidence either way are an error: guessing would silently swap days and months.
    """
    stripped = [v.strip() for v in sample if v and v.strip()]
    zones = tuple(
        sorted(
            {
                m.group(1)
                for v in stripped
                if (m := _ZONE_SUFFIX.search(v)) and m.group(1) in ZONE_ABBREVIATIONS
            }
        )
    )
    values = [_zulu(_zone(v)) for v in stripped]
    ambiguous = [m for v in values if (m := _AMBIGUOUS_DATE.match(v))]
    if ambiguous and order == "auto":
        day_first = any(int(m.group(1)) > 12 for m in ambiguous)
        month_first = any(int(m.group(2)) > 12 for m in ambiguous)
        if day_first and month_first:
            raise DataError(
                f"{source}: column {column!r} mixes day-first and month-first dates",
                hint="fix the export, or set ingest.date_order to dmy or mdy to choose one",
            )
        if not (day_first or month_first):
            raise DataError(
                f"{source}: column {column!r} has dates like {ambiguous[0].group(0)!r} that "
                "could be day-first or month-first",
                hint="set ingest.date_order to dmy or mdy in the config",
            )
        order = "dmy" if day_first else "mdy"
    formats = list(extra_formats) + list(_ISO_FORMATS)
    if ambiguous:
        formats += _day_month_formats(order if order != "auto" else "dmy")
    unix = [v for v in values if _UNIX.match(v)]
    unit = None
    if unix:
        unit = "ms" if max(len(v.split(".")[0]) for v in unix) >= 12 else "s"
    used = _formats_seen(values, formats) if values else formats[: len(extra_formats) + 1]
    offsets = _formats_seen(values, list(_ISO_OFFSET_FORMATS)) if values else []
    primary = _most_common(values, [*used[:1], *offsets[:1]])
    return DatePlan(tuple(used or formats[:1]), tuple(offsets), unit, zones, primary)


def _most_common(values: Sequence[str], candidates: Sequence[str]) -> str | None:
    if not values or not candidates:
        return None
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    counts = frame.select(
        [
            _strptime(pl.col("v"), f).is_not_null().sum().alias(str(i))
            for i, f in enumerate(candidates)
        ]
    ).row(0)
    return candidates[max(range(len(candidates)), key=lambda i: counts[i])]


def _zone(value: str) -> str:
    m = _ZONE_SUFFIX.search(value)
    if m and m.group(1) in ZONE_ABBREVIATIONS:
        return value[: m.start(1)] + ZONE_ABBREVIATIONS[m.group(1)]
    return value


def _zulu(value: str) -> str:
    return value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value


def _strptime(
    text: pl.Expr, fmt: str, dtype: pl.Datetime = DATETIME, *, guard: bool = True
) -> pl.Expr:
    """``strptime`` that lets ``%Y`` match only four-digit years: chrono would read
    the "25" of "14/03/25" as the year 25, hiding the ``%y`` form that fits. The guard
    costs a pass, so it is dropped when no two-digit-year form is in play."""
    parsed = text.str.strptime(dtype, fmt, strict=False)
    if "%Y" not in fmt or not guard:
        return parsed
    return pl.when(text.str.contains(r"\d{4}")).then(parsed)


def _formats_seen(values: Sequence[str], formats: Sequence[str]) -> list[str]:
    """The formats needed to parse the sample, most frequent first: a format that
    parses no value the ones before it missed is left out (each costs a pass)."""
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    parsed = frame.select(
        [_strptime(pl.col("v"), f).is_not_null().alias(str(i)) for i, f in enumerate(formats)]
    )
    counts = [int(parsed[str(i)].sum()) for i in range(len(formats))]
    ranked = sorted((i for i, c in enumerate(counts) if c), key=lambda i: (-counts[i], i))
    covered = pl.Series([False] * frame.height)
    kept = []
    for i in ranked:
        new = parsed[str(i)] & ~covered
        if new.any():
            kept.append(formats[i])
            covered = covered | parsed[str(i)]
    return kept


def parse_datetime(
    expr: pl.Expr, dtype: pl.DataType, plan: DatePlan | None, *, timezone: str
) -> pl.Expr:
    """Any supported representation → naive UTC ``Datetime('us')``.

    Naive values are read in the source ``timezone``; values with an offset are
    already absolute. Values that fit no format become null.
    """
    if dtype.is_temporal():
        as_dt = expr.cast(DATETIME) if dtype == pl.Date else expr
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            return as_dt.dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(DATETIME)
        return _local_to_utc(as_dt.cast(DATETIME), timezone)
    if dtype.is_numeric():
        return _from_unix(
            expr.cast(pl.Float64), unit="ms" if plan and plan.unix_unit == "ms" else "s"
        )
    assert plan is not None
    single = len(plan.formats) + len(plan.offset_formats) == 1 and not plan.unix_unit
    if plan.primary is not None and single:  # one format fits the sample: no fallback
        return _one_format(expr.str.strip_chars(), plan, timezone=timezone)
    if plan.primary is not None:
        full = _text_dates(pl.col("v"), plan, timezone=timezone)
        first = _one_format(pl.col("v").str.strip_chars(), plan, timezone=timezone)
        return expr.map_batches(
            lambda s: _first_then_rest(s, first, full),
            return_dtype=DATETIME,
            is_elementwise=True,
        )
    return _text_dates(expr, plan, timezone=timezone)


def _first_then_rest(series: pl.Series, first: pl.Expr, full: pl.Expr) -> pl.Series:
    """Parse a chunk with its column's main format; only the values that format misses
    (a few messy rows) pay for the other formats."""
    frame = series.to_frame("v")
    out = frame.select(first).to_series()
    todo = out.is_null() & series.is_not_null()
    if todo.any():
        rows = todo.arg_true()
        rest = frame[rows].select(full).to_series()
        out = out.scatter(rows, rest)
    return out.alias(series.name)


def _one_format(text: pl.Expr, plan: DatePlan, *, timezone: str) -> pl.Expr:
    fmt = plan.primary
    assert fmt is not None
    if fmt in _ISO_OFFSET_FORMATS:
        for zone in plan.zones:
            text = text.str.replace(rf"\s{zone}$", " " + ZONE_ABBREVIATIONS[zone])
        text = text.str.replace(r"[Zz]$", "+00:00")
        return text.str.strptime(pl.Datetime("us", "UTC"), fmt, strict=False).dt.replace_time_zone(
            None
        )
    guard = any("%y" in f for f in plan.formats)
    return _local_to_utc(_strptime(text, fmt, guard=guard), timezone)


def _text_dates(expr: pl.Expr, plan: DatePlan, *, timezone: str) -> pl.Expr:
    text = expr.str.strip_chars()
    for zone in plan.zones:
        text = text.str.replace(rf"\s{zone}$", " " + ZONE_ABBREVIATIONS[zone])
    guard = any("%y" in f for f in plan.formats)
    naive = [_strptime(text, f, guard=guard) for f in plan.formats]
    if plan.offset_formats:
        text = text.str.replace(r"[Zz]$", "+00:00")
    candidates = [_local_to_utc(pl.coalesce(naive), timezone)] if naive else []
    candidates += [
        text.str.strptime(pl.Datetime("us", "UTC"), f, strict=False).dt.replace_time_zone(None)
        for f in plan.offset_formats
    ]
    if plan.unix_unit:
        numeric = pl.when(text.str.contains(_UNIX.pattern)).then(
            text.cast(pl.Float64, strict=False)
        )
        candidates.append(_from_unix(numeric, unit=plan.unix_unit))
    return pl.coalesce(candidates)


def _local_to_utc(expr: pl.Expr, timezone: str) -> pl.Expr:
    if timezone.upper() == "UTC":
        return expr
    return (
        expr.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
        .dt.replace_time_zone(None)
    )


def _from_unix(seconds_or_ms: pl.Expr, *, unit: str) -> pl.Expr:
    micros = seconds_or_ms * (1_000 if unit == "ms" else 1_000_000)
    return micros.round(0).cast(pl.Int64, strict=False).cast(DATETIME)


_CURRENCY = r"(?:[A-Z]{3}|[$€£¥₹])"
_INTEGER = {".": r"(?:\d{1,3}(?:[,' ]\d{3})+|\d+)", ",": r"(?:\d{1,3}(?:[.' ]\d{3})+|\d+)"}
_FRACTION = {".": r"(?:\.\d+)?", ",": r"(?:,\d+)?"}


def _amount_pattern(decimal: str) -> str:
    """One regex for a whole well-formed amount, so validation is a single pass."""
    number = _INTEGER[decimal] + _FRACTION[decimal]
    return rf"^\(?-?\s*{_CURRENCY}?\s*-?\s*{number}\s*{_CURRENCY}?\s*\)?$"


def parse_amount(expr: pl.Expr, dtype: pl.DataType, *, decimal: str) -> pl.Expr:
    """Money strings → float: currency symbols/codes, thousands separators, decimal
    comma (by config), a leading minus or accounting parentheses "(12.00)".

    Blank cells are 0.0 (an absent amount is 0.0, docs/contract.md); anything else that is not a
    well-formed number is null, so "12..5" or "1.234,50" under decimal "." are rejected
    instead of being read as a different number. Plain numbers take a fast path; only
    the rest pays for the full pattern.
    """
    if dtype.is_numeric():
        return expr.cast(pl.Float64)
    if decimal != ".":
        return _amount_text(expr, decimal)
    full = _amount_text(pl.col("v"), decimal)
    return expr.map_batches(
        lambda s: _plain_then_rest(s, full), return_dtype=pl.Float64, is_elementwise=True
    )


def _plain_then_rest(series: pl.Series, full: pl.Expr) -> pl.Series:
    out = series.cast(pl.Float64, strict=False)
    todo = ~out.is_finite().fill_null(False)
    if todo.any():
        rows = todo.arg_true()
        out = out.scatter(rows, series.to_frame("v")[rows].select(full).to_series())
    return out.alias(series.name)


def _amount_text(expr: pl.Expr, decimal: str) -> pl.Expr:
    text = expr.str.strip_chars()
    negative = text.str.starts_with("(") | text.str.contains("-", literal=True)
    if decimal == ".":
        plain = text.str.replace_all(r"[^0-9.]", "")
    else:
        plain = text.str.replace_all(r"[^0-9,]", "").str.replace(",", ".", literal=True)
    value = plain.cast(pl.Float64, strict=False)
    signed = pl.when(negative).then(-value).otherwise(value)
    return (
        pl.when(text.is_null() | (text == ""))
        .then(pl.lit(0.0))
        .when(text.str.contains(_amount_pattern(decimal)))
        .then(signed)
        .otherwise(None)
    )


def on_distinct(
    expr: pl.Expr,
    parse: Callable[[pl.Expr], pl.Expr],
    dtype: pl.DataType,
    seen: Sequence[str],
) -> pl.Expr:
    """``parse`` for a column that repeats a handful of values (status, plan, reason,
    card expiry): the values ``seen`` in the sample are parsed once and looked up;
    only values the sample missed are parsed, per chunk."""
    old = pl.Series("v", list(seen), dtype=pl.String)
    new = old.to_frame().select(parse(pl.col("v")).alias("v")).to_series()
    positions = pl.Series("p", range(len(old)), dtype=pl.UInt32)

    def apply(series: pl.Series) -> pl.Series:
        at = series.replace_strict(old, positions, default=None, return_dtype=pl.UInt32)
        out = new.gather(at)
        todo = at.is_null() & series.is_not_null()
        if todo.any():
            rows = todo.arg_true()
            rest = series.gather(rows).to_frame("v").select(parse(pl.col("v"))).to_series()
            out = out.scatter(rows, rest)
        return out.alias(series.name)

    return expr.map_batches(apply, return_dtype=dtype, is_elementwise=True)


def parse_number(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Plain numbers (quantities); blank → null, garbage → NaN marker for rejection."""
    if dtype.is_numeric():
        return expr.cast(pl.Float64)
    text = expr.str.strip_chars()
    value = text.str.replace_all(",", "").cast(pl.Float64, strict=False)
    return (
        pl.when(text.is_null() | (text == "")).then(None).otherwise(value.fill_null(float("nan")))
    )


# The default status synonyms (docs/contract.md); `ingest.status_map` extends or overrides them.
_SYNONYMS: dict[EventKind, tuple[str, ...]] = {
    EventKind.PURCHASE: (
        "paid",
        "succeeded",
        "success",
        "completed",
        "complete",
        "settled",
        "charged",
        "purchase",
        "order",
    ),
    EventKind.PAYMENT_FAILED: (
        "failed",
        "declined",
        "card_declined",
        "expired_card",
        "insufficient_funds",
        "payment_failed",
        "failure",
    ),
    EventKind.REFUND: ("refunded", "refund", "chargeback", "reversed"),
    EventKind.CANCEL: ("canceled", "cancelled", "cancel", "churned", "unsubscribed", "terminated"),
    EventKind.SIGNUP: ("signup", "sign_up", "signed_up", "trial_started", "subscribed", "created"),
    EventKind.COMPLAINT: ("complaint", "ticket", "support_ticket"),
    EventKind.PLAN_CHANGE: ("plan_change", "upgrade", "upgraded", "downgrade", "downgraded"),
    EventKind.USAGE: ("usage", "login", "activity"),
    EventKind.OTHER: ("other",),
}
DEFAULT_STATUS_MAP: dict[str, EventKind] = {
    status: kind for kind, names in _SYNONYMS.items() for status in names
}


def status_lookup(overrides: Mapping[str, EventKind]) -> dict[str, str]:
    """Lower-cased status text → kind value, config overrides winning."""
    table = {k: v.value for k, v in DEFAULT_STATUS_MAP.items()}
    table.update({_status_key(k): EventKind(v).value for k, v in overrides.items()})
    return table


def _status_key(status: str) -> str:
    return re.sub(r"[\s\-]+", "_", status.strip().lower())


def normalised_status(expr: pl.Expr) -> pl.Expr:
    """The same normalisation as the lookup keys: case, spaces and hyphens ignored."""
    return expr.str.strip_chars().str.to_lowercase().str.replace_all(r"[\s\-]+", "_")


def parse_kind(expr: pl.Expr, lookup: Mapping[str, str]) -> pl.Expr:
    """Status text → canonical kind; unknown or blank statuses become ``other``."""
    return normalised_status(expr).replace_strict(
        dict(lookup), default=EventKind.OTHER.value, return_dtype=pl.String
    )


def card_expiry_from_text(expr: pl.Expr) -> pl.Expr:
    """ "MM/YY", "MM/YYYY" or "YYYY-MM" → the first day of the month after expiry.

    The two-digit form is tried first, so "03/27" is 2027, not the year 27.
    """
    text = expr.str.replace_all(" ", "", literal=True)
    first = pl.coalesce(
        ("01/" + text).str.strptime(pl.Date, "%d/%m/%y", strict=False),
        ("01/" + text).str.strptime(pl.Date, "%d/%m/%Y", strict=False),
        (text + "-01").str.strptime(pl.Date, "%Y-%m-%d", strict=False),
    )
    return first.dt.offset_by("1mo")


def card_expiry_from_parts(month: pl.Expr, year: pl.Expr) -> pl.Expr:
    """Month and year (two-digit years are 20YY) → first day of the following month."""
    m = month.cast(pl.String).str.strip_chars().cast(pl.Int32, strict=False)
    y = year.cast(pl.String).str.strip_chars().cast(pl.Int32, strict=False)
    y = pl.when(y < 100).then(y + 2000).otherwise(y)
    valid = m.is_between(1, 12) & y.is_between(1970, 2200)
    first = pl.date(y, m, 1)
    return pl.when(valid).then(first.dt.offset_by("1mo"))
