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

With bf16 matmuls (the CPU's bf16 mode) an E4M3 weight decodes straight to bf16 in place in the int16 scratch
(fp8_decode.decode_e4m3_bf16_into: nothing to fold into x) wherever the host has not turned on flush-to-zero;
otherwise through fp16 and fp32 as above. A weight in the CPU's own code (fp8_recode, uint8: what the encoder
gives its E4M3 weights while it computes on the CPU) takes three integer passes to w / 2^117 in bf16 or fp32, with
x times 2^117 (fp8_recode.x_scales: less for large x, the product then scaled back); fp16 takes the reference.
`_decoder` picks the route once per call.

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

from . import cpu_gemm, fp8_recode
from .fp8_decode import (
    SCALE,
    decode_e4m3_bf16_into,
    decode_into,
    decode_reference,
    decode_scaled_into,
    subnormals_survive,
)

BLOCK_ELEMENTS = 3 << 19     # ~1.5M weight elements decoded per block: ~6 MB as fp32 (plus 3 MB of int16 bits)
ROW_MULTIPLE, MIN_ROWS = 128, 16
COMPUTE_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_scratch = threading.local()  # per thread: concurrent forwards never share a buffer


def linear_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                     gemm_dtype: torch.dtype | None = None) -> torch.Tensor:
    """The readable reference: the whole weight upcast, then F.linear (what the library did before). With a GEMM
    dtype other than x's (bf16 matmuls in an fp32 model): x rounded to it, the product brought back to x's dtype,
    and the bias added there."""
    gemm_dtype = gemm_dtype or x.dtype
    if gemm_dtype == x.dtype:
        return F.linear(x, decode_reference(weight, x.dtype), None if bias is None else bias.to(x.dtype))
    y = F.linear(x.to(gemm_dtype), decode_reference(weight, gemm_dtype)).to(x.dtype)
    return y if bias is None else y + bias.to(x.dtype)


