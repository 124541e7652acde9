"""Alignment-fitting throughput (prompts per second), random weights.

    python bench/bench_fit.py                      # CPU, reduced config (tiny 4B-layout + 1024-wide 0.6B-layout)
    python bench/bench_fit.py --size full          # GPU: real 4B and 0.6B sizes, random weights
    python bench/bench_fit.py --batches 0 8 13 15  # full size, whole fit batches (CPU): see below
Writes a JSON to --out (default .bench_out/bench_fit.json). A "prompt" here is one corpus prompt through
ONE encoder; the fit's end-to-end rate (both encoders) is reported too, with the projected time for the
full 41,277-prompt corpus. Target (issue 4): under ten minutes on one H100-class GPU.

--batches (full size; on a CPU a whole corpus takes hours, so it times a sample): the corpus's first 512-prompt chunk
is cut into batches of 32 exactly as the fit cuts it (sorted by token count), and the given batches go through each
encoder, full size (~/.cache/qwen35_bench/, written once), each encoder in its own process (--baseline-lib DIR: also
the encoders of another library tree, e.g. before a change). Per batch: seconds, prompts/s, and the floor for its
UNPADDED tokens: the same matmuls with resident weights, the better of fp32 (oneDNN or MKL) and bf16. Then a
least-squares fit t = a + b * real tokens + c * padded positions through the measured batches gives every batch of
the corpus a time: the projected time for the whole corpus (41,277 prompts, 1290 batches per encoder) and for the
tab's suggested first look (2,000 prompts: README, docs/cli.md --limit 2000), the fit's SVD measured on top.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.append(HERE)        # after PYTHONPATH: a --baseline-lib child imports lib_qwen35 from the tree it is given

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
    ap.add_argument("--batches", type=int, nargs="+", help="time these batches of the first chunk, full size")
    ap.add_argument("--repeats", type=int, default=1, help="with --batches: runs per batch (median)")
    ap.add_argument("--threads", type=int, help="torch threads (default torch's)")
    ap.add_argument("--baseline-lib", help="with --batches: also the encoders of this library tree")
    ap.add_argument("--weights-4b", help="with --batches: this 4B file instead of the full-size random one")
    ap.add_argument("--weights-06b", help="with --batches: this 0.6B file instead of the full-size random one")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(batch_child(*args.child, args.dtype, args.repeats)))
        return 0
    if args.batches:
        return batch_mode(args)
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


# ---- --batches: whole fit batches at full size -----------------------------------------------------------------

BENCH_DIR = os.path.join(os.path.expanduser("~"), ".cache", "qwen35_bench")
FILES = {"4b": os.path.join(BENCH_DIR, "qwen35_4b_random.safetensors"),
         "06b": os.path.join(BENCH_DIR, "qwen3_06b_random.safetensors")}
CHUNK, BATCH, FIRST_LOOK = 512, 32, 2000        # the fit's defaults (alignment/run.py), the tab's first look


def full_size_files(args) -> dict:
    """The full-size random checkpoints, written once (the 4B streamed, as bench_cpu.py writes it), unless given."""
    if args.weights_4b and args.weights_06b:
        return {"4b": args.weights_4b, "06b": args.weights_06b}
    os.makedirs(BENCH_DIR, exist_ok=True)
    if not os.path.exists(FILES["4b"]):
        synthetic.write_checkpoint_streamed(FILES["4b"], seed=0, **synthetic.FULL)
    if not os.path.exists(FILES["06b"]):
        write_06b(FILES["06b"], seed=2, **FULL_06B)
    return FILES


def corpus_batches(tokenize, prompts) -> list[list[list[int]]]:
    """The fit's batches (chunk_cache.embed_prompts): chunks of 512 by position, sorted by token count, 32 at a time."""
    out = []
    for c0 in range(0, len(prompts), CHUNK):
        ids = [list(tokenize(p.text)) for p in prompts[c0: c0 + CHUNK]]
        order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
        out += [[ids[i] for i in order[b: b + BATCH]] for b in range(0, len(order), BATCH)]
    return out


def batch_size(group) -> tuple[int, int]:
    """(real tokens, padded positions) of one batch."""
    return sum(map(len, group)), len(group) * max(map(len, group))


def batch_child(role: str, path: str, ids_file: str, label: str, dtype, repeats: int) -> dict:
    """In its own process: load one encoder, time each batch through the fit's own call (chunk_cache._encode)."""
    import statistics

    from lib_qwen35.alignment.chunk_cache import _encode
    from lib_qwen35.model.encoder import load_encoder
    from lib_qwen35.model.qwen3 import Qwen3Encoder

    with open(ids_file, encoding="utf-8") as f:
        batches = json.load(f)[role]
    t0 = time.perf_counter()
    enc = load_encoder(path, dtype=dtype) if role == "4b" else Qwen3Encoder(path, dtype=dtype)
    res = {"label": label, "load_s": time.perf_counter() - t0, "dtype": str(enc.dtype),
           "numerics": getattr(enc, "numerics", ""), "threads": torch.get_num_threads(), "batches": {}}
    _encode(enc, [ids[:4] for ids in next(iter(batches.values()))[:4]])       # oneDNN builds its kernels: not timed
    for b, group in batches.items():
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            _encode(enc, group)
            times.append(time.perf_counter() - t)
        res["batches"][b] = {"seconds": statistics.median(times), "all_s": times}
    res["peak_rss_gib"] = _peak_rss_gib()
    return res


