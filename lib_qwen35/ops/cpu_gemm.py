"""The CPU matrix multiply behind every linear layer: y[M, n] = x[M, K] @ w[n, K]^T (+ b), two interchangeable
backends, one contract (`gemm`), in fp32 or bf16 (x and w of one dtype, y in it).

- `torch`: `F.linear` itself, i.e. the BLAS torch uses (MKL in the x86 wheels). The reference.
- `onednn`: oneDNN's inner product (`torch.ops.mkldnn._linear_pointwise`, which torch's compiler uses). In fp32 it
  runs AVX-512 code where MKL picks its AVX2 path (AMD CPUs), and is then the faster of the two (docs/performance.md,
  "The GEMM"); it is true fp32 (no TF32/bf16 shortcut): the two differ by fp32 rounding, because they sum in another
  order. In bf16 it is the path to the CPU's bf16 units (AMX, AVX512-BF16): fp32 accumulation, a bf16 result. Where
  oneDNN has no bf16 kernel (an AVX2 CPU) the bf16 GEMM is F.linear's, emulated and several times slower than fp32.

`backend(dtype)` picks onednn when a probe matmul in that dtype runs and agrees with float64 (once per process and
dtype), else torch; `QWEN35_CPU_GEMM=torch|onednn` overrides (onednn only if it works). Autograd needs the torch
backend: `gemm` with oneDNN is for inference (no grad), the blocked linear in `cpu_linear` falls back before calling it.
"""

from __future__ import annotations

import os
import threading

import torch
import torch.nn.functional as F

BACKENDS = ("torch", "onednn")
DTYPES = (torch.float32, torch.bfloat16)
# the probe's tolerance: fp32 rounding, or the bf16 rounding of the result (8 bits of mantissa)
_TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 1e-2}
_choice: dict = {}     # dtype -> (backend name, why not onednn or None)
_lock = threading.Lock()


def _onednn_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")


def onednn_problem(dtype: torch.dtype = torch.float32) -> str | None:
    """None when oneDNN's inner product runs here in `dtype` and agrees with float64 to that dtype's rounding;
    else why not."""
    name = str(dtype).replace("torch.", "")
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return f"torch {torch.__version__} has no oneDNN inner product"
    if not torch.backends.mkldnn.enabled:
        return "oneDNN is turned off (torch.backends.mkldnn.enabled = False)"
    try:
        g = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(*shape, generator=g).to(dtype) for shape in ((5, 96), (40, 96), (40,)))
        y = _onednn_linear(x, w, b)
        ref = F.linear(x.double(), w.double(), b.double())
        err = (y.double() - ref).abs().max().item() / ref.abs().max().item()
    except Exception as e:   # noqa: BLE001 - any failure means "use the reference backend"
        first = (str(e).splitlines() or [""])[0].split(". ")[0][:160]    # its first sentence
        return f"oneDNN {name} inner product failed: {type(e).__name__}: {first}"
    if not (y.dtype == dtype and y.shape == (5, 40) and err < _TOLERANCE[dtype]):
        return f"oneDNN {name} inner product is not exact to {name} rounding here (relative error {err:.2g})"
    return None


def backend(dtype: torch.dtype = torch.float32) -> str:
    """The backend the CPU linears use in this process for `dtype` (decided once per dtype)."""
    if dtype not in _choice:
        with _lock:
            if dtype not in _choice:
                wanted = os.environ.get("QWEN35_CPU_GEMM", "auto").strip().lower()
                if dtype not in DTYPES:
                    problem = f"oneDNN is used for {', '.join(map(str, DTYPES))} only"
                elif wanted in ("auto", "onednn"):
                    problem = onednn_problem(dtype)
                elif wanted == "torch":
                    problem = "QWEN35_CPU_GEMM=torch"
                else:   # a typo must not pass for a choice: the reference backend, and the value named
                    problem = (f"QWEN35_CPU_GEMM={wanted!r} is not one of auto, {', '.join(BACKENDS)}; "
                               f"the reference backend is used")
                _choice[dtype] = ("onednn" if problem is None else "torch", problem)
    return _choice[dtype][0]


def describe(dtype: torch.dtype = torch.float32) -> str:
    name, why = backend(dtype), _choice[dtype][1]
    precision = str(dtype).replace("torch.", "").replace("float32", "fp32").replace("bfloat16", "bf16")
    return f"oneDNN {precision} GEMM" if name == "onednn" else f"torch {precision} GEMM ({why})"


def gemm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, which: str | None = None) -> torch.Tensor:
    """y[M, n] = x[M, K] @ w[n, K]^T (+ b[n]), a new tensor, in x's dtype on the CPU. oneDNN only for fp32 / bf16
    and while torch.backends.mkldnn.enabled (a host that turns oneDNN off gets the torch backend)."""
    which = which or backend(x.dtype)
    if which == "onednn" and x.dtype in DTYPES and torch.backends.mkldnn.enabled:
        return _onednn_linear(x, w, b)
    return F.linear(x, w, b)