def blocks(in_features: int, out_features: int, block_elements: int) -> list[tuple[int, int]]:
    """(first row, row count) of each block: about `block_elements` weights, in multiples of 128 rows (oneDNN's
    kernels run slower on other widths: docs/performance.md), and no sliver of fewer than 16 rows at the end
    (GEMMs take other code paths for one or two rows and would sum in another order): a short remainder joins the
    block before it."""
    rows = max(ROW_MULTIPLE, block_elements // max(1, in_features) // ROW_MULTIPLE * ROW_MULTIPLE)
    starts = list(range(0, out_features, rows))
    if len(starts) > 1 and out_features - starts[-1] < MIN_ROWS:
        starts.pop()
    ends = starts[1:] + [out_features]
    return [(r, e - r) for r, e in zip(starts, ends)]


def _buffer(dtype: torch.dtype, numel: int) -> torch.Tensor:
    """Scratch of at least `numel` elements of `dtype`, kept by this thread (one per dtype)."""
    bufs = getattr(_scratch, "bufs", None)
    if bufs is None:
        bufs = _scratch.bufs = {}
    buf = bufs.get(dtype)
    if buf is None or buf.numel() < numel:
        with torch.inference_mode(False):    # a normal tensor: usable both inside and outside inference mode
            buf = bufs[dtype] = torch.empty(numel, dtype=dtype)
    return buf


def supports(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether `linear` takes this call (else use linear_reference): CPU, a float compute dtype, no autograd."""
    return (x.device.type == "cpu" and weight.device.type == "cpu" and x.dtype in COMPUTE_DTYPES
            and weight.dim() == 2 and x.numel() > 0 and not (x.requires_grad and torch.is_grad_enabled()))


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           block_elements: int | None = None, backend: str | None = None,
           gemm_dtype: torch.dtype | None = None) -> torch.Tensor:
    """x [..., K] -> [..., N] in x's dtype; weight [N, K] stored (FP8 or any float dtype); bias [N] or None.
    gemm_dtype (default x's): the matmul's precision; bf16 with an fp32 x is the CPU's bf16 mode (x rounded to bf16
    once, the weight decoded to bf16, fp32 accumulation, the result and the bias in fp32).
    block_elements (default BLOCK_ELEMENTS) and backend (default cpu_gemm.backend()) are for tests and benchmarks."""
    gemm_dtype = gemm_dtype or x.dtype
    recoded_elsewhere = weight.dtype == fp8_recode.DTYPE and gemm_dtype not in fp8_recode.GEMM_DTYPES
    if not supports(x, weight) or gemm_dtype not in COMPUTE_DTYPES or recoded_elsewhere:
        return linear_reference(x, weight, bias, gemm_dtype)
    N, K = weight.shape
    lead = x.shape[:-1]
    x2 = x.reshape(-1, K).contiguous()
    b = None if bias is None else bias.to(x.dtype)
    mixed = gemm_dtype != x.dtype                        # then the bias is added after the GEMM, in x's dtype
    if weight.dtype == gemm_dtype:                       # nothing to decode (an upcast copy, weights stored so)
        y = cpu_gemm.gemm(x2.to(gemm_dtype), weight, None if mixed else b, backend)
        return _finish(y, x.dtype, 1.0, b if mixed else None).reshape(*lead, N)
    weight = weight.contiguous()
    parts_at = blocks(K, N, block_elements or BLOCK_ELEMENTS)
    decode, xs, y_factor = _decoder(weight, x2, gemm_dtype, max(n for _, n in parts_at) * K)
    gemm_bias = None if mixed or b is None else b / y_factor   # scaled as the product is (a power of two: exact)
    y = None
    for r, n in parts_at:
        w = decode(weight[r: r + n])
        part = cpu_gemm.gemm(xs, w, None if gemm_bias is None else gemm_bias[r: r + n], backend)
        if n == N:
            y = part
            break
        if y is None:
            y = torch.empty(x2.shape[0], N, dtype=x.dtype)
        y[:, r: r + n] = part      # one block's output alive at a time: the allocator reuses it (no page faults)
    return _finish(y, x.dtype, y_factor, b if mixed else None).reshape(*lead, N)


def _decoder(weight: torch.Tensor, x2: torch.Tensor, gemm_dtype: torch.dtype, numel: int):
    """(decode, xs, y_factor): decode(rows of weight) -> those rows in gemm_dtype, exact up to a power of two, in
    this thread's scratch (at most `numel` elements); xs: x2 in gemm_dtype, times the decode's scale where the decode
    leaves it out; y_factor: what the product still needs (1.0 except for large x against the CPU's own code).
    The CPU's own code (bf16 and fp32) takes three integer passes (fp8_recode); E4M3 to bf16 goes straight to bf16
    bits (fp8_decode.decode_e4m3_bf16_into) where subnormals survive here; everything else through fp16 bits, with
    a bf16 result staged through fp32."""
    def rows(t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:      # scratch t viewed as w's shape
        return t[: w.numel()].view(w.shape)

    if weight.dtype == fp8_recode.DTYPE:                    # linear() sends it here for fp8_recode.GEMM_DTYPES only
        code_bits = _buffer(fp8_recode.bits_dtype(gemm_dtype), numel)
        x_factor, y_factor = fp8_recode.x_scales(x2)
        return (lambda w: fp8_recode.decode_into(w, rows(code_bits, w))), (x2 * x_factor).to(gemm_dtype), y_factor
    bits = _buffer(torch.int16, numel)
    if gemm_dtype == torch.bfloat16 and weight.dtype == torch.float8_e4m3fn and subnormals_survive():
        return (lambda w: decode_e4m3_bf16_into(w, rows(bits, w))), x2.to(gemm_dtype), 1.0
    buf = _buffer(gemm_dtype, numel)
    staging = _buffer(torch.float32, numel) if gemm_dtype == torch.bfloat16 else None
    decode, xs = decode_into, x2
    scale = SCALE.get(weight.dtype)
    if scale is not None and gemm_dtype != torch.float16:  # fold the decode's scale into x (fp16 would overflow)
        low, high = torch.aminmax(x2)                       # one pass; NaN fails both tests
        limit = torch.finfo(gemm_dtype).max / scale
        if bool(low > -limit) and bool(high < limit):       # x * 256 stays finite: (x * 256) . (w / 256) is the
            decode, xs = decode_scaled_into, x2 * scale     # same product as x . w, bit for bit (in bf16 too:
    return ((lambda w: decode(w, rows(buf, w), rows(bits, w), None if staging is None else rows(staging, w))),
            xs.to(gemm_dtype), 1.0)                         # rounding commutes with a power of two)


def _finish(y: torch.Tensor, dtype: torch.dtype, factor: float, bias: torch.Tensor | None) -> torch.Tensor:
    """The GEMM's result in x's dtype, times `factor` (a power of two: exact), plus the bias where the GEMM did not
    add it."""
    y = y.to(dtype)
    if factor != 1.0:
        y = y.mul_(factor)
    return y if bias is None else y.add_(bias)
