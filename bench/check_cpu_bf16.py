"""What bf16 does on this CPU, in one command: the check to run on a machine with native bf16 (AMX, AVX512-BF16).

    python bench/check_cpu_bf16.py [--quick] [--threads N] [--out FILE.json]

About 2-4 minutes on a Xeon; with --quick (77 tokens, one block size) it also runs where bf16 is emulated (slowly).
It prints:
- the CPU's flags as the library reads them (ops/cpu_features.py), oneDNN's bf16 kernel (cpu_gemm.onednn_problem)
  and the instruction set oneDNN dispatches (from ONEDNN_VERBOSE, Linux), and what "auto" decides here
  (model/devices.py: the load-time measurement, which runs only where the flags say native bf16);
- the FP8 decode's cost per weight: to fp32 (the fp32 path), to bf16 through fp32 (the bf16 path), to bf16 straight
  from fp16 (torch converts that one element at a time) and torch's own .to(bf16);
- per linear shape of the model and token count: the resident-weight GEMMs (fp32 oneDNN and MKL, bf16), our blocked
  FP8 linear in fp32 and in bf16 at 256 / 512 / 1024-row blocks, and the bf16 one's difference from the bf16 matmul
  on the whole decoded weight (the readable reference).
Medians of --reps. The figures belong in docs/performance.md ("bf16 on CPUs with native bf16").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch
import torch.nn.functional as F

from lib_qwen35.model import devices
from lib_qwen35.ops import cpu_features, cpu_gemm, cpu_linear, fp8_decode

SHAPES = {"MLP gate|up": (18432, 2560), "MLP down": (2560, 9216), "DeltaNet in_proj": (12352, 2560),
          "out_proj": (2560, 4096)}


def median_s(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def onednn_isa() -> list[str]:
    """oneDNN's verbose lines for one fp32 and one bf16 inner product (they go to the C stdout: fd 1 is captured)."""
    try:
        r, w = os.pipe()
        saved = os.dup(1)
    except (OSError, AttributeError):
        return ["(not captured here)"]
    os.dup2(w, 1)
    try:
        with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
            for dtype in (torch.float32, torch.bfloat16):
                try:
                    cpu_gemm.gemm(torch.randn(77, 512).to(dtype), torch.randn(256, 512).to(dtype), None, "onednn")
                except RuntimeError:
                    pass
        sys.stdout.flush()
    finally:
        os.dup2(saved, 1)
        os.close(w)
    text = os.read(r, 1 << 20).decode(errors="replace")
    os.close(r)
    return [line for line in text.splitlines() if ",isa:" in line or "inner_product" in line][:4]


def capabilities() -> dict:
    caps = cpu_features.capabilities()
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "line": cpu_features.describe(caps),
           "aten_capability": torch.backends.cpu.get_cpu_capability(),
           "flags": {k: caps.get(k) for k in ("cpu_name", "architecture", "avx2", "avx512_f", "avx512_bf16",
                                              "amx_tile", "amx_bf16", "bf16")},
           "onednn_bf16": cpu_gemm.onednn_problem(torch.bfloat16) or "ok",
           "onednn_verbose": onednn_isa()}
    try:
        out["mkldnn_bf16_supported (emulated counts)"] = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except Exception as e:  # noqa: BLE001 - an old torch without the query: reported as absent
        out["mkldnn_bf16_supported (emulated counts)"] = f"absent ({type(e).__name__})"
    choice = devices.decide_cpu_dtype("auto", caps)
    out["auto"] = {"dtype": devices.dtype_name(choice.dtype), "why": choice.why, "speedup": choice.speedup}
    out["measured speedup (bf16 / fp32 speed, our linear, 9216x2560 at 77 tokens)"] = devices.measure_bf16_speedup()
    return out


def decode_costs(reps: int) -> dict:
    """ns per weight to decode a 512 x 2560 block (the blocked linear's size) by each route."""
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(512, 2560, generator=g) * 0.01).to(torch.float8_e4m3fn)
    bits, f32, b16 = torch.empty(512, 2560, dtype=torch.int16), torch.empty(512, 2560), torch.empty(512, 2560,
                                                                                                   dtype=torch.bfloat16)
    routes = {"to fp32 (fp32 path)": lambda: fp8_decode.decode_scaled_into(w, f32, bits),
              "to bf16 through fp32 (bf16 path)": lambda: fp8_decode.decode_scaled_into(w, b16, bits, f32),
              "to bf16 from fp16 directly": lambda: fp8_decode.decode_scaled_into(w, b16, bits),
              "torch .to(bfloat16)": lambda: w.to(torch.bfloat16)}
    return {name: median_s(fn, reps) / w.numel() * 1e9 for name, fn in routes.items()}


def one_shape(w8: torch.Tensor, x: torch.Tensor, block_rows, reps: int) -> dict:
    """Seconds of each GEMM route for x [M, K] and the FP8 weight w8 [N, K], and the bf16 path's exactness."""
    K = w8.shape[1]
    w32, w16, x16 = w8.float(), w8.to(torch.bfloat16), x.bfloat16()
    r = {"resident fp32 oneDNN": median_s(lambda: cpu_gemm.gemm(x, w32, None, "onednn"), reps),
         "resident fp32 MKL": median_s(lambda: F.linear(x, w32), reps),
         f"resident bf16 ({cpu_gemm.backend(torch.bfloat16)})": median_s(lambda: cpu_gemm.gemm(x16, w16), reps),
         "ours fp32": median_s(lambda: cpu_linear.linear(x, w8), reps)}
    for rows in block_rows:
        r[f"ours bf16, {rows}-row blocks"] = median_s(
            lambda rows=rows: cpu_linear.linear(x, w8, block_elements=rows * K, gemm_dtype=torch.bfloat16), reps)
    got = cpu_linear.linear(x, w8, gemm_dtype=torch.bfloat16)
    ref = cpu_linear.linear_reference(x, w8, None, torch.bfloat16)
    r["bf16 vs whole-weight bf16 matmul, max rel"] = ((got - ref).abs().max() / ref.abs().max()).item()
    return r


def gemms(tokens, block_rows, reps: int) -> dict:
    g = torch.Generator().manual_seed(1)
    out = {}
    with torch.inference_mode():
        for name, (N, K) in SHAPES.items():
            w8 = (torch.randn(N, K, generator=g) * (0.5 / K ** 0.5)).to(torch.float8_e4m3fn)
            for M in tokens:
                r = out[f"{name} [{N}x{K}] M={M}"] = one_shape(w8, torch.randn(M, K, generator=g), block_rows, reps)
                print(f"{name} [{N}x{K}] M={M}: " + ", ".join(
                    f"{k} {v:.1e}" if "max rel" in k else f"{k} {v * 1e3:.1f} ms" for k, v in r.items()), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="77 tokens and 512-row blocks only")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", help="also write the results as JSON here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    reps = 2 if args.quick else args.reps
    res = {"capabilities": capabilities()}
    print(json.dumps(res["capabilities"], indent=1), flush=True)
    res["decode_ns_per_weight"] = decode_costs(max(reps, 11))
    print("decode, ns per weight: " + ", ".join(f"{k} {v:.2f}" for k, v in res["decode_ns_per_weight"].items()),
          flush=True)
    res["gemm_s"] = gemms((77,) if args.quick else (77, 300, 600), (512,) if args.quick else (256, 512, 1024), reps)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1, default=str)


if __name__ == "__main__":
    main()
