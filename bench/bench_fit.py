"""Alignment-fitting throughput (prompts per second), random weights.

    python bench/bench_fit.py                      # CPU, reduced config (tiny 4B-layout + 1024-wide 0.6B-layout)
    python bench/bench_fit.py --size full          # GPU: real 4B and 0.6B sizes, random weights
Writes a JSON to --out (default .bench_out/bench_fit.json). A "prompt" here is one corpus prompt through
ONE encoder; the fit's end-to-end rate (both encoders) is reported too, with the projected time for the
full 41,277-prompt corpus. Target (issue 4): under ten minutes on one H100-class GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from lib_qwen35.alignment.chunk_cache import embed_prompts  # noqa: E402
from lib_qwen35.alignment.corpus import DEFAULT_SIZE, generate_corpus  # noqa: E402
from lib_qwen35.alignment.run import fit_from_embeddings  # noqa: E402
from lib_qwen35.alignment.split import heldout_mask  # noqa: E402
from lib_qwen35.cli.demo import SYNTHETIC_06B  # noqa: E402
from lib_qwen35.synthetic import qwen35 as synthetic  # noqa: E402
from lib_qwen35.synthetic.qwen3 import write_checkpoint as write_06b  # noqa: E402

FULL_06B = dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_layers=28,
                num_attention_heads=16, num_key_value_heads=8, head_dim=128)


def fast_random_4b(path: str, device: str, sizes: dict | None = None) -> str:
    """A full-size Anima-layout 4B file, its random tensors drawn on `device` (fast on a GPU)."""
    sizes = sizes or synthetic.FULL
    cfg = synthetic.make_config("anima", **sizes)
    return synthetic.write_checkpoint(path, weights=synthetic.random_weights(cfg, 0, device=device, stored=True),
                                      **sizes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=("reduced", "full"), default=None,
                    help="reduced (default on CPU) or full (default on GPU)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--prompts", type=int, default=None, help="default: 1000 reduced, 4096 full")
    ap.add_argument("--batch-size", type=int, default=None, help="default: 32 on CPU, 64 on GPU")
    ap.add_argument("--dtype", default=None, help="compute dtype (default bf16 on GPU, fp32 on CPU)")
    ap.add_argument("--workdir", default=None, help="where to write the random checkpoints (default: temp)")
    ap.add_argument("--out", default=os.path.join(".bench_out", "bench_fit.json"))
    args = ap.parse_args()
    size = args.size or ("full" if args.device.startswith("cuda") else "reduced")
    n = args.prompts or (4096 if size == "full" else 1000)
    batch = args.batch_size or (64 if args.device.startswith("cuda") else 32)

    from lib_qwen35.files.tokenizer import load_qwen3_tokenizer
    from lib_qwen35.model.devices import resolve_dtype
    from lib_qwen35.model.encoder import load_encoder
    from lib_qwen35.model.qwen3 import Qwen3Encoder
    from lib_qwen35.synthetic.qwen3 import SmallVocabTokenizer

    work = args.workdir or tempfile.mkdtemp(prefix="bench_fit_")
    os.makedirs(work, exist_ok=True)
    t0 = time.perf_counter()
    p4, p6 = os.path.join(work, f"{size}_4b.safetensors"), os.path.join(work, f"{size}_06b.safetensors")
    if not os.path.exists(p4):
        if size == "full":
            fast_random_4b(p4, args.device if args.device.startswith("cuda") else "cpu")
        else:
            synthetic.write_checkpoint(p4, seed=1)
    sizes_06b = FULL_06B if size == "full" else SYNTHETIC_06B
    if not os.path.exists(p6):
        write_06b(p6, seed=2, **sizes_06b)
    write_s = time.perf_counter() - t0
    dtype = resolve_dtype(args.dtype, args.device)
    e4 = load_encoder(p4, device=args.device, dtype=dtype)
    tok = None if size == "full" else SmallVocabTokenizer(load_qwen3_tokenizer(), sizes_06b["vocab_size"])
    e6 = Qwen3Encoder(p6, device=args.device, dtype=dtype, tokenizer=tok)
    load_s = time.perf_counter() - t0 - write_s

    prompts = generate_corpus(n)
    warm = prompts[:batch]
    embed_prompts(e4, warm, role="4b", batch_size=batch)        # CUDA/allocator warm-up, not timed
    embed_prompts(e6, warm, role="06b", batch_size=batch)

    def timed(enc, role):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = embed_prompts(enc, prompts, role=role, batch_size=batch, chunk_size=max(512, batch))
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return out, time.perf_counter() - t

    x, s4 = timed(e4, "4b")
    y, s6 = timed(e6, "06b")
    t = time.perf_counter()
    cats = [p.category for p in prompts]
    _, _, report = fit_from_embeddings(x, y, cats, heldout_mask(prompts), allow_underdetermined=True)
    fit_s = time.perf_counter() - t
    # the SVD is a fixed cost; embedding scales with the prompt count
    full_corpus_s = DEFAULT_SIZE * (s4 + s6) / n + fit_s
    res = {
        "size": size, "device": args.device, "device_name": torch.cuda.get_device_name() if
        args.device.startswith("cuda") else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "dtype": str(dtype), "prompts": n, "batch_size": batch,
        "mean_tokens_4b": round(sum(len(e4.tokenize(p.text)) for p in prompts[:500]) / min(n, 500), 1),
        "prompts_per_s_4b": round(n / s4, 1), "prompts_per_s_06b": round(n / s6, 1),
        "prompts_per_s_fit_end_to_end": round(n / (s4 + s6 + fit_s), 1),
        "fit_math_s": round(fit_s, 2), "projected_full_corpus_s": round(full_corpus_s, 1),
        "write_weights_s": round(write_s, 1), "load_s": round(load_s, 1),
        "heldout_cosine_before": report["heldout"]["overall"]["before"]["mean"],
        "heldout_cosine_strength_1.0": report["heldout"]["overall"]["strength_1.0"]["mean"],
        "note": "random weights; cosines are not meaningful, only the throughput is",
    }
    if args.device.startswith("cuda"):
        res["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
