"""The CPU's own byte code for E4M3 weights: decodes to bf16 or fp32 in three integer passes, no float arithmetic.

Why: E4M3 straight to bf16 (fp8_decode.decode_e4m3_bf16_into) is three integer passes and one bf16 multiply by
2^120. The multiply is there only for E4M3's subnormals (exponent field 0): placed as bits they are bf16
subnormals, which the CPU's bf16 dot products (AVX512-BF16, AMX) read as zero. It is also the dearest of the four
passes, about 60% of the decode (torch's bf16 arithmetic widens to fp32 and rounds back). For fp32 matmuls E4M3
goes through fp16 bits and a conversion (fp8_decode.decode_scaled_into): four passes and 6 bytes of scratch a
weight; the code needs three passes over 4 bytes (docs/performance.md, "Fourth pass"). E4M3 placed straight in
fp32 bits would leave its subnormals as fp32 subnormals: read as zero under a host's flush-to-zero mode, and slow
on CPUs that take a microcode assist for them.

The code: each byte is the E4M3 code of 8w (one exponent step of 8 = three binades up), so no weight but zero is
subnormal any more:

    normal     s eeee mmm  (e >= 1)   ->  s (e+3) mmm                   (+ 0x18)
    subnormal  s 0000 mmm  (m >= 1)   ->  8 * 2^-6 * m/8 = 2^(e'-7) (1 + m'/8), e' in 1..3 (exact)
    zero       s 0000 000             ->  unchanged

The same three integer passes as for E4M3 (`s eeee mmm` -> bf16 bits `s 0000eeee mmm0000`, or fp32 bits
`s 0000eeee mmm0...0` for fp32 matmuls) then give 8w / 2^120 = w / 2^117: a normal number for every nonzero weight
(exponent field >= 1; bf16 and fp32 share their exponent range) and 0 for 0, so the matmul sees every weight even
under flush-to-zero. The 2^117 goes onto x (cpu_linear). A tensor takes the code only if no
exponent overflows (e + 3 <= 15: every |w| <= 60, where E4M3 reaches 448); the others stay E4M3.

The recoded bytes are stored as torch.uint8 so that nothing can take them for E4M3; `restore_` gives the E4M3
bytes back exactly (StoredLinear does before any device move or cast). Both run in place, once, over byte pairs
through a 65536-entry table (about 0.4 ns a weight on two threads: ~1.5 s for the 4B file).
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import torch

DTYPE = torch.uint8                  # the recoded bytes' dtype: never a float dtype, so never decoded by mistake
X_SHIFT_LOG2 = 117                   # decoded = w / 2^117: x is multiplied by 2^117 (or less, see x_scales)
MAX_MAGNITUDE_CODE = 0x67            # e = 12, m = 7 (|w| = 60): the largest E4M3 code whose exponent can take + 3
_BLOCK = 1 << 21                     # byte pairs per table lookup (an 8 MB int32 index)
# Per matmul dtype, where the decode puts the byte: (integer scratch, its float view, left shift, mask). The widened
# byte is sign-extended (every bit above eeeemmm is s); the shift puts mmm at the top of the mantissa, the mask
# clears the four copies of s that then sit in the top of the exponent field.
_PLACEMENT = {torch.bfloat16: (torch.int16, torch.bfloat16, 4, ~0x7800),
              torch.float32: (torch.int32, torch.float32, 20, ~0x78000000)}
GEMM_DTYPES = tuple(_PLACEMENT)      # the matmul dtypes that decode the code (others take a restored copy)
_BY_BITS = {bits: (view, shift, mask) for bits, view, shift, mask in _PLACEMENT.values()}


def _recode_byte(code: int) -> int:
    """One E4M3 code (recodable) -> the code of 8w."""
    sign, magnitude = code & 0x80, code & 0x7F
    if magnitude >= 8:
        return code + 0x18                                      # the exponent + 3
    if magnitude == 0:
        return code                                             # +-0
    e = magnitude.bit_length()                                  # 8w = m 2^-6 = 2^(e-7) (1 + m'/8), e = 1..3
    return sign | e << 3 | (magnitude << (4 - e)) & 0x7


@functools.lru_cache(maxsize=None)
def _tables() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(recode, restore) for single bytes (uint8 [256]) and for byte pairs (int16 [65536]). Codes that cannot be
    recoded map to themselves (recodable() keeps them away)."""
    recode = [_recode_byte(c) if (c & 0x7F) <= MAX_MAGNITUDE_CODE else c for c in range(256)]
    restore = list(range(256))
    for c in range(256):
        if (c & 0x7F) <= MAX_MAGNITUDE_CODE:
            restore[recode[c]] = c
    byte_tables = [torch.tensor(t, dtype=torch.uint8) for t in (recode, restore)]
    pairs = torch.arange(1 << 16, dtype=torch.int32).to(torch.int16).view(torch.uint8).view(-1, 2).long()
    pair_tables = [t[pairs].contiguous().view(torch.int16).view(-1) for t in byte_tables]
    return (*byte_tables, *pair_tables)


