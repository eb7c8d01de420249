"""The per-version answer cache: computed once however many ask together, bounded in bytes."""

from __future__ import annotations

import threading
import time

import pytest

from callmetrics.api.cache import AnswerCache


def test_concurrent_misses_compute_once_and_hits_do_not_compute() -> None:
    cache = AnswerCache(max_bytes=1_000)
    calls: list[int] = []
    started = threading.Barrier(8)

    def compute() -> bytes:
        calls.append(1)
        time.sleep(0.2)  # long enough for the seven others to arrive meanwhile
        return b"answer"

    results: list[bytes] = []

    def ask() -> None:
        started.wait()
        results.append(cache.get_or_compute("k", compute))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [b"answer"] * 8
    assert len(calls) == 1
    assert cache.get_or_compute("k", lambda: b"never") == b"answer"


def test_least_recently_used_answers_leave_first() -> None:
    cache = AnswerCache(max_bytes=10)
    cache.get_or_compute("a", lambda: b"aaaa")
    cache.get_or_compute("b", lambda: b"bbbb")
    cache.get_or_compute("a", lambda: b"new")  # a hit: a is now the most recent
    cache.get_or_compute("c", lambda: b"cccc")  # 12 bytes > 10: b leaves
    assert cache.get_or_compute("a", lambda: b"new") == b"aaaa"
    assert cache.get_or_compute("b", lambda: b"BBBB") == b"BBBB"
    assert cache.get_or_compute("big", lambda: b"x" * 11) == b"x" * 11  # too big to keep
    assert cache.get_or_compute("big", lambda: b"y") == b"y"


def test_a_failed_computation_is_not_kept() -> None:
    cache = AnswerCache()

    def fail() -> bytes:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("k", fail)
    assert cache.get_or_compute("k", lambda: b"ok") == b"ok"


def test_zero_bytes_keeps_nothing() -> None:
    cache = AnswerCache(max_bytes=0)
    assert cache.get_or_compute("k", lambda: b"1") == b"1"
    assert cache.get_or_compute("k", lambda: b"2") == b"2"
