"""The raw head outputs per prompt, cached: alignment, calibration and output scale are applied after it, so
changing them (e.g. an X/Y/Z sweep) never re-runs the backbone. Loaded encoders have their own cache
(encoder_cache.py)."""

from __future__ import annotations

import threading
from collections import OrderedDict

import torch


class EmbeddingLRU:
    """(weights identity, token ids) -> head output [T, D] float32 on CPU, bounded by entries and bytes."""

    def __init__(self, max_entries: int = 256, max_bytes: int = 256 << 20):
        self.max_entries, self.max_bytes = int(max_entries), int(max_bytes)
        self._d: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key) -> torch.Tensor | None:
        with self._lock:
            t = self._d.get(key)
            if t is None:
                self.misses += 1
                return None
            self._d.move_to_end(key)
            self.hits += 1
            return t

    def put(self, key, value: torch.Tensor) -> None:
        value = value.detach().to("cpu", torch.float32, copy=True)   # own storage: callers may modify theirs
        nbytes = value.numel() * 4
        if self.max_entries <= 0 or nbytes > self.max_bytes:
            return
        with self._lock:
            if key in self._d:
                self._bytes -= self._d.pop(key).numel() * 4
            self._d[key] = value
            self._bytes += nbytes
            while len(self._d) > self.max_entries or self._bytes > self.max_bytes:
                _, old = self._d.popitem(last=False)
                self._bytes -= old.numel() * 4

    def resize(self, max_entries: int | None = None, max_bytes: int | None = None) -> None:
        with self._lock:
            if max_entries is not None:
                self.max_entries = int(max_entries)
            if max_bytes is not None:
                self.max_bytes = int(max_bytes)
            while self._d and (len(self._d) > self.max_entries or self._bytes > self.max_bytes):
                _, old = self._d.popitem(last=False)
                self._bytes -= old.numel() * 4

    def clear(self) -> None:
        with self._lock:
            self._d.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._d)


# One process-wide embedding cache shared by every encoder (keys include the weights identity).
EMBEDDINGS = EmbeddingLRU()