def _map_(flat: torch.Tensor, byte_table: torch.Tensor, pair_table: torch.Tensor) -> None:
    """Every byte of the contiguous uint8 `flat` through the table, in place (pairs where they align). torch's
    index_select gathers on one thread, so the blocks are shared among torch's thread count of Python threads
    (each op lets the GIL go): ~2x on two cores. Every thread writes in inference mode, the one mode in which both
    normal tensors and inference tensors (weights a WebUI loaded under torch.inference_mode) take in-place writes;
    worker threads would not inherit the caller's mode."""
    n = flat.numel()
    aligned = flat.storage_offset() % 2 == 0
    body = flat[: n - n % 2].view(torch.int16) if aligned else flat
    table = pair_table if aligned else byte_table

    def blocks(starts: range) -> None:
        with torch.inference_mode():
            _blocks(starts)

    def _blocks(starts: range) -> None:
        index = torch.empty(min(_BLOCK, body.numel()), dtype=torch.int32)
        for s in starts:
            part = body[s: s + _BLOCK]
            i = index[: part.numel()]
            i.copy_(part)
            if aligned:
                i.bitwise_and_(0xFFFF)                           # the pair's bits, not its signed value
            torch.index_select(table, 0, i, out=part)

    starts = range(0, body.numel(), _BLOCK)
    workers = max(1, min(torch.get_num_threads(), len(starts)))
    if workers == 1:
        blocks(starts)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(blocks, [starts[k::workers] for k in range(workers)]))   # re-raises a worker's error
    if aligned and n % 2:
        with torch.inference_mode():
            flat[-1:] = byte_table[flat[-1:].long()]


def recodable(w: torch.Tensor) -> bool:
    """Whether `w` (a contiguous E4M3 tensor on the CPU) can take the code: every |w| <= 60."""
    if w.dtype != torch.float8_e4m3fn or w.device.type != "cpu" or not w.is_contiguous() or w.numel() == 0:
        return False
    flat = w.view(torch.uint8).view(-1)
    largest = 0
    for s in range(0, flat.numel(), 8 * _BLOCK):                 # no weight-sized temporary
        largest = max(largest, int(torch.bitwise_and(flat[s: s + 8 * _BLOCK], 0x7F).max()))
    return largest <= MAX_MAGNITUDE_CODE


def try_recode_(w: torch.Tensor) -> torch.Tensor | None:
    """`w` recoded in place and its bytes returned as DTYPE where it is recodable; else None, `w` untouched. One
    scan for the check (a caller that asks recodable() first would scan twice: ~0.2 s for the 4B file)."""
    if not recodable(w):
        return None
    u = w.view(DTYPE)
    recode, _, recode_pairs, _ = _tables()
    _map_(u.view(-1), recode, recode_pairs)
    return u


def recode_(w: torch.Tensor) -> torch.Tensor:
    """`w` (recodable) recoded in place; returns its bytes as DTYPE."""
    u = try_recode_(w)
    if u is None:
        raise ValueError("recode_ needs a contiguous E4M3 tensor on the CPU with every |w| <= 60 (recodable)")
    return u


def restore_(u: torch.Tensor) -> torch.Tensor:
    """The recoded `u` back to E4M3 in place; returns it as E4M3."""
    _, restore, _, restore_pairs = _tables()
    _map_(u.view(-1), restore, restore_pairs)
    return u.view(torch.float8_e4m3fn)


def restored(u: torch.Tensor) -> torch.Tensor:
    """A new E4M3 tensor with the weights of the recoded `u` (u unchanged)."""
    return restore_(u.contiguous().clone())


def bits_dtype(gemm_dtype: torch.dtype) -> torch.dtype:
    """The integer scratch decode_into needs for a matmul in `gemm_dtype` (one of GEMM_DTYPES)."""
    return _PLACEMENT[gemm_dtype][0]


def decode_into(u: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """The recoded `u` (contiguous [n, K]) as w / 2^117, written into `bits` (integer scratch of u's shape: int16
    gives bf16, int32 gives fp32) and returned as its float view. Exact, every nonzero value normal; allocates
    nothing. The passes place any byte `s eeee mmm` in the exponent's low four bits: on plain E4M3 bytes they give
    value / 2^120, subnormals included (fp8_decode.decode_e4m3_bf16_into then multiplies by 2^120)."""
    view, shift, mask = _BY_BITS[bits.dtype]
    bits.copy_(u.view(torch.int8))            # sign-extending widen: s ... s eeee mmm
    bits.bitwise_left_shift_(shift)           # s s s s s eeee mmm 0...0
    return bits.bitwise_and_(mask).view(view)                   # s 0 0 0 0 eeee mmm 0...0 = w / 2^117


def x_scales(x: torch.Tensor) -> tuple[float, float]:
    """(x's factor 2^a, the product's factor 2^(117-a)) for x against decode_into's w / 2^117. a = 117 (the
    product needs no factor) while max|x| < 2^10; larger x gets a smaller a, so that x 2^a stays below 2^127 and
    its rounding to the matmul's dtype cannot overflow. Both are powers of two: x 2^a rounds to bf16 exactly as x
    does (in fp32 it is exact), and each product (x 2^a)(w 2^-117) is the exact product times 2^(a-117). So the
    result is the E4M3 route's bit for bit (for a < 117, up to products that fall below 2^-126, which bf16 units
    flush, where the E4M3 route would keep them). Non-finite x keeps a = 117: the product is non-finite either way."""
    a = X_SHIFT_LOG2
    if x.numel():
        low, high = torch.aminmax(x)                            # one pass; NaN propagates
        largest = max(-float(low), float(high))
        if math.isfinite(largest) and largest > 0.0:
            a = min(X_SHIFT_LOG2, 127 - math.frexp(largest)[1])   # largest < 2^E: x 2^a < 2^127
    return 2.0 ** a, 2.0 ** (X_SHIFT_LOG2 - a)
