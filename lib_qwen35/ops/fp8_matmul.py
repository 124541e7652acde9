"""FP8 tensor-core matmuls for the FP8-stored linear weights (W8A8), with the exact upcast as fallback.

The Anima file stores every linear weight as FP8 E4M3 and has no scale tensors: the stored numbers ARE the
weights, so the weight scale is 1.0. On a GPU with FP8 tensor cores (compute capability >= 8.9: Ada, Hopper)
`torch._scaled_mm` multiplies FP8 x FP8 with fp32 accumulation, reading the weight as stored (1 byte/element,
no upcast copy) at twice the bf16 tensor-core rate. The activation must be FP8 too, so it is quantised:

    s   = amax(|x|) / 448          per token (row of x; "per_token") or over the whole tensor ("per_tensor")
    x_q = e4m3(x / s)              round to nearest, saturating at +-448
    y   = (x_q @ W^T) * s (+ b)    == _scaled_mm(x_q, W^T, scale_a=s, scale_b=1) (+ b), output in x.dtype

Per-token scaling keeps every row to itself, so padding and the other prompts in a batch change nothing. A
per-tensor scale spans every row of the forward, padding and other prompts included: the encoder therefore runs
per-tensor mode one prompt at a time, unpadded, without CUDA graphs (slower; the mode is only a fallback where
row-wise scaling does not run).

Only the activation rounding differs from the reference (upcast W exactly, bf16 matmul): E4M3 keeps 3 mantissa
bits, so each activation is off by at most 2^-4 relative. tests/ops/test_fp8_matmul.py holds each linear under 4%
relative error, and the whole backbone to a per-token cosine >= 0.98 against fp32 (the bf16 upcast path: >= 0.999);
what they measure, and why that is the tolerance: docs/gpu.md, "Tolerances (bf16 and FP8)". That is a lossy
mode, so it is opt-in.

Integration: `fp8_linear(x, weight, bias, mode)` is a drop-in for `F.linear(x, upcast(weight), bias)`;
`choose_mode(device, dtype, requested)` decides (and says why) whether to use it; the model switches its linears
to it (`model/linear.py`, `enable_fp8_matmul`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

E4M3 = torch.float8_e4m3fn
E4M3_MAX = 448.0
MODES = ("per_token", "per_tensor")
REQUESTS = ("auto", "off") + MODES
_MIN_SCALE = 1e-12          # an all-zero row would give scale 0 -> 0/0; any tiny scale quantises zeros exactly
_probe_cache: dict = {}     # (device str, mode, compute dtype) -> None if it works, else the error text
ALLOW_CPU = False           # switched linears use FP8 kernels on CUDA only (CPU FP8 GEMMs are slow); tests set True


def _scaled_mm_exists() -> bool:
    return hasattr(torch, "_scaled_mm")


def fp8_matmul_support(device) -> tuple[bool, str]:
    """(supported, reason). FP8 tensor cores need a CUDA GPU of compute capability >= 8.9 and torch._scaled_mm."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return False, f"device is {dev.type}: FP8 tensor-core matmuls need a CUDA GPU"
    if not torch.cuda.is_available():
        return False, "CUDA is not available"
    if not _scaled_mm_exists():
        return False, f"torch {torch.__version__} has no torch._scaled_mm"
    major, minor = torch.cuda.get_device_capability(dev)
    if (major, minor) < (8, 9):
        return False, (f"{torch.cuda.get_device_name(dev)} is compute capability {major}.{minor}; "
                       f"FP8 tensor cores need 8.9 or newer (Ada, Hopper)")
    return True, f"{torch.cuda.get_device_name(dev)} (compute capability {major}.{minor}) has FP8 tensor cores"


def shapes_ok(in_features: int, out_features: int) -> bool:
    """_scaled_mm needs K and N to be multiples of 16 (every 4B linear is; some tiny test sizes are not)."""
    return in_features % 16 == 0 and out_features % 16 == 0


