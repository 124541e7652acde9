"""y = x W^T (+ b) on the CPU for a weight kept as stored (FP8 E4M3 in the 4B file), never upcast whole.

Reference (`linear_reference`): upcast the whole weight with torch's conversion, then `F.linear`. Per call it
allocates a fresh fp32 copy of the weight (94 MB for a 9216 x 2560 MLP matrix: page faults, i.e. system time)
and converts element by element.

Fast (`linear`), in the manner of llama.cpp's CPU path: the weight's rows are taken in blocks of about
`BLOCK_ELEMENTS` (~1.5M elements in whole multiples of 128 rows: a ~6 MB fp32 block that stays in the CPU's
cache), each block is decoded exactly (`fp8_decode`) into a small buffer this thread keeps, and multiplied at once:

    xs = x * 256                                       # E4M3's decode scale, folded into x once
    for rows r..r+n of W:   buf[n, K] = decode(W[r:r+n]) / 256    # exact, into reused scratch
                            y[:, r:r+n] = xs @ buf^T (+ b[r:r+n]) # cpu_gemm.gemm

Splitting over output rows leaves every output element's reduction (over K) as it was: with the torch GEMM
backend the result is bit for bit `linear_reference`'s; with oneDNN it equals oneDNN on the whole upcast weight
bit for bit, and the reference to fp32 rounding (tests/ops/test_cpu_linear.py holds both). The fp32 copy of a weight
never exists whole, nothing weight-sized is allocated per call, and the decode costs a small fraction of the
multiply (measured in docs/performance.md, "How the CPU path works"; benchmark: bench/bench_cpu.py).
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F

from . import cpu_gemm
from .fp8_decode import SCALE, decode_into, decode_reference, decode_scaled_into

BLOCK_ELEMENTS = 3 << 19     # ~1.5M weight elements decoded per block: ~6 MB as fp32 (plus 3 MB of int16 bits)
ROW_MULTIPLE, MIN_ROWS = 128, 16
COMPUTE_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_scratch = threading.local()  # per thread: concurrent forwards never share a buffer


def linear_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The readable reference: the whole weight upcast, then F.linear (what the library did before)."""
    return F.linear(x, decode_reference(weight, x.dtype), None if bias is None else bias.to(x.dtype))


def blocks(in_features: int, out_features: int, block_elements: int) -> list[tuple[int, int]]:
    """(first row, row count) of each block: about `block_elements` weights, in multiples of 128 rows (oneDNN's
    kernels run slower on other widths: docs/performance.md), and no sliver of fewer than 16 rows at the end (GEMMs take other code paths for one or two rows and
    would sum in another order): a short remainder joins the block before it."""
    rows = max(ROW_MULTIPLE, block_elements // max(1, in_features) // ROW_MULTIPLE * ROW_MULTIPLE)
    starts = list(range(0, out_features, rows))
    if len(starts) > 1 and out_features - starts[-1] < MIN_ROWS:
        starts.pop()
    ends = starts[1:] + [out_features]
    return [(r, e - r) for r, e in zip(starts, ends)]


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
    parts_at = blocks(K, N, block_elements or BLOCK_ELEMENTS)
    buf, bits = _buffers(x.dtype, max(n for _, n in parts_at) * K)
    decode, xs = decode_into, x2
    scale = SCALE.get(weight.dtype)
    if scale is not None and x.dtype != torch.float16:     # fold the decode's scale into x (fp16 would overflow)
        low, high = torch.aminmax(x2)                       # one pass; NaN fails both tests
        limit = torch.finfo(x.dtype).max / scale
        if bool(low > -limit) and bool(high < limit):       # x * 256 stays finite: (x * 256) . (w / 256) is the
            decode, xs = decode_scaled_into, x2 * scale     # same product as x . w, bit for bit
    y = None
    for r, n in parts_at:
        w = decode(weight[r: r + n], buf[: n * K].view(n, K), bits[: n * K].view(n, K))
        part = cpu_gemm.gemm(xs, w, None if b is None else b[r: r + n], backend)
        if n == N:
            y = part
            break
        if y is None:
            y = torch.empty(x2.shape[0], N, dtype=x.dtype)
        y[:, r: r + n] = part      # one block's output alive at a time: the allocator reuses it (no page faults)
    return y.reshape(*lead, N)
