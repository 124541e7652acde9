"""CPU benchmark: our encoder vs transformers' Qwen3_5TextModel on the same weights, in one run.

    python bench/bench_cpu.py                 # full width (2560), 4 layers, 77 and 300 tokens
    python bench/bench_cpu.py --layers 8 --tokens 77 300 1024 --repeats 7

Each variant runs in its own subprocess so that its peak RSS (VmHWM) is its own. Weights: one random FP8
checkpoint in the real Anima layout (lib_qwen35.synthetic) at full width and reduced depth; transformers
gets the same values dequantised to fp32 (it has no FP8 path), plus our projection head on top so
both compute the same [T, 1024] output. Prints medians and ratios (transformers / ours).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

VARIANTS = {
    "ours": "ours: FP8 file, fp32 compute, upcast copies cached (CPU default)",
    "ours_fp8_resident": "ours: FP8 kept, upcast per layer at every call",
    "ours_recurrent": "ours: per-token recurrence kernel (reference)",
    "transformers": "transformers 5.x Qwen3_5TextModel, fp32 weights, torch kernels",
}


def run_variant(name, path, tokens, repeats):
    import torch

    from lib_qwen35 import load_encoder

    torch.manual_seed(0)
    opts = {"ours": {}, "ours_fp8_resident": {"upcast_cache_bytes": 0},
            "ours_recurrent": {"kernel": "recurrent"}, "transformers": {}}[name]
    enc = load_encoder(path, dtype="fp32", **opts)
    if name == "transformers":
        import logging

        logging.getLogger("transformers").setLevel(logging.ERROR)
        from tests.reference import transformers_model

        from lib_qwen35.checkpoint import load_tensors, read_header

        infos = read_header(path)
        raw = load_tensors(infos, list(infos))
        weights = {("head." + k) if k.startswith("norm.") else k: v.float() for k, v in raw.items()}
        ref = transformers_model(enc.config, weights)
        head = enc.backbone.head
        del enc, raw
        fwd = lambda ids: head(ref(input_ids=ids).last_hidden_state)   # noqa: E731
    else:
        fwd = lambda ids: enc.backbone(ids, torch.float32)   # noqa: E731 (no embedding cache: raw forward)
    out = {}
    with torch.inference_mode():
        for T in tokens:
            ids = torch.randint(0, 248000, (1, T), generator=torch.Generator().manual_seed(T))
            fwd(ids)  # warm-up
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fwd(ids)
                times.append((time.perf_counter() - t0) * 1e3)
            out[T] = statistics.median(times)
    out["peak_rss_gib"] = peak_rss_gib()
    return out


def peak_rss_gib() -> float:
    """This process's own peak RSS. VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts from its
    parent's peak (it survives fork+exec), and the parent wrote the checkpoint."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=2560)
    ap.add_argument("--tokens", type=int, nargs="+", default=[77, 300])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--recurrent-max-tokens", type=int, default=300, help="skip the slow reference above this")
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.weights, args.tokens, args.repeats)))
        return

    import torch

    from lib_qwen35 import synthetic

    scale = args.hidden / 2560
    sizes = dict(synthetic.FULL, num_layers=args.layers)
    if args.hidden != 2560:
        sizes.update(hidden_size=args.hidden, intermediate_size=int(9216 * scale))
    tmp = tempfile.mkdtemp(prefix="bench_cpu_")
    path = synthetic.write_checkpoint(os.path.join(tmp, "bench.safetensors"), seed=0, **sizes)
    print(f"weights: random FP8 checkpoint, hidden {args.hidden}, {args.layers} layers "
          f"({os.path.getsize(path) / 2**30:.2f} GiB), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs; medians of {args.repeats}")
    results = {}
    for v in args.variants:
        toks = [t for t in args.tokens if v != "ours_recurrent" or t <= args.recurrent_max_tokens]
        cmd = [sys.executable, __file__, "--variant", v, "--weights", path, "--repeats", str(args.repeats),
               "--tokens", *map(str, toks)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{v}: failed\n{r.stderr[-2000:]}")
            continue
        results[v] = json.loads(r.stdout.strip().splitlines()[-1])
        results[v] = {(int(k) if k.isdigit() else k): val for k, val in results[v].items()}
    os.remove(path)
    hdr = f"{'variant':<20}" + "".join(f"{str(t) + ' tok ms':>14}" for t in args.tokens) + f"{'peak RSS GiB':>14}"
    print(hdr)
    for v, r in results.items():
        cells = "".join(f"{r[t]:>14.1f}" if t in r else f"{'-':>14}" for t in args.tokens)
        print(f"{v:<20}{cells}{r['peak_rss_gib']:>14.2f}")
    if "ours" in results:
        for other in ("transformers", "ours_fp8_resident", "ours_recurrent"):
            if other in results:
                ratios = "  ".join(f"{t}: {results[other][t] / results['ours'][t]:.2f}x" for t in args.tokens
                                   if t in results[other])
                print(f"ratio {other} / ours   {ratios}")
    for v in results:
        print(f"  {v}: {VARIANTS[v]}")


if __name__ == "__main__":
    main()
