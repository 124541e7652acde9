"""Two caches: loaded encoders (a 4B model loads once per session), and raw head outputs per prompt
(so changing alignment, calibration or scale - e.g. an X/Y/Z sweep - never re-runs the backbone)."""

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

_encoders: OrderedDict = OrderedDict()
_encoders_lock = threading.Lock()
MAX_ENCODERS = 1   # a 4B encoder is ~4.8 GB: keep one unless asked otherwise


def get_encoder(path, device="cpu", dtype=None, **options):
    """A loaded Encoder for this file, reused while the file (path, inode, size, mtime, ctime), dtype and
    options are the same. A different device moves the cached encoder (FP8 stays FP8) instead of reloading it."""
    from ..files.checkpoint import checkpoint_identity, read_header
    from .config import infer_layout
    from .devices import check_device, resolve_dtype
    from .encoder import Encoder

    device = check_device(device)
    dtype = resolve_dtype(dtype, device)
    try:
        identity = checkpoint_identity(path)   # stats, no tensor read: a cache hit touches no file contents
    except OSError:
        read_header(path)                      # raises the precise message (missing, unreadable...)
        raise
    try:
        options_key = tuple(sorted(options.items()))
        hash(options_key)
    except TypeError:
        from ..errors import InvalidArgumentError
        raise InvalidArgumentError(f"encoder options must be plain values (str, int, bool), got {options!r}") from None
    key = (identity, str(dtype), options_key)
    with _encoders_lock:
        enc = _encoders.get(key)
        if enc is not None:
            _encoders.move_to_end(key)
            if str(enc.device) != str(torch.device(device)):
                enc.to(device)
            return enc
        infer_layout(read_header(path), str(path))   # a wrong file fails here, before the loaded one is dropped
        while len(_encoders) >= MAX_ENCODERS:
            _encoders.popitem(last=False)
        enc = Encoder(path, device=device, dtype=dtype, **options)
        _encoders[(enc.identity, str(dtype), options_key)] = enc   # what was read, should the file have changed
        return enc


def clear_encoders() -> None:
    with _encoders_lock:
        _encoders.clear()


def cached_encoders() -> list:
    with _encoders_lock:
        return list(_encoders.values())