def quantize(x2d: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """x [M, K] -> (x_q [M, K] E4M3, scale fp32: [M, 1] per token or [] per tensor) with x ~= x_q * scale."""
    if mode not in MODES:
        raise ValueError(f"FP8 activation scaling must be one of {MODES}, got {mode!r}")
    x32 = x2d.float()
    amax = x32.abs().amax(dim=-1, keepdim=True) if mode == "per_token" else x32.abs().amax()
    scale = (amax / E4M3_MAX).clamp(min=_MIN_SCALE)
    x_q = (x32 / scale).clamp(-E4M3_MAX, E4M3_MAX).to(E4M3)
    return x_q, scale


def _weight_scale(n: int, mode: str, device) -> torch.Tensor:
    """Weight scale 1.0 in the layout _scaled_mm wants: [1, N] for row-wise, a scalar for tensor-wise."""
    return torch.ones(1, n, device=device) if mode == "per_token" else torch.ones((), device=device)


def fp8_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
               mode: str = "per_token") -> torch.Tensor:
    """y = x W^T (+ b) on FP8 tensor cores. x [..., K] bf16/fp16, weight [N, K] E4M3 (as stored, scale 1).
    Falls back to the exact upcast matmul when the shapes do not fit the FP8 kernels."""
    N, K = weight.shape
    if weight.dtype != E4M3 or not shapes_ok(K, N):
        return F.linear(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype))
    lead = x.shape[:-1]
    x_q, s_x = quantize(x.reshape(-1, K), mode)
    # weight [N, K] row-major => weight.t() [K, N] is column-major, the layout cuBLASLt's FP8 GEMM needs.
    y = torch._scaled_mm(x_q, weight.t(), scale_a=s_x, scale_b=_weight_scale(N, mode, x.device),
                         out_dtype=x.dtype)
    if isinstance(y, tuple):        # torch < 2.5 returned (out, amax)
        y = y[0]
    if bias is not None:            # added outside the kernel: bias/scale dtype rules differ across torch versions
        y = y + bias.to(y.dtype)
    return y.reshape(*lead, N)


def emulated_fp8_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                        mode: str = "per_token") -> torch.Tensor:
    """The same maths as fp8_linear without FP8 kernels (quantise, dequantise, fp32 matmul): the CPU reference
    the tests hold fp8_linear to."""
    N, K = weight.shape
    x_q, s_x = quantize(x.reshape(-1, K), mode)
    y = (x_q.float() * s_x) @ weight.float().t()
    if bias is not None:
        y = y + bias.float()
    return y.to(x.dtype).reshape(*x.shape[:-1], N)


def probe(device, mode: str, dtype: torch.dtype = torch.bfloat16) -> str | None:
    """Run one tiny FP8 matmul on `device` with `dtype` in and out, exactly as the forward will; None if it works,
    else the error. The output dtype matters: row-wise (per-token) scaling gives only bf16 output on Ada, and on
    Hopper with cuBLAS < 12.9 (torch's _scaled_mm checks), so fp16 compute can fail where bf16 passes.
    Cached per device, mode and dtype."""
    key = (str(torch.device(device)), mode, dtype)
    if key not in _probe_cache:
        try:
            x = torch.randn(16, 32, device=device).to(dtype)
            w = torch.randn(32, 32, device=device).to(E4M3)
            y = fp8_linear(x, w, mode=mode)
            ref = emulated_fp8_linear(x, w, mode=mode)
            if not torch.allclose(y.float(), ref.float(), rtol=2e-2, atol=2e-2):
                raise RuntimeError(f"probe result differs from the emulation by {(y - ref).abs().max().item():.3g}")
            _probe_cache[key] = None
        except Exception as e:      # noqa: BLE001 - any failure means "do not use this mode here"
            _probe_cache[key] = f"{type(e).__name__}: {e}".splitlines()[0][:200]
    return _probe_cache[key]


def choose_mode(device, dtype: torch.dtype, requested: str = "auto") -> tuple[str | None, str]:
    """(mode or None, reason for the status line). requested: auto | off | per_token | per_tensor.
    auto = per_token where it runs (best accuracy), else per_tensor, else off. Never for fp32 compute:
    whoever asks for fp32 asks for the exact path."""
    if requested not in REQUESTS:
        raise ValueError(f"fp8 matmul must be one of {REQUESTS}, got {requested!r}")
    if requested == "off":
        return None, "FP8 matmul off (requested): FP8 weights upcast per layer"
    if dtype not in (torch.bfloat16, torch.float16):
        return None, (f"compute dtype {str(dtype).replace('torch.', '')}: FP8 weights upcast exactly "
                      "(FP8 matmul only for bf16/fp16)")
    ok, why = fp8_matmul_support(device)
    if not ok:
        return None, f"{why}: FP8 weights upcast per layer"
    for mode in ((requested,) if requested in MODES else MODES):
        err = probe(device, mode, dtype)
        if err is None:
            return mode, f"FP8 tensor-core matmul ({mode.replace('_', '-')} activation scale) on {why.split(' (')[0]}"
    return None, f"FP8 matmul unavailable ({err}): FP8 weights upcast per layer"


def wants_fp8(x: torch.Tensor) -> bool:
    """Should a switched linear use FP8 for this input? Only bf16/fp16 compute, and only on CUDA (a backbone moved
    to CPU keeps the exact path: CPU FP8 GEMMs are slow and nobody asked for them there)."""
    return x.dtype in (torch.bfloat16, torch.float16) and (x.is_cuda or ALLOW_CPU)