def _peak_rss_gib():
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 2 ** 20 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None


def linear_shapes(role: str, path: str) -> dict:
    """{(out, in): how many per forward} of the encoder's matmuls, as our encoders fuse them, from the file's header."""
    from lib_qwen35.files.checkpoint import read_header

    infos = read_header(path)
    if role == "06b":
        from lib_qwen35.model.qwen3 import validate

        _, c = validate(infos, path)
        H, q, kv, i = c.hidden_size, c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim, \
            c.intermediate_size
        return {(q + 2 * kv, H): c.num_layers, (H, q): c.num_layers, (2 * i, H): c.num_layers, (H, i): c.num_layers}
    from lib_qwen35.model.config import infer_layout

    c = infer_layout(infos, path).config
    D, key, value = c.hidden_size, c.linear_num_key_heads * c.linear_key_head_dim, \
        c.linear_num_value_heads * c.linear_value_head_dim
    shapes: dict = {}

    def add(shape, n=1):
        shapes[shape] = shapes.get(shape, 0) + n

    for kind in c.layer_types:
        if kind == "linear_attention":
            add((2 * key + 2 * value + 2 * c.linear_num_value_heads, D))
            add((D, value))
        else:
            add((2 * c.num_attention_heads * c.head_dim + 2 * c.num_key_value_heads * c.head_dim, D))
            add((D, c.num_attention_heads * c.head_dim))
    add((2 * c.intermediate_size, D), len(c.layers_with_mlp))
    add((D, c.intermediate_size), len(c.layers_with_mlp))
    add((c.output_size, D))
    add((c.output_size, c.output_size))
    return shapes


def floors(shapes: dict, tokens: int, repeats: int = 2) -> dict:
    """Seconds of the matmuls for `tokens` rows with resident weights (random), through the library's own linear:
    fp32 (the better of oneDNN and MKL per shape) and bf16 (x rounded per linear, as the CPU's bf16 mode does)."""
    import statistics

    from lib_qwen35.ops import cpu_gemm, cpu_linear

    def median_s(fn):
        fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    g = torch.Generator().manual_seed(0)
    total = {"fp32": 0.0, "bf16": 0.0}
    backends = ["torch"] + (["onednn"] if cpu_gemm.onednn_problem() is None else [])
    with torch.inference_mode():
        for (n, k), count in shapes.items():
            w, x = torch.randn(n, k, generator=g) * k ** -0.5, torch.randn(tokens, k, generator=g)
            fp32 = [median_s(lambda x=x, w=w, b=b: cpu_linear.linear(x, w, backend=b)) for b in backends]
            total["fp32"] += count * min(fp32)
            w16 = w.bfloat16()
            total["bf16"] += count * median_s(lambda x=x, w16=w16: cpu_linear.linear(x, w16, gemm_dtype=torch.bfloat16))
    return total


def _project(measured: dict, sizes: dict, everything: list) -> tuple[list[float], float]:
    """Least squares t = a + b * real + c * padded through the measured batches; returns (a, b, c) and the largest
    relative residual, so a reader can judge the fit."""
    rows = [[1.0, sizes[b][0], sizes[b][1]] for b in measured]
    A, y = torch.tensor(rows, dtype=torch.float64), torch.tensor([measured[b] for b in measured], dtype=torch.float64)
    coef = torch.linalg.lstsq(A, y[:, None]).solution.flatten()
    residual = ((A @ coef - y).abs() / y).max().item()
    return coef.tolist(), residual


