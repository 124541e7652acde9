"""A linear layer whose weight stays in its stored dtype (FP8 E4M3 for the 4B file) and is upcast
to the compute dtype only when used, so the whole model never exists in fp32/bf16 at once.

Upcasting FP8 on CPU is slow in torch (~5 ns/element for `.to(float32)`); a 256-entry lookup table
through `F.embedding` is ~3.5x faster, so CPU uses that. `UpcastBudget` optionally keeps upcast
copies of the first layers that fit a byte budget (useful on CPU, where per-call upcasting costs more
than the matmul at short prompts); the FP8 original is always kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
_LUTS: dict = {}


def _fp8_lut(fp8_dtype, dtype, device) -> torch.Tensor:
    """[256, 1] table: byte value -> the number it encodes, in `dtype`."""
    key = (fp8_dtype, dtype, str(device))
    if key not in _LUTS:
        codes = torch.arange(256, dtype=torch.uint8).view(fp8_dtype)
        _LUTS[key] = codes.to(torch.float32).to(dtype).to(device).reshape(256, 1)
    return _LUTS[key]


def upcast(w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Stored weight -> compute dtype. Exact for FP8 (every FP8 value is representable in bf16/fp16/fp32)."""
    if w.dtype == dtype:
        return w
    if w.dtype in FP8_DTYPES and w.device.type == "cpu":
        idx = w.view(torch.uint8).to(torch.int32)
        return F.embedding(idx, _fp8_lut(w.dtype, dtype, w.device)).view(w.shape)
    return w.to(dtype)


class UpcastBudget:
    """Bytes of upcast weight copies the model may keep (0 = upcast on every call)."""

    def __init__(self, max_bytes: int = 0):
        self.max_bytes = int(max_bytes)
        self.used = 0

    def take(self, nbytes: int) -> bool:
        if self.used + nbytes > self.max_bytes:
            return False
        self.used += nbytes
        return True


class StoredLinear(nn.Module):
    """y = x @ W^T (+ b), W kept as stored. Weights are buffers: `.to(device)` moves, never converts."""

    fp8_mode: str | None = None    # per instance, set by fp8_matmul.enable_fp8_matmul ("per_token"/"per_tensor")

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("weight", weight, persistent=False)           # [out, in], stored dtype
        self.register_buffer("bias", bias, persistent=False)               # [out] or None
        self._cached: torch.Tensor | None = None                           # upcast copy, if budgeted

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def cache_upcast(self, dtype: torch.dtype, budget: UpcastBudget) -> None:
        nbytes = self.weight.numel() * torch.finfo(dtype).bits // 8
        if self.weight.dtype != dtype and budget.take(nbytes):
            self._cached = upcast(self.weight, dtype)

    def drop_cache(self) -> None:
        self._cached = None

    def _apply(self, fn, recurse=True):
        self._cached = None        # device moves invalidate the upcast copy
        return super()._apply(fn, recurse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fp8_mode is not None:
            from .fp8_matmul import fp8_linear, wants_fp8
            if wants_fp8(x):      # bf16/fp16 on CUDA; fp32 or CPU inputs keep the exact path below
                return fp8_linear(x, self.weight, self.bias, self.fp8_mode)
        w = self._cached if self._cached is not None and self._cached.dtype == x.dtype else upcast(self.weight, x.dtype)
        b = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, w, b)


def fuse(weights: list[torch.Tensor]) -> torch.Tensor:
    """Stack several [out_i, in] weights that read the same input into one matmul (exact: each output
    row is the same dot product). Works for FP8 by concatenating the raw bytes."""
    if weights[0].dtype in FP8_DTYPES:
        return torch.cat([w.view(torch.uint8) for w in weights]).view(weights[0].dtype)
    return torch.cat(weights)
