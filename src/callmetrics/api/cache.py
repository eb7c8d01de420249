"""Answers kept per warehouse version: a published version never changes, so neither does the
answer to the same request on it.

A dashboard refreshing, sixteen people opening the same report, every client polling after a
publish: the same request arrives again and again. The cache is keyed by the request's ETag
(version file, resolved range, resolved scope, options), lives and dies with its version's
``Generation``, is bounded in bytes (least recently used out first), and computes a missing
answer once however many requests for it arrive together (the others wait for it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class AnswerCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, bytes] = OrderedDict()
        self._pending: dict[str, threading.Event] = {}
        self._bytes = 0

    def get_or_compute(self, key: str, compute: Callable[[], bytes]) -> bytes:
        if self.max_bytes <= 0:
            return compute()
        with self._lock:
            found = self._answers.get(key)
            if found is not None:
                self._answers.move_to_end(key)
                return found
            waiting = self._pending.get(key)
            if waiting is None:
                self._pending[key] = threading.Event()
        if waiting is not None:
            waiting.wait()
            with self._lock:
                found = self._answers.get(key)
            return found if found is not None else compute()
        try:
            body = compute()
            with self._lock:
                if len(body) <= self.max_bytes:
                    self._answers[key] = body
                    self._bytes += len(body)
                    while self._bytes > self.max_bytes:
                        _, dropped = self._answers.popitem(last=False)
                        self._bytes -= len(dropped)
            return body
        finally:
            with self._lock:
                self._pending.pop(key).set()
