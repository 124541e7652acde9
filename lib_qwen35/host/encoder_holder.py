"""Encoders and output-stage files, loaded once and reused across generations.

Encoders are keyed by (file identity, compute dtype, computes on the CPU) and kept in RAM (read into memory
the process owns, never memory-mapped; FP8 stays FP8), at most `encoder_cache_size` of them; an evicted one
is moved off the GPU first.
Alignment / calibration files are small and kept per file identity.
"""

from __future__ import annotations

import collections
import threading

import torch

from lib_qwen35.files.checkpoint import file_identity
from lib_qwen35.model import embedding_cache, encoder_cache

from . import placement as placement_mod


def _default_encoder_loader(path: str, dtype: torch.dtype, computes_on_cpu: bool = True):
    from lib_qwen35.model.encoder import load_encoder

    # Weights are stored in RAM; upcast copies and the CPU's own weight code only help when the CPU also computes
    # (on a GPU the copies would be dropped by the first move, after costing RAM, and the code undone and redone
    # at every move, ~3 s): both off for a GPU whatever the library defaults.
    options = {} if computes_on_cpu else {"upcast_cache_bytes": 0, "cpu_code": False}
    return load_encoder(path, device="cpu", dtype=dtype, **options)


class EncoderHolder:
    def __init__(self, encoder_loader=None):
        self._load_encoder = encoder_loader or _default_encoder_loader
        self._encoders: "collections.OrderedDict[tuple, object]" = collections.OrderedDict()
        self._stage_files: dict[tuple, object] = {}
        self._lock = threading.RLock()
        self.loads = 0  # encoder files actually loaded (tests check reuse)

    def encoder(self, path: str, dtype: torch.dtype, computes_on_cpu: bool = True, max_entries: int = 1,
                embedding_cache_size: int | None = None):
        key = (file_identity(path), dtype, computes_on_cpu)
        if embedding_cache_size is not None:
            _resize_embedding_cache(embedding_cache_size)
        with self._lock:
            if key in self._encoders:
                self._encoders.move_to_end(key)
                return self._encoders[key]
            for stale in [k for k, e in self._encoders.items() if getattr(e, "path", None) == path]:
                placement_mod.release(self._encoders.pop(stale))  # this path now holds another file: never
                # served again, so dropped before the new load (two 4.8 GB copies would not fit)
            _set_library_encoder_cache_size(max_entries)
            encoder = self._load_encoder(path, dtype, computes_on_cpu)
            self.loads += 1
            self._encoders[key] = encoder
            while len(self._encoders) > max(1, max_entries):
                _, evicted = self._encoders.popitem(last=False)
                placement_mod.release(evicted)
            return encoder

    def loaded(self) -> list:
        return list(self._encoders.values())

    def release_resident(self, keep=None) -> None:
        """Move every encoder except `keep` back to RAM."""
        for encoder in self.loaded():
            if encoder is not keep:
                placement_mod.release(encoder)

    def stage_file(self, kind: str, path: str):
        """A loaded Alignment ('alignment') or Calibration ('calibration'), cached per file identity."""
        key = (kind, file_identity(path))
        with self._lock:
            if key not in self._stage_files:
                from lib_qwen35.model import output_stage

                cls = output_stage.Alignment if kind == "alignment" else output_stage.Calibration
                self._stage_files[key] = cls.load(path)
            return self._stage_files[key]


def _resize_embedding_cache(size: int) -> None:
    """The library keeps one process-wide raw-embedding LRU (keys include the weights identity)."""
    if embedding_cache.EMBEDDINGS.max_entries != size:
        # The setting counts prompts; let the byte bound follow (512 KiB = a 128-token prompt) so the
        # default 256 MiB does not silently cap a larger setting.
        embedding_cache.EMBEDDINGS.resize(max_entries=size, max_bytes=max(256 << 20, size * (512 << 10)))


def _set_library_encoder_cache_size(size: int) -> None:
    encoder_cache.QWEN35.max_entries = max(1, int(size))
