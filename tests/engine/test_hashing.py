"""The customer hash is MurmurHash3's finaliser over FNV-1a 64 of the id's UTF-8 bytes:
the same in every process, on every machine and in every Polars version, so a
customer's bucket never moves."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest

from churnkit.engine.hashing import bucket_expr, bucket_of, customer_hash, fnv1a64


def reference_fnv1a64(text: str) -> int:
    """The published algorithm, byte by byte."""
    h = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 0x100000001B3) % 2**64
    return h


def reference_fmix64(h: int) -> int:
    mask = 2**64 - 1
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & mask
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & mask
    return h ^ (h >> 33)


def reference_bucket(text: str, buckets: int) -> int:
    return reference_fmix64(reference_fnv1a64(text)) % buckets


def test_published_test_vectors():
    got = fnv1a64(pl.Series(["", "a", "foobar"])).to_list()
    assert got == [0xCBF29CE484222325, 0xAF63DC4C8601EC8C, 0x85944171F73967E8]


def test_ids_of_mixed_lengths_and_scripts_match_the_reference():
    ids = ["C000123", "cust-1", "x", "", "Zoë Ångström", "客户-42", "🙂" * 5, "a" * 300]
    assert fnv1a64(pl.Series(ids)).to_list() == [reference_fnv1a64(i) for i in ids]
    mixed = [reference_fmix64(reference_fnv1a64(i)) for i in ids]
    assert customer_hash(pl.Series(ids)).to_list() == mixed


def test_a_null_id_hashes_like_the_empty_string_and_empty_input_is_fine():
    got = fnv1a64(pl.Series([None, ""], dtype=pl.String)).to_list()
    assert got[0] == got[1] == 0xCBF29CE484222325
    assert fnv1a64(pl.Series([], dtype=pl.String)).len() == 0


def test_bucket_of_one_id_a_list_or_a_series():
    assert bucket_of("foobar", 7).to_list() == [reference_fmix64(0x85944171F73967E8) % 7]
    ids = ["a", "b", "c"]
    assert bucket_of(ids, 5).to_list() == [reference_bucket(i, 5) for i in ids]
    assert bucket_of(pl.Series(ids), 5).to_list() == bucket_of(ids, 5).to_list()


def test_the_streaming_expression_agrees_with_bucket_of():
    ids = [f"C{i:06d}" for i in range(5000)]
    frame = pl.LazyFrame({"customer_id": ids}).with_columns(bucket_expr(16).alias("b"))
    got = frame.collect(engine="streaming")["b"]
    assert got.dtype == pl.UInt32
    assert got.to_list() == bucket_of(ids, 16).to_list()
    assert set(got.to_list()) == set(range(16))  # every bucket gets customers


def test_ids_that_differ_only_at_the_end_land_independently():
    # Plain FNV-1a would put C…0 and C…1 in different halves every time (its lowest
    # bit is the last byte's); mixed, they share a half about as often as not.
    prefixes = [f"C{i:05d}" for i in range(2000)]
    zeros = bucket_of([p + "0" for p in prefixes], 2)
    ones = bucket_of([p + "1" for p in prefixes], 2)
    assert 0.4 < (zeros == ones).mean() < 0.6
    counts = bucket_of([f"C{i:06d}" for i in range(10_000)], 4).value_counts()["count"]
    assert counts.min() > 2300 and counts.max() < 2700


@pytest.mark.slow
def test_another_process_with_another_hash_seed_computes_the_same_buckets():
    ids = ["C000001", "Zoë", "客户-42"]
    code = f"from churnkit.engine.hashing import bucket_of;print(bucket_of({ids!r}, 97).to_list())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == str(bucket_of(ids, 97).to_list())
