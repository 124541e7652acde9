"""Loaded encoders, kept for reuse: a model loads once per session, not once per prompt.

One bounded LRU, used by both loaders (`encoder.load_encoder` for the 4B, `qwen3.load_qwen3_encoder` for the
stock 0.6B), each with its own instance so that loading one never evicts the other (a fit needs both). An entry
is keyed by the weights file's identity (resolved path, device, inode, size, mtime and ctime of every file of the
checkpoint) and the loader's settings (compute dtype, options): a hit costs a `stat`, no read, and a file
changed on disk is loaded again. The cache takes the loader as an argument, so it knows no encoder class.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import torch

from ..files.checkpoint import checkpoint_identity, read_header


class LoadedEncoders:
    """At most `max_entries` loaded encoders (the least recently used goes first); thread-safe."""

    def __init__(self, max_entries: int = 1):
        self.max_entries = max_entries
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path, settings: tuple, device: torch.device, load: Callable, check: Callable):
        """The cached encoder for `path` and `settings`, moved to `device` if it is elsewhere (a move, not a
        reload); else `load()`'s, which must set `.identity` (the identity of the files it read). `check()` runs
        before anything is evicted for a new load, so a wrong file fails there and the loaded encoder stays."""
        try:
            identity = checkpoint_identity(path)   # stats, no tensor read: a cache hit touches no file contents
        except OSError:
            read_header(path)                      # raises the precise message (missing, unreadable...)
            raise
        with self._lock:
            encoder = self._d.get((identity, settings))
            if encoder is not None:
                self._d.move_to_end((identity, settings))
                if encoder.device != device:
                    encoder.to(device)
                return encoder
            check()
            while self._d and len(self._d) >= max(1, self.max_entries):
                self._d.popitem(last=False)
            encoder = load()
            self._d[(encoder.identity, settings)] = encoder   # what was read, should the file have changed
            return encoder

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def __len__(self) -> int:
        return len(self._d)


# A 4B encoder is ~4.8 GB in memory: one unless the user asks for more (the WebUI's setting sets max_entries).
QWEN35 = LoadedEncoders(max_entries=1)
QWEN3 = LoadedEncoders(max_entries=1)   # the stock 0.6B, for the alignment fit and "Compare with stock"
