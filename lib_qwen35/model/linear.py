"""A linear layer whose weight stays in its stored dtype (FP8 E4M3 for the 4B file) and is upcast to the compute
dtype only where it is used, so the whole model never exists in fp32/bf16 at once.

On the CPU the weight is decoded in small blocks fused with the matmul (`ops/cpu_linear.py`): no weight-sized
copy is ever made, and the decode costs a small fraction of the multiply. On a GPU the per-layer `.to(dtype)` is
cheap. While it computes on the CPU (bf16 or fp32 matmuls) the E4M3 weights take the CPU's own byte code in
place (`use_cpu_code`, ops/fp8_recode.py: a cheaper decode, still one byte a weight); any device move or cast gives
them back as E4M3 first. `UpcastBudget` optionally keeps whole upcast copies of the first linears that fit a byte
budget (off by default: on the CPU they save almost nothing now and cost RAM; on a GPU the first device move drops
them); the stored original is always kept.
"""

from __future__ import annotations

import torch
from torch import nn

from ..ops import cpu_linear, fp8_matmul, fp8_recode
from ..ops.fp8_decode import FP8_DTYPES, decode

# Stored weight -> compute dtype, a whole tensor (w itself when already in it). Exact for FP8: every FP8 value
# is representable in bf16/fp16/fp32.
upcast = decode


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

    fp8_mode: str | None = None    # per instance, set by enable_fp8_matmul below ("per_token"/"per_tensor")
    gemm_dtype: torch.dtype | None = None   # the matmul's dtype where it differs from x's (set_gemm_dtype below)

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

    @property
    def in_cpu_code(self) -> bool:
        return self.weight.dtype == fp8_recode.DTYPE

    def use_cpu_code(self) -> bool:
        """Recode the weight in place (fp8_recode) where it is E4M3 on the CPU, every |w| <= 60, and the matmul is
        bf16 or fp32 (the routes that decode the code). True if it did."""
        coded = fp8_recode.try_recode_(self.weight) if self.gemm_dtype in fp8_recode.GEMM_DTYPES else None
        if coded is None:
            return False
        self.weight = coded
        return True

    def _apply(self, fn, recurse=True):
        self._cached = None        # device moves invalidate the upcast copy
        if self.in_cpu_code:       # moves and casts see the file's E4M3, never the CPU's own code
            self.weight = fp8_recode.restore_(self.weight)
        return super()._apply(fn, recurse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # bf16/fp16 on CUDA; fp32 or CPU inputs keep the exact path below
        if self.fp8_mode is not None and fp8_matmul.wants_fp8(x):
            return fp8_matmul.fp8_linear(x, self.weight, self.bias, self.fp8_mode)
        gemm_dtype = self.gemm_dtype or x.dtype
        w = self._cached if self._cached is not None and self._cached.dtype == gemm_dtype else self.weight
        # the blocked CPU path, else its reference (GPU, autograd)
        return cpu_linear.linear(x, w, self.bias, gemm_dtype=gemm_dtype)


def set_gemm_dtype(module: torch.nn.Module, dtype: torch.dtype | None) -> None:
    """Every StoredLinear under `module` multiplies in `dtype` (None: in its input's dtype). On the CPU, where the
    activations stay fp32, bf16 here means bf16 matmuls only (model/devices.py, activation_dtype)."""
    for m in module.modules():
        if isinstance(m, StoredLinear):
            m.gemm_dtype = dtype


def use_cpu_code(module: torch.nn.Module) -> int:
    """Every StoredLinear under `module` that can takes the CPU's own weight code (StoredLinear.use_cpu_code);
    returns how many did. Undone by any later device move or cast."""
    return sum(1 for m in module.modules() if isinstance(m, StoredLinear) and m.use_cpu_code())   # coded: not E4M3


def fuse(weights: list[torch.Tensor]) -> torch.Tensor:
    """Stack several [out_i, in] weights that read the same input into one matmul (exact: each output
    row is the same dot product). Works for FP8 by concatenating the raw bytes."""
    if weights[0].dtype in FP8_DTYPES:
        return torch.cat([w.view(torch.uint8) for w in weights]).view(weights[0].dtype)
    return torch.cat(weights)


# -- the FP8 tensor-core matmul (ops/fp8_matmul.py) for the linears whose weights it can take ------------------

def _eligible(m) -> bool:
    return isinstance(m, StoredLinear) and m.weight.dtype == fp8_matmul.E4M3 and \
        fp8_matmul.shapes_ok(m.weight.shape[1], m.weight.shape[0])


def enable_fp8_matmul(module: torch.nn.Module, mode: str) -> int:
    """Route every eligible StoredLinear under `module` through fp8_matmul.fp8_linear (its `fp8_mode`, read by its
    forward); returns how many."""
    if mode not in fp8_matmul.MODES:
        raise ValueError(f"mode must be one of {fp8_matmul.MODES}")
    n = 0
    for m in module.modules():
        if _eligible(m):
            m.fp8_mode = mode
            n += 1
    return n


def disable_fp8_matmul(module: torch.nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, StoredLinear):
            m.fp8_mode = None


def fp8_enabled_count(module: torch.nn.Module) -> int:
    return sum(1 for m in module.modules() if isinstance(m, StoredLinear) and m.fp8_mode is not None)