def batch_mode(args) -> int:
    import subprocess
    import tempfile

    from lib_qwen35.files.tokenizer import load_qwen3_tokenizer, load_qwen35_tokenizer
    from lib_qwen35.model import devices
    from lib_qwen35.ops import cpu_features

    files = full_size_files(args)
    prompts = generate_corpus(DEFAULT_SIZE)
    tokenizers = {"4b": load_qwen35_tokenizer(), "06b": load_qwen3_tokenizer()}
    every = {role: corpus_batches(tok.encode, prompts) for role, tok in tokenizers.items()}
    first_look = {role: corpus_batches(tok.encode, prompts[:FIRST_LOOK]) for role, tok in tokenizers.items()}
    size = batch_size
    ids_file = os.path.join(tempfile.mkdtemp(prefix="bench_fit_"), "batches.json")
    with open(ids_file, "w", encoding="utf-8") as f:
        json.dump({role: {str(b): every[role][b] for b in args.batches} for role in every}, f)
    trees = [("ours", None)] + ([("baseline", os.path.abspath(args.baseline_lib))] if args.baseline_lib else [])
    choice = devices.cpu_choice()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {args.threads or torch.get_num_threads()} threads; "
          f"load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "")
    print(f"capabilities: {cpu_features.describe()}; auto: {devices.dtype_name(choice.dtype)} ({choice.why})")
    res = {"batches": args.batches, "trees": {}, "floors": {}}
    for role in ("4b", "06b"):
        shapes = linear_shapes(role, files[role])
        for b in args.batches:
            real, padded = size(every[role][b])
            res["floors"][f"{role}/{b}"] = {"real": real, "padded": padded, **floors(shapes, real)}
        for label, lib in trees:
            env = dict(os.environ, **({"PYTHONPATH": lib} if lib else {}))
            cmd = [sys.executable, os.path.abspath(__file__), "--child", role, files[role], ids_file, label,
                   "--repeats", str(args.repeats)] + (["--dtype", args.dtype] if args.dtype else []) + \
                  (["--threads", str(args.threads)] if args.threads else [])
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=lib or HERE, check=False)
            if r.returncode != 0:
                print(f"{label} {role}: failed\n{r.stderr[-3000:]}")
                continue
            res["trees"][f"{label}/{role}"] = json.loads(r.stdout.strip().splitlines()[-1])
    # the fit's own maths on the corpus's sizes (Procrustes, calibration, report), once
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(DEFAULT_SIZE, 1024, generator=g), torch.randn(DEFAULT_SIZE, 1024, generator=g)
    t = time.perf_counter()
    fit_from_embeddings(x, y, [p.category for p in prompts], heldout_mask(prompts))
    res["fit_math_s"] = time.perf_counter() - t
    report_batches(res, every, first_look, size)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
    return 0


def report_batches(res: dict, every: dict, first_look: dict, size) -> None:
    print(f"\n{'encoder':<16}{'batch':>6}{'B':>4}{'T max':>7}{'real/padded':>13}{'seconds':>9}{'prompts/s':>11}"
          f"{'fp32 floor':>12}{'bf16 floor':>12}{'ratio to best':>15}")
    projections = {}
    for key, tree in res["trees"].items():
        label, role = key.split("/")
        measured, sizes = {}, {}
        for b, r in tree["batches"].items():
            fl = res["floors"][f"{role}/{b}"]
            group = every[role][int(b)]
            best = min(fl["fp32"], fl["bf16"])
            measured[b], sizes[b] = r["seconds"], (fl["real"], fl["padded"])
            print(f"{label + ' ' + role:<16}{b:>6}{len(group):>4}{max(map(len, group)):>7}"
                  f"{str(fl['real']) + '/' + str(fl['padded']):>13}{r['seconds']:>9.1f}"
                  f"{len(group) / r['seconds']:>11.2f}"
                  f"{fl['fp32']:>12.1f}{fl['bf16']:>12.1f}{r['seconds'] / best:>14.2f}x")
        (a, b_, c), worst = _project(measured, sizes, every[role])
        total = {name: sum(a + b_ * size(g)[0] + c * size(g)[1] for g in batches[role])
                 for name, batches in (("corpus", every), ("first look", first_look))}
        projections[key] = {"coef": (a, b_, c), "worst_residual": worst, **total,
                            "prompts": {"corpus": sum(map(len, every[role])),
                                        "first look": sum(map(len, first_look[role]))},
                            "dtype": tree["dtype"], "peak_rss_gib": tree.get("peak_rss_gib")}
    print(f"\nprojection: t = a + b * real tokens + c * padded positions per batch, fitted through the measured "
          f"batches; fit maths {res['fit_math_s']:.1f} s once")
    for key, p in projections.items():
        per_s = p["prompts"]["corpus"] / p["corpus"]
        print(f"{key:<16} [{p['dtype']}] corpus {p['prompts']['corpus']} prompts: {p['corpus'] / 3600:.2f} h "
              f"({per_s:.2f} prompts/s); first look {p['prompts']['first look']}: {p['first look'] / 60:.1f} min; "
              f"a={p['coef'][0]:.2f} s b={p['coef'][1] * 1e3:.1f} ms c={p['coef'][2] * 1e3:.1f} ms, "
              f"worst residual {p['worst_residual'] * 100:.0f}%; peak RSS {p['peak_rss_gib'] or 0:.2f} GiB")
    for label in {k.split("/")[0] for k in projections}:
        both = [projections.get(f"{label}/{r}") for r in ("4b", "06b")]
        if all(both):
            for name in ("corpus", "first look"):
                total = sum(p[name] for p in both) + res["fit_math_s"]
                print(f"{label}: whole fit, {name}: {total / 3600:.2f} h" if total > 3600 else
                      f"{label}: whole fit, {name}: {total / 60:.1f} min")
    res["projections"] = projections


if __name__ == "__main__":
    raise SystemExit(main())
