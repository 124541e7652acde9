"""Run the backbone forward as captured CUDA graphs, one per (batch bucket, length bucket).

Why: at prompt lengths the eager forward is launch-bound (32 layers x dozens of small kernels; the chunked
delta rule adds a Python loop over 64-token chunks). A CUDA graph replays the whole forward as one launch.

How: a graph is captured lazily the first time a (B, T) shape falls into a new bucket (B rounded up to
`batch_buckets`, T to `buckets`), with static input ids [Bb, Tb] and a static output [Bb, Tb, D_out]. Each call
copies its ids into the left/top corner of the static buffer (the rest holds PAD_ID), replays, and returns a
copy of out[:B, :T]. Right padding is exact for the real positions: every mixer (causal conv, delta rule,
causal attention) only reads earlier positions, and batch rows never mix (tests/ops/test_cuda_graphs.py checks
padded vs unpadded eager forwards).

Fallback to the plain eager forward (reported by `describe()` and `stats`): not on CUDA, a shape beyond the
largest bucket or over `max_graph_tokens`, or a capture that failed (that shape is then never retried).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import torch

# Multiples of 64 (the delta rule's chunk) up to 512, then coarser: padding costs at most ~25% extra compute
# (a ladder of powers of two would cost up to 100%, e.g. 300 -> 512).
DEFAULT_BUCKETS = (64, 128, 192, 256, 320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048)
DEFAULT_BATCH_BUCKETS = (1, 2, 4, 8, 16)
DEFAULT_MAX_GRAPH_TOKENS = 16 * 1024   # beyond this the forward is compute-bound; a graph would only hold memory
PAD_ID = 0


def bucket_for(n: int, buckets) -> int | None:
    """Smallest bucket >= n, or None when n is larger than every bucket."""
    for b in sorted(buckets):
        if b >= n:
            return b
    return None


@dataclass
class _Captured:
    replay: Callable[[], None]
    static_ids: torch.Tensor      # [Bb, Tb] long, read by every replay
    static_out: torch.Tensor      # [Bb, Tb, D_out], overwritten by every replay


def cuda_capture(fn, static_ids: torch.Tensor, warmup: int, pool) -> tuple[Callable[[], None], torch.Tensor]:
    """Warm up `fn` on a side stream (cuBLAS workspaces, Triton autotuning happen here, not in the capture),
    then capture one call into a CUDA graph sharing `pool`. Returns (replay, static output).
    capture_error_mode="thread_local": the WebUI runs other threads (gradio, previews, the host's model
    management), and in the default global mode an unsafe CUDA call from any of them invalidates our capture."""
    dev = static_ids.device
    side = torch.cuda.Stream(dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn(static_ids)
    torch.cuda.current_stream(dev).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
        out = fn(static_ids)
    return graph.replay, out


class GraphRunner:
    """ids [B, T] (long, on the backbone's device) -> backbone output [B, T, D_out] in `dtype`.

    `capture` replaces cuda_capture (tests use a CPU stand-in with the same contract); `pad_eager` makes the
    eager fallback pad to the bucket too (tests use it to check that padding is exact)."""

    def __init__(self, backbone: torch.nn.Module, dtype: torch.dtype, buckets=DEFAULT_BUCKETS,
                 batch_buckets=DEFAULT_BATCH_BUCKETS, warmup: int = 2,
                 max_graph_tokens: int = DEFAULT_MAX_GRAPH_TOKENS, capture=None, pad_eager: bool = False):
        if not buckets or not batch_buckets:
            raise ValueError("buckets and batch_buckets must not be empty")
        self.backbone, self.dtype = backbone, dtype
        self.buckets, self.batch_buckets = tuple(sorted(buckets)), tuple(sorted(batch_buckets))
        self.warmup, self.max_graph_tokens, self.pad_eager = int(warmup), int(max_graph_tokens), pad_eager
        self.device = self._device_of(backbone)
        self._capture = capture
        if capture is None and self.available(self.device):
            self._capture = cuda_capture
        self.off_reason = None if self._capture is not None else self.unavailable_reason(self.device)
        self._graphs: dict[tuple[int, int], _Captured] = {}
        self.failed: dict[tuple[int, int], str] = {}        # bucket -> why its capture failed
        self.last_fallback: str | None = None
        self.stats = {"replays": 0, "captures": 0, "eager_runs": 0, "capture_failures": 0}
        self._pool = None
        self._lock = threading.RLock()

    # -- capability -------------------------------------------------------------------------------------------
    @staticmethod
    def available(device) -> bool:
        """True only for a CUDA device with a working CUDA runtime (False on CPU, MPS, or CUDA-less builds)."""
        dev = torch.device(device)
        return dev.type == "cuda" and torch.cuda.is_available() and hasattr(torch.cuda, "CUDAGraph")

    @staticmethod
    def unavailable_reason(device) -> str:
        dev = torch.device(device)
        if dev.type != "cuda":
            return f"CUDA graphs off: the encoder runs on {dev.type}"
        return "CUDA graphs off: CUDA is not available in this torch build"

    @staticmethod
    def _device_of(backbone) -> torch.device:
        for t in backbone.buffers():
            return t.device
        for t in backbone.parameters():
            return t.device
        return torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self._capture is not None

    # -- planning ---------------------------------------------------------------------------------------------
    def plan(self, B: int, T: int) -> tuple[tuple[int, int] | None, str | None]:
        """((Bb, Tb) bucket, None) or (None, why this shape runs eagerly)."""
        Tb, Bb = bucket_for(T, self.buckets), bucket_for(B, self.batch_buckets)
        if Tb is None:
            return None, f"{T} tokens > largest bucket {self.buckets[-1]}"
        if Bb is None:
            return None, f"batch {B} > largest batch bucket {self.batch_buckets[-1]}"
        if Bb * Tb > self.max_graph_tokens:
            return None, f"{Bb}x{Tb} tokens > max_graph_tokens {self.max_graph_tokens}"
        return (Bb, Tb), None

    # -- running ----------------------------------------------------------------------------------------------
    def _forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.backbone(ids, self.dtype)

    def _padded(self, ids: torch.Tensor, key: tuple[int, int]) -> torch.Tensor:
        out = torch.full(key, PAD_ID, dtype=ids.dtype, device=ids.device)
        out[: ids.shape[0], : ids.shape[1]] = ids
        return out

    def _eager(self, ids: torch.Tensor, why: str | None) -> torch.Tensor:
        self.stats["eager_runs"] += 1
        self.last_fallback = why
        B, T = ids.shape
        key, _ = self.plan(B, T)
        if self.pad_eager and key is not None:
            return self._forward(self._padded(ids, key))[:B, :T]
        return self._forward(ids)

    def _build(self, key: tuple[int, int]) -> _Captured | None:
        try:
            if self._pool is None and self._capture is cuda_capture:
                self._pool = torch.cuda.graph_pool_handle()   # one pool: graphs never replay concurrently
            static_ids = torch.full(key, PAD_ID, dtype=torch.long, device=self.device)
            replay, static_out = self._capture(self._forward, static_ids, self.warmup, self._pool)
        except Exception as e:     # noqa: BLE001 - any capture failure => eager for this shape, with the reason
            self.failed[key] = (f"capture of {key[0]}x{key[1]} failed: {type(e).__name__}: "
                                f"{str(e).splitlines()[0][:160]}")
            self.stats["capture_failures"] += 1
            if self._capture is cuda_capture:
                try:
                    torch.cuda.synchronize(self.device)
                except Exception:  # noqa: BLE001 - a broken capture can leave an error pending; eager will surface it
                    pass
            return None
        self.stats["captures"] += 1
        entry = _Captured(replay, static_ids, static_out)
        self._graphs[key] = entry
        return entry

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.dim() != 2:
            raise ValueError(f"ids must be [B, T], got shape {tuple(ids.shape)}")
        ids = ids.to(self.device)
        with self._lock, torch.inference_mode():
            if not self.enabled:
                return self._eager(ids, self.off_reason)
            B, T = ids.shape
            key, why = self.plan(B, T)
            if key is None:
                return self._eager(ids, why)
            if key in self.failed:
                return self._eager(ids, self.failed[key])
            entry = self._graphs.get(key) or self._build(key)
            if entry is None:
                return self._eager(ids, self.failed[key])
            entry.static_ids.fill_(PAD_ID)
            entry.static_ids[:B, :T].copy_(ids)
            entry.replay()
            self.stats["replays"] += 1
            self.last_fallback = None
            return entry.static_out[:B, :T].clone()   # the static output is overwritten by the next replay

    # -- housekeeping -----------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Drop every graph (after moving weights, switching kernels or FP8 mode: graphs bake those in)."""
        with self._lock:
            self._graphs.clear()
            self.failed.clear()
            self._pool = None
            self.device = self._device_of(self.backbone)
            if self._capture is cuda_capture and not self.available(self.device):
                self._capture = None
                self.off_reason = self.unavailable_reason(self.device)
            elif self._capture is None and self.available(self.device):
                self._capture = cuda_capture
                self.off_reason = None

    @property
    def captured(self) -> list[tuple[int, int]]:
        return sorted(self._graphs)

    def describe(self) -> str:
        """One line for the status display."""
        if not self.enabled:
            return self.off_reason or "CUDA graphs off"
        shapes = ", ".join(f"{b}x{t}" for b, t in self.captured) or "none yet"
        text = f"CUDA graphs on (captured: {shapes}; {self.stats['replays']} replays)"
        if self.failed:
            text += f"; eager for {len(self.failed)} shape(s): {next(iter(self.failed.values()))}"
        if self.last_fallback:
            text += f"; last call eager: {self.last_fallback}"
        return text
