"""Exact FP8 -> float conversion on the CPU, fast enough to run on every call.

Reference (`decode_reference`): torch's own conversion, `w.to(dtype)`. Exact, but on the CPU it converts one
element at a time, which takes longer than the matmul it feeds (docs/performance.md, "The decode").

Fast (`decode_into`): integer bit operations that torch vectorises, then the hardware fp16 conversion:

    E4M3  s eeee mmm   ->  fp16 bits  s 0eeee mmm 0000000  =  ((b & 0x80) << 8) | ((b & 0x7f) << 7)

The four exponent bits land in the low four of fp16's five, and fp16's bias is 15 where E4M3's is 7, so the fp16
number is exactly value / 2^8 for every finite code, subnormals included (an E4M3 subnormal 2^-6 * 0.mmm becomes
the fp16 subnormal 2^-14 * 0.mmm). fp16 -> fp32/bf16 is exact, and so is the * 256 (on the
weight: `decode_into`; or folded into the activations by the caller: `decode_scaled_into`). E4M3FN has no Inf;
its NaN (S.1111.111) would decode to +-480, which is why the loader refuses files with NaN weights.
E5M2 is the top byte of an fp16 number: b << 8, nothing to rescale.

In torch: the byte, read as int8 and widened to int16, is sign-extended (bits 15..7 = s), so `<< 7` puts s in
bits 15 and 14 and the rest in place; clearing bit 14 (`& ~0x4000`) leaves exactly the pattern above.
What it costs, against the reference and a 256-entry lookup table: docs/performance.md, "The decode".

Straight to bf16 (`decode_e4m3_bf16_into`, the CPU's bf16 matmuls), in place in the int16 buffer:

    E4M3  s eeee mmm   ->  bf16 bits  s 0000eeee mmm0000  =  value / 2^120,   then * 2^120 (exact)

The four exponent bits land in the low four of bf16's eight (bias 127 against 7). For e >= 1 that is a normal bf16
number; an E4M3 subnormal (e = 0) becomes the bf16 subnormal 2^-126 * 0.mmm, also exactly value / 2^120, and the
multiply by 2^120 normalises it, as long as the CPU does not treat subnormal inputs as zero (the DAZ mode that
`torch.set_flush_denormal(True)` turns on). `subnormals_survive` checks that on every thread torch computes with;
where it fails the caller takes the fp16 route above. Four passes over 2-byte values instead of five with a 4-byte
fp32 staging copy: about 10% less time alone, and a third of the cache footprint beside the GEMM.
"""

from __future__ import annotations

import torch

from . import fp8_recode

FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)


def decode_reference(w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The readable reference: torch's conversion (exact: every FP8 value is representable in bf16/fp16/fp32).
    Weights in the CPU's own code (fp8_recode) are restored to E4M3 first, in a copy."""
    return (fp8_recode.restored(w) if w.dtype == fp8_recode.DTYPE else w).to(dtype)


# decode_scaled_into writes w / SCALE[w.dtype]: a caller that multiplies x by the scale instead (once per linear,
# not once per weight element) saves a pass over the weight. Both products are the same real number, so the
# rounded result is the same bit for bit.
SCALE = {torch.float8_e4m3fn: 256.0}


def decode_scaled_into(w: torch.Tensor, out: torch.Tensor, bits: torch.Tensor,
                       staging: torch.Tensor | None = None) -> torch.Tensor:
    """Write `w` / SCALE.get(w.dtype, 1) into `out` (same shape [n, K], the compute dtype), exactly. `w` is FP8 or
    any float dtype, contiguous; `bits` is int16 scratch of w's shape (used for FP8). For a bf16 `out` from FP8,
    `staging` (fp32 scratch of w's shape) carries the fp16 -> fp32 -> bf16 route: torch converts fp16 to bf16
    one element at a time, ~4x slower than through fp32 (docs/performance.md, "The decode"). Every value is
    exact and normal in bf16 (the smallest, 2^-9 / 256, is far above bf16's subnormals), so CPUs that flush
    subnormal bf16 inputs (AMX, AVX512-BF16) see every weight. Allocates nothing."""
    if w.dtype in FP8_DTYPES:
        bits.copy_(w.view(torch.int8))           # sign-extending widen: bits 15..7 = s, 6..0 = eeeemmm (E4M3)
        if w.dtype == torch.float8_e4m3fn:
            bits.bitwise_left_shift_(7)          # s s eeee mmm 0000000
            bits.bitwise_and_(~0x4000)           # s 0 eeee mmm 0000000 = fp16 of value / 256
        else:
            bits.bitwise_left_shift_(8)          # E5M2: the byte is the high half of an fp16 number
        half = bits.view(torch.float16)
        if out.dtype == torch.bfloat16 and staging is not None:
            return out.copy_(staging.copy_(half))    # hardware fp16 -> fp32, then fp32 -> bf16 (both exact)
        return out.copy_(half)                   # hardware fp16 -> out dtype (exact)
    return out.copy_(w)                          # bf16/fp16/fp32 weights: torch's conversion is vectorised


_BF16_SHIFT = 2.0 ** 120             # bf16's exponent bias (127) less E4M3's (7)
_GRAIN = 32768                        # torch splits elementwise work into pieces of at least this many elements


def decode_e4m3_bf16_into(w: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """`w` (E4M3, contiguous [n, K]) exactly in bf16, written into `bits` (int16 scratch of w's shape) and returned
    as its bf16 view. Exact only while subnormals_survive(); allocates nothing."""
    placed = fp8_recode.decode_into(w, bits)        # the three integer passes: s 0000eeee mmm0000 = value / 2^120
    return placed.mul_(_BF16_SHIFT)


def subnormals_survive() -> bool:
    """Whether bf16 arithmetic keeps subnormal inputs on every thread torch would use for a decode (a host may
    have set flush-to-zero / denormals-are-zero, per thread). Sized so that each thread gets a share: ~20 us."""
    probe = torch.full((max(1, torch.get_num_threads()) * _GRAIN,), 0x0010, dtype=torch.int16)   # 2^-9 / 2^120
    return bool(probe.view(torch.bfloat16).mul_(_BF16_SHIFT).eq(2.0 ** -9).all())


def decode_into(w: torch.Tensor, out: torch.Tensor, bits: torch.Tensor,
                staging: torch.Tensor | None = None) -> torch.Tensor:
    """Write `w` into `out` exactly (decode_scaled_into, then * the scale: a power of two, exact)."""
    decode_scaled_into(w, out, bits, staging)
    return out.mul_(SCALE[w.dtype]) if w.dtype in SCALE else out


def decode(w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A new tensor: `w` in `dtype` (exact). For FP8 on the CPU, the fast conversion; otherwise torch's."""
    if w.dtype not in FP8_DTYPES or w.device.type != "cpu" or dtype not in (torch.float32, torch.bfloat16,
                                                                           torch.float16):
        return decode_reference(w, dtype)
    w = w.contiguous()
    staging = torch.empty(w.shape) if dtype == torch.bfloat16 else None
    return decode_into(w, torch.empty(w.shape, dtype=dtype), torch.empty(w.shape, dtype=torch.int16), staging)
