"""y = x W^T (+ b) on the CPU for a weight kept as stored (FP8 E4M3 in the 4B file), never upcast whole.

Reference (`linear_reference`): upcast the whole weight with torch's conversion, then `F.linear`. Per call it
allocates a fresh fp32 copy of the weight (94 MB for a 9216 x 2560 MLP matrix: page faults, i.e. system time)
and converts element by element.

Fast (`linear`), in the manner of llama.cpp's CPU path: the weight's rows are taken in blocks of about
`BLOCK_ELEMENTS` (1M elements: a 4 MB fp32 block that stays in the CPU's cache), each block is decoded exactly
(`fp8_decode.decode_into`) into a small buffer this thread keeps, and multiplied at once:

    for rows r..r+n of W:   buf[n, K] = decode(W[r:r+n])          # exact, into reused scratch
                            y[:, r:r+n] = x @ buf^T (+ b[r:r+n])  # cpu_gemm.gemm_into

Splitting over output rows leaves every output element's reduction (over K) as it was: with the torch GEMM
backend the result is bit for bit `linear_reference`'s; with oneDNN it equals oneDNN on the whole upcast weight
bit for bit, and the reference to fp32 rounding (tests/test_cpu_linear.py holds both). The fp32 copy of a weight
never exists whole, nothing weight-sized is allocated per call, and the decode costs ~0.15 ns per element, a
small fraction of the multiply (benchmarks: bench/bench_cpu_full.py).
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F

from . import cpu_gemm
from .fp8_decode import decode_into, decode_reference

BLOCK_ELEMENTS = 1 << 20     # weight elements decoded per block: 4 MB as fp32 (plus 2 MB of int16 bits)
COMPUTE_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_scratch = threading.local()  # per thread: concurrent forwards never share a buffer


def linear_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The readable reference: the whole weight upcast, then F.linear (what the library did before)."""
    return F.linear(x, decode_reference(weight, x.dtype), None if bias is None else bias.to(x.dtype))


def block_rows(in_features: int, out_features: int, block_elements: int) -> int:
    """Rows per block: about `block_elements` weights, balanced so that the last block is not a sliver (GEMMs
    take other code paths for one or two rows, and would then sum in another order)."""
    blocks = -(-out_features // max(1, block_elements // max(1, in_features)))
    return -(-out_features // blocks)


def _buffers(dtype: torch.dtype, numel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(compute-dtype buffer, int16 bits buffer) of at least `numel` elements, kept by this thread."""
    bufs = getattr(_scratch, "bufs", None)
    if bufs is None:
        bufs = _scratch.bufs = {}
    out, bits = bufs.get(dtype, (None, None))
    if out is None or out.numel() < numel:
        with torch.inference_mode(False):    # normal tensors: usable both inside and outside inference mode
            out, bits = torch.empty(numel, dtype=dtype), torch.empty(numel, dtype=torch.int16)
        bufs[dtype] = (out, bits)
    return out, bits


def supports(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether `linear` takes this call (else use linear_reference): CPU, a float compute dtype, no autograd."""
    return (x.device.type == "cpu" and weight.device.type == "cpu" and x.dtype in COMPUTE_DTYPES
            and weight.dim() == 2 and x.numel() > 0 and not (x.requires_grad and torch.is_grad_enabled()))


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           block_elements: int | None = None, backend: str | None = None) -> torch.Tensor:
    """x [..., K] -> [..., N] in x's dtype; weight [N, K] stored (FP8 or any float dtype); bias [N] or None.
    block_elements (default BLOCK_ELEMENTS) and backend (default cpu_gemm.backend()) are for tests and benchmarks."""
    if not supports(x, weight):
        return linear_reference(x, weight, bias)
    N, K = weight.shape
    lead = x.shape[:-1]
    x2 = x.reshape(-1, K).contiguous()
    b = None if bias is None else bias.to(x.dtype)
    if weight.dtype == x.dtype:                          # nothing to decode (an upcast copy, fp32 weights)
        return cpu_gemm.gemm(x2, weight, b, backend).reshape(*lead, N)
    weight = weight.contiguous()
    rows = block_rows(K, N, block_elements or BLOCK_ELEMENTS)
    buf, bits = _buffers(x.dtype, rows * K)
    y = torch.empty(x2.shape[0], N, dtype=x.dtype)
    for r in range(0, N, rows):
        n = min(rows, N - r)
        w = decode_into(weight[r: r + n], buf[: n * K].view(n, K), bits[: n * K].view(n, K))
        cpu_gemm.gemm_into(y[:, r: r + n], x2, w, None if b is None else b[r: r + n], backend)
    return y.reshape(*lead, N)
