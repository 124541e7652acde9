"""The CPU matrix multiply behind every linear layer: y[M, n] = x[M, K] @ w[n, K]^T (+ b), two interchangeable
backends, one contract (`gemm`).

- `torch`: `F.linear` itself, i.e. the BLAS torch uses (MKL in the x86 wheels). The reference.
- `onednn`: oneDNN's inner product (`torch.ops.mkldnn._linear_pointwise`, which torch's compiler uses), which runs
  AVX-512 code where MKL picks its AVX2 path (AMD CPUs), and is then the faster of the two (docs/performance.md,
  "The GEMM"). It is true fp32 (no TF32/bf16 shortcut): the two differ by fp32 rounding, because they sum in
  another order.

`backend()` picks onednn when it is there and a probe matmul agrees with the reference (once per process),
else torch; `QWEN35_CPU_GEMM=torch|onednn` overrides (onednn only if it works). Autograd needs the torch backend:
`gemm` with oneDNN is for inference (no grad), the blocked linear in `cpu_linear` falls back before calling it.
"""

from __future__ import annotations

import os
import threading

import torch
import torch.nn.functional as F

BACKENDS = ("torch", "onednn")
_choice: dict = {}
_lock = threading.Lock()


def _onednn_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")


def onednn_problem() -> str | None:
    """None when oneDNN's fp32 inner product runs here and agrees with float64 to fp32 rounding; else why not."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return f"torch {torch.__version__} has no oneDNN inner product"
    if not torch.backends.mkldnn.enabled:
        return "oneDNN is turned off (torch.backends.mkldnn.enabled = False)"
    try:
        g = torch.Generator().manual_seed(0)
        x, w, b = torch.randn(5, 96, generator=g), torch.randn(40, 96, generator=g), torch.randn(40, generator=g)
        y = _onednn_linear(x, w, b)
        ref = F.linear(x.double(), w.double(), b.double())
        err = (y.double() - ref).abs().max().item() / ref.abs().max().item()
    except Exception as e:   # noqa: BLE001 - any failure means "use the reference backend"
        return f"oneDNN inner product failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
    if not (y.dtype == torch.float32 and y.shape == (5, 40) and err < 1e-5):
        return f"oneDNN inner product is not fp32-exact here (relative error {err:.2g})"
    return None


def backend() -> str:
    """The backend the CPU linears use in this process (decided once)."""
    if "name" not in _choice:
        with _lock:
            if "name" not in _choice:
                wanted = os.environ.get("QWEN35_CPU_GEMM", "auto").strip().lower()
                if wanted in ("auto", "onednn"):
                    problem = onednn_problem()
                elif wanted == "torch":
                    problem = "QWEN35_CPU_GEMM=torch"
                else:   # a typo must not pass for a choice: the reference backend, and the value named
                    problem = (f"QWEN35_CPU_GEMM={wanted!r} is not one of auto, {', '.join(BACKENDS)}; "
                               f"the reference backend is used")
                _choice["why"] = problem
                _choice["name"] = "onednn" if problem is None else "torch"
    return _choice["name"]


def describe() -> str:
    name = backend()
    return "oneDNN fp32 GEMM" if name == "onednn" else f"torch fp32 GEMM ({_choice['why']})"


def gemm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, which: str | None = None) -> torch.Tensor:
    """y[M, n] = x[M, K] @ w[n, K]^T (+ b[n]), a new tensor, in x's dtype on the CPU. oneDNN only for fp32 and
    while torch.backends.mkldnn.enabled (a host that turns oneDNN off gets the torch backend)."""
    which = which or backend()
    if which == "onednn" and x.dtype == torch.float32 and torch.backends.mkldnn.enabled:
        return _onednn_linear(x, w, b)
    return F.linear(x, w, b)
