"""The customer hash that decides a customer's bucket, the same everywhere and forever.

A customer's bucket is ``fmix64(fnv1a64(utf8(customer_id))) % buckets``: the 64-bit
FNV-1a hash (offset basis 0xcbf29ce484222325, prime 0x100000001b3) of the id's UTF-8
bytes, then MurmurHash3's 64-bit finaliser. Both are published and seedless, so any
process on any machine, and any other tool, computes the same bucket; Python's
``hash`` (salted per process) and Polars' ``Series.hash`` (stable only within one
Polars version) would not. The finaliser matters: FNV-1a's low bits depend simply
on the last byte, so ids that differ only at the end (C000001, C000002, ...) would
fall into buckets in a pattern; after mixing, every bit of the id moves every bucket.

The hash runs in numpy over all ids at once: one pass per byte position, each over
every id, with uint64 arithmetic wrapping modulo 2**64 as both algorithms require.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from churnkit.core.schema import CUSTOMER_ID

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
FMIX_1 = np.uint64(0xFF51AFD7ED558CCD)
FMIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
HASH_NAME = "fmix64-fnv1a64-utf8"


def fnv1a64(ids: pl.Series) -> pl.Series:
    """FNV-1a 64 of each string's UTF-8 bytes (a null hashes like the empty string)."""
    text = ids.cast(pl.String).fill_null("")
    n = text.len()
    out = np.full(n, FNV_OFFSET, dtype=np.uint64)
    if n == 0:
        return pl.Series(ids.name, out, dtype=pl.UInt64)
    lengths = text.str.len_bytes().to_numpy().astype(np.int64)
    # Every id's bytes back to back; offsets[i] is where id i starts.
    data = np.frombuffer(text.str.join("").item().encode("utf-8"), dtype=np.uint8)
    offsets = np.zeros(n, dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    shortest, longest = int(lengths.min()), int(lengths.max())
    for k in range(shortest):  # every id has byte k: no mask needed
        out ^= data[offsets + k]
        out *= FNV_PRIME
    for k in range(shortest, longest):
        has = lengths > k
        out[has] = (out[has] ^ data[offsets[has] + k]) * FNV_PRIME
    return pl.Series(ids.name, out, dtype=pl.UInt64)


def fmix64(hashes: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: every input bit flips each output bit half the time."""
    h = hashes.astype(np.uint64, copy=True)
    h ^= h >> np.uint64(33)
    h *= FMIX_1
    h ^= h >> np.uint64(33)
    h *= FMIX_2
    h ^= h >> np.uint64(33)
    return h


def customer_hash(ids: pl.Series) -> pl.Series:
    """The hash whose remainder is a customer's bucket: ``fmix64(fnv1a64(utf8(id)))``."""
    return pl.Series(ids.name, fmix64(fnv1a64(ids).to_numpy()), dtype=pl.UInt64)


def bucket_expr(buckets: int, column: str = CUSTOMER_ID) -> pl.Expr:
    """The bucket (UInt32) of each row's ``column``, usable in lazy and streaming queries."""
    hashed = pl.col(column).map_batches(customer_hash, return_dtype=pl.UInt64, is_elementwise=True)
    return (hashed % buckets).cast(pl.UInt32)


def bucket_of(customer_ids: str | Sequence[str] | pl.Series, buckets: int) -> pl.Series:
    """The bucket of each customer id (one id gives a one-element series)."""
    if isinstance(customer_ids, pl.Series):
        ids = customer_ids
    else:
        values = [customer_ids] if isinstance(customer_ids, str) else list(customer_ids)
        ids = pl.Series(CUSTOMER_ID, values, dtype=pl.String)
    return (customer_hash(ids) % buckets).cast(pl.UInt32)
