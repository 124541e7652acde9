"""Our encoder against its floor, interleaved in ONE process: the ratio on a noisy, shared machine.

    python bench/bench_cpu_paired.py [--tokens 77 300] [--rounds 7] [--weights FILE] [--against-e4m3]

bench_cpu.py times each variant in its own process, one after the other. On a shared VM whose speed drifts by 20-30%
over minutes, the two medians of a ratio can then come from different weather. Here one process loads the encoder
once (FP8 weights, its defaults: dtype "auto") and alternates, per round and length:
- ours: `Encoder.encode_batch` (embedding cache off), wall time;
- the floor in the dtype ours multiplies in (bf16 where auto picks it, i.e. where it is the faster; else fp32): the
  same forward with every linear reading a resident copy (the layers of one kind share one set, exactly as in
  bench_cpu.py's floors), timing only the linears;
- with --against-e4m3, also ours with `cpu_code=False`: the E4M3 weights decoded as before the CPU's own code
  (ops/fp8_recode.py) existed, for a before/after of the code in one process (a second 4.5 GB encoder).
Each round's ratios are taken from runs seconds apart; the median of those ratios is the figure. The medians of the
times are printed too. Peak RSS is not measured here (the floor's copies are in the same process): bench_cpu.py
gives ours' own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)      # bench_cpu (the checkpoint, the floor's copies, the machine line); it adds lib_qwen35's

import bench_cpu  # noqa: E402 - after the path set-up above


def paired(path: str, tokens: list[int], rounds: int, against_e4m3: bool = False) -> dict:
    """{T: {"ours": [s], "floor": [s], "ratio": [x], and with against_e4m3 "e4m3": [s], "speedup": [x]}} from
    `rounds` alternations per length."""
    import torch

    from lib_qwen35 import load_encoder
    from lib_qwen35.model.linear import StoredLinear

    enc = load_encoder(path)
    gemm = enc.dtype                                                   # on the CPU: the matmuls' dtype
    copies = bench_cpu._shared_copies(enc, gemm)                       # StoredLinear -> its (shared) resident copy
    own = {m: m.gemm_dtype for m in copies}
    before = load_encoder(path, cpu_code=False) if against_e4m3 else None
    spent = [0.0]
    forward = StoredLinear.forward
    timed = bench_cpu.timed_forward(forward, spent)

    def encode(encoder, ids) -> float:
        t0 = time.perf_counter()
        encoder.encode_batch([ids], use_cache=False)
        return time.perf_counter() - t0

    def floor(ids) -> float:
        for m, copy in copies.items():
            m._cached, m.gemm_dtype = copy, gemm
        StoredLinear.forward = timed
        spent[0] = 0.0
        try:
            with torch.inference_mode():
                enc.backbone(torch.tensor([ids]), torch.float32)
        finally:
            StoredLinear.forward = forward
            for m in copies:
                m._cached, m.gemm_dtype = None, own[m]
        return spent[0]

    out = {"dtype": str(enc.dtype).replace("torch.", "")}
    for T in tokens:
        ids = bench_cpu._prompt(T)
        encode(enc, ids), floor(ids)                                   # first runs: oneDNN builds its kernels
        if before is not None:
            encode(before, ids)
        runs = {"ours": [], "floor": [], "ratio": [], "e4m3": [], "speedup": []}
        for _ in range(rounds):
            a, b = encode(enc, ids), floor(ids)
            runs["ours"].append(a), runs["floor"].append(b), runs["ratio"].append(a / b)
            if before is not None:
                c = encode(before, ids)
                runs["e4m3"].append(c), runs["speedup"].append(c / a)
        out[T] = runs
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=bench_cpu.DEFAULT_WEIGHTS, help="the full-size file to write or reuse")
    ap.add_argument("--layers", type=int, help="a reduced-depth temporary file instead (quick looks)")
    ap.add_argument("--tokens", type=int, nargs="+", default=[77, 300])
    ap.add_argument("--rounds", type=int, default=7, help="alternations per length (median)")
    ap.add_argument("--against-e4m3", action="store_true",
                    help="also ours with cpu_code=False (the decode before the CPU's own code), alternating")
    args = ap.parse_args()
    path, _ = bench_cpu.checkpoint(args)
    print("machine:", bench_cpu.machine())
    print("\n".join(bench_cpu.capabilities()))
    res = paired(path, args.tokens, args.rounds, args.against_e4m3)
    print(f"ours (dtype auto -> {res['dtype']}) against the {res['dtype']} floor (matmuls only), alternating in one "
          f"process, {args.rounds} rounds; seconds per encode (batch 1), medians")
    print(f"{'tokens':>6}  {'ours':>8}  {'floor':>8}  {'ours/floor':>10}  per-round ratios")
    for T in args.tokens:
        r = res[T]
        print(f"{T:>6}  {statistics.median(r['ours']):8.2f}  {statistics.median(r['floor']):8.2f}  "
              f"{statistics.median(r['ratio']):9.2f}x  " + " ".join(f"{x:.2f}" for x in r["ratio"]))
    if args.against_e4m3:
        print("ours against ours with cpu_code=False (E4M3 decoded as before the CPU's own code), same rounds")
        print(f"{'tokens':>6}  {'ours':>8}  {'e4m3':>8}  {'e4m3/ours':>10}  per-round ratios")
        for T in args.tokens:
            r = res[T]
            print(f"{T:>6}  {statistics.median(r['ours']):8.2f}  {statistics.median(r['e4m3']):8.2f}  "
                  f"{statistics.median(r['speedup']):9.2f}x  " + " ".join(f"{x:.2f}" for x in r["speedup"]))


if __name__ == "__main__":
    main()
