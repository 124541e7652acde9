"""CPU benchmark at the real model's size: our encoder, the fp32 and bf16 floors and transformers, side by side in
one run.

    python bench/bench_cpu.py                      # full size (writes the 4.8 GB file once, then reuses it)
    python bench/bench_cpu.py --layers 4           # quick look: full width, 4 layers, a temporary file
    python bench/bench_cpu.py --baseline-lib DIR   # also "ours" from another library tree (e.g. a checkout of main)

Weights: a random checkpoint in the exact layout of qwen35_4b.safetensors (426 tensors, 4,138,640,384 parameters,
FP8 E4M3 linears, BF16 norms and embedding, F32 A_log), written by lib_qwen35.synthetic.qwen35.write_checkpoint_streamed
with ~64 MB of RAM to --weights (default ~/.cache/qwen35_bench/qwen35_4b_random.safetensors, outside the repository)
and reused while its header still matches. Random values: timings and memory are the real model's, the outputs are
meaningless.

Each variant runs in its own process, so its peak RSS (VmHWM) is its own:
- ours: load_encoder(file) with its defaults (dtype "auto": on the CPU bf16 matmuls where the CPU has native bf16 and
  they measure faster, else fp32; --dtype to set it), timed through Encoder.encode_batch (embedding cache off).
  "first" is the first encode of that length after the load (oneDNN builds its kernels then), "warm" the median
  of --repeats more. CPU time (user, system) is summed over the warm encodes. Its output is also compared with the
  naive path (whole-weight upcast with torch's conversion, then F.linear) at the first length.
- ours, torch GEMM: the same with QWEN35_CPU_GEMM=torch (MKL, the GEMM F.linear uses).
- ours bf16 / ours fp32 (ours_bf16, ours_fp32; not run by default): dtype set to bf16 (bf16 matmuls, fp32 elsewhere)
  or fp32, whatever "auto" picks here.
- fp32 floor: the same matmuls with fp32 weights already resident, nothing converted: our forward with every linear
  reading an fp32 copy, timing only the linears (the whole forward is reported too). So that 17 GB of fp32 fit
  in RAM, the layers of one kind share one set of fp32 weights (one DeltaNet layer, one attention layer, the head:
  ~0.9 GB); each layer's fp32 weights (~450 MB) are 14x the CPU's L3 cache, so sharing gives no cache advantage.
- bf16 floor: the same with bf16 copies (shared the same way, ~0.45 GB) and bf16 matmuls: x rounded to bf16 per
  linear, the product back in fp32, as the CPU's bf16 mode multiplies. The better of the two floors is the "best
  floor" the ratios use; on a CPU without native bf16 (emulated, 5-8x slower) that is the fp32 one.
- transformers: Qwen3_5TextModel (fp32, SDPA, torch kernels) plus our projection head, the same shapes. With the
  whole model in fp32 (16.6 GB) when the machine has the RAM for it; otherwise the layers of one kind share their
  weights as above (timing only: its output is then not ours, and its peak RSS is not the full model's) and the
  table says so. --transformers off|shared|full|auto.
Each "ours" variant's last output per length is compared with ours_fp32's (the exact path; run it beside the
default to see what bf16 matmuls cost): min and mean token cosine, max |diff| / max |ref|.
Medians; ratios are taken within this one run. The machine, its bf16 capabilities, what "auto" picks on it, its load
and the thread count are printed.

One file of ~450 lines: the parent runs this same script once per variant (--child), so the variants, their
timing and the report stay together.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.append(HERE)        # after PYTHONPATH: a --baseline-lib child imports lib_qwen35 from the tree it is given

DEFAULT_WEIGHTS = os.path.join(os.path.expanduser("~"), ".cache", "qwen35_bench", "qwen35_4b_random.safetensors")
VARIANTS = {
    "ours": "ours (FP8 weights, blocked decode + GEMM)",
    "ours_torch_gemm": "ours, torch GEMM (MKL)",
    "ours_bf16": "ours, dtype bf16 (bf16 matmuls)",
    "ours_fp32": "ours, dtype fp32",
    "baseline": "ours from --baseline-lib",
    "floor": "fp32 floor: matmuls only",
    "floor_bf16": "bf16 floor: matmuls only",
    "floor_torch_gemm": "fp32 floor: matmuls only, torch GEMM (MKL)",
    "transformers": "transformers",
}
ENV = {"ours_torch_gemm": {"QWEN35_CPU_GEMM": "torch"}, "floor_torch_gemm": {"QWEN35_CPU_GEMM": "torch"}}
DTYPE = {"ours_bf16": "bf16", "ours_fp32": "fp32"}       # else --dtype (default auto)
FLOORS = ("floor", "floor_bf16")                        # the two whose better one is "the best floor"
OUTPUTS_ENV = "BENCH_CPU_OUTPUTS"                       # where an "ours" child saves its last output per length


# ---- in the child process ---------------------------------------------------------------------------------
def _proc_gib(path: str, field: str) -> float | None:
    """A 'Field:   123 kB' line of a /proc file, in GiB (None where /proc is not there)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    return None


def peak_rss_gib() -> float | None:
    """This process's own peak RSS. VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts from its
    parent's peak (it survives fork+exec), and the parent may have written the checkpoint."""
    peak = _proc_gib("/proc/self/status", "VmHWM")
    if peak is None:
        try:
            import resource
        except ImportError:         # Windows: no /proc and no resource module
            return None
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    return peak


def _cpu_seconds() -> tuple[float, float]:
    t = os.times()
    return t.user, t.system


def _prompt(T: int):
    import torch

    return torch.randint(0, 248000, (T,), generator=torch.Generator().manual_seed(T)).tolist()


def time_lengths(fwd, tokens, repeats, inner=None) -> dict:
    """{T: first, warm (median), warm_all, user_s, sys_s[, inner_*]} in seconds. `inner()` (optional) returns the
    seconds the last call spent in the part being measured (the floor's linears)."""
    out = {}
    for T in tokens:
        ids = _prompt(T)
        t0 = time.perf_counter()
        fwd(ids)
        r = {"first": time.perf_counter() - t0}
        if inner:
            r["inner_first"] = inner()
        times, inners = [], []
        u0, s0 = _cpu_seconds()
        for _ in range(repeats):
            t0 = time.perf_counter()
            fwd(ids)
            times.append(time.perf_counter() - t0)
            if inner:
                inners.append(inner())
        u1, s1 = _cpu_seconds()
        r.update(warm=statistics.median(times), warm_all=times, user_s=u1 - u0, sys_s=s1 - s0)
        if inner:
            r.update(inner_warm=statistics.median(inners), inner_all=inners)
        out[str(T)] = r
    return out


def run_ours(path, tokens, repeats, dtype="auto") -> dict:
    import torch

    from lib_qwen35 import load_encoder

    t0 = time.perf_counter()
    enc = load_encoder(path, dtype=None if dtype == "auto" else dtype)
    res = {"load_s": time.perf_counter() - t0, "dtype": str(enc.dtype).replace("torch.", ""),
           "lib": os.path.dirname(os.path.dirname(sys.modules["lib_qwen35"].__file__))}
    outputs = {}

    def encode(ids):
        outputs[len(ids)] = enc.encode_batch([ids], use_cache=False)[0]
        return outputs[len(ids)]

    res["times"] = time_lengths(encode, tokens, repeats)
    res["peak_rss_gib"] = peak_rss_gib()
    if os.environ.get(OUTPUTS_ENV):        # the parent compares each variant's outputs with ours_fp32's
        torch.save({str(t): y for t, y in outputs.items()}, os.environ[OUTPUTS_ENV])
    try:
        from lib_qwen35.ops import cpu_gemm, cpu_linear
    except ImportError:     # an older tree: no fast path to compare
        return res
    try:
        res["gemm"] = cpu_gemm.describe(enc.dtype)
    except TypeError:       # an older tree: one GEMM dtype
        res["gemm"] = cpu_gemm.describe()
    ids = torch.tensor([_prompt(tokens[0])])
    act = getattr(enc, "activation_dtype", torch.float32)
    with torch.inference_mode():
        fast = enc.backbone(ids, act)
        cpu_linear.supports = lambda x, w: False          # the naive path: whole-weight upcast, then F.linear
        naive = enc.backbone(ids, act)
    cos = torch.nn.functional.cosine_similarity(fast.double(), naive.double(), dim=-1).min().item()
    res["vs_naive"] = {"tokens": tokens[0], "max_rel": ((fast - naive).abs().max() / naive.abs().max()).item(),
                       "min_cos": cos, "bitwise": bool(torch.equal(fast, naive))}
    return res


def _shared_copies(enc, dtype) -> dict:
    """(layer kind, module path) -> one copy in `dtype`, for every linear of the model: the layers of one kind
    share."""
    from lib_qwen35.model.linear import StoredLinear, upcast

    shared, owner = {}, {}
    for layer in enc.backbone.layers:
        for name, m in layer.named_modules():
            if isinstance(m, StoredLinear):
                key = (layer.kind, name)
                if key not in shared:
                    shared[key] = upcast(m.weight, dtype)
                owner[m] = shared[key]
    for m in enc.backbone.head.modules():
        if isinstance(m, StoredLinear):
            owner[m] = upcast(m.weight, dtype)
    return owner


def timed_forward(forward, spent: list):
    """`forward` (a linear's) that adds the seconds each call takes to spent[0]: the floor counts the linears only."""
    def timed(self, x):
        t0 = time.perf_counter()
        y = forward(self, x)
        spent[0] += time.perf_counter() - t0
        return y

    return timed


def run_floor(path, tokens, repeats, gemm="fp32") -> dict:
    """The linears of our forward reading resident copies in `gemm` (fp32 or bf16), activations fp32."""
    import torch

    from lib_qwen35 import load_encoder
    from lib_qwen35.model.linear import StoredLinear
    from lib_qwen35.ops import cpu_gemm

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[gemm]
    enc = load_encoder(path, dtype="fp32")
    for m, copy in _shared_copies(enc, dtype).items():
        m._cached = copy                                 # StoredLinear reads its copy: nothing to decode
        m.gemm_dtype = dtype
    spent = [0.0]
    StoredLinear.forward = timed_forward(StoredLinear.forward, spent)

    def fwd(ids):
        spent[0] = 0.0
        with torch.inference_mode():
            enc.backbone(torch.tensor([ids]), torch.float32)

    res = {"times": time_lengths(fwd, tokens, repeats, inner=lambda: spent[0]), "gemm": cpu_gemm.describe(dtype)}
    res["peak_rss_gib"] = peak_rss_gib()
    return res


def run_transformers(path, tokens, repeats, mode) -> dict:
    import logging

    import torch

    logging.getLogger("transformers").setLevel(logging.ERROR)
    import transformers

    from lib_qwen35.files.checkpoint import load_tensors, read_header
    from lib_qwen35.model.config import infer_layout
    from lib_qwen35.model.linear import upcast
    from lib_qwen35.model.qwen35 import ProjectionHead
    from tests.reference import torch_reference_module, transformers_config

    infos = read_header(path)
    cfg = infer_layout(infos, path).config
    first = {kind: cfg.layer_types.index(kind) for kind in set(cfg.layer_types)}
    source = {i: (i if mode == "full" else first[kind]) for i, kind in enumerate(cfg.layer_types)}
    wanted = [n for n in infos if not n.startswith("layers.") or int(n.split(".")[1]) in set(source.values())]
    t0 = time.perf_counter()
    raw = load_tensors(infos, wanted)
    fp32 = {n: upcast(raw.pop(n), torch.float32) for n in list(raw)}
    state = {"embed_tokens.weight": fp32["embed_tokens.weight"]}
    for i in range(cfg.num_layers):
        for n, t in fp32.items():
            if n.startswith(f"layers.{source[i]}."):
                state[f"layers.{i}." + n.split(".", 2)[2]] = t
    mlp = {"post_attention_layernorm.weight": (cfg.hidden_size,), "mlp.gate_proj.weight": (cfg.intermediate_size,
           cfg.hidden_size), "mlp.up_proj.weight": (cfg.intermediate_size, cfg.hidden_size),
           "mlp.down_proj.weight": (cfg.hidden_size, cfg.intermediate_size)}
    for i in set(range(cfg.num_layers)) - set(cfg.layers_with_mlp):   # no MLP in the file: transformers runs one
        for n, shape in mlp.items():                                    # anyway (zeros; shared mode: the donor's)
            state.setdefault(f"layers.{i}.{n}", torch.zeros(shape))
    mod = torch_reference_module()
    tcfg = transformers_config(cfg, attn_implementation="sdpa")
    with torch.device("meta"):
        model = mod.Qwen3_5TextModel(tcfg)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if unexpected or set(missing) - {"norm.weight"}:
        raise RuntimeError(f"transformers state dict: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.rotary_emb = type(model.rotary_emb)(config=tcfg)     # its buffers are computed, not loaded
    model.norm = torch.nn.Identity()                          # the Anima file has no final norm
    model.eval()
    meta = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if meta:
        raise RuntimeError(f"transformers tensors left unloaded: {meta[:5]}")
    head = ProjectionHead(cfg, {k: fp32[k] for k in ("norm.0.weight", "norm.0.bias", "norm.1.weight", "norm.3.weight",
                                                      "norm.3.bias")}).eval()
    load_s = time.perf_counter() - t0

    def fwd(ids):
        with torch.inference_mode():
            head(model(input_ids=torch.tensor([ids])).last_hidden_state)

    res = {"load_s": load_s, "mode": mode, "version": transformers.__version__,
           "times": time_lengths(fwd, tokens, repeats)}
    res["peak_rss_gib"] = peak_rss_gib()
    return res


def child(variant, path, tokens, repeats, transformers_mode, dtype="auto") -> dict:
    import torch

    res = {"threads": torch.get_num_threads()}
    if variant in ("ours", "ours_torch_gemm", "ours_bf16", "ours_fp32", "baseline"):
        res.update(run_ours(path, tokens, repeats, DTYPE.get(variant, dtype)))
    elif variant in ("floor", "floor_torch_gemm", "floor_bf16"):
        res.update(run_floor(path, tokens, repeats, "bf16" if variant == "floor_bf16" else "fp32"))
    elif variant == "transformers":
        res.update(run_transformers(path, tokens, repeats, transformers_mode))
    return res


# ---- in the parent ----------------------------------------------------------------------------------------
def checkpoint(args) -> tuple[str, bool]:
    """(path, temporary): the full-size file, written once and reused while its header matches; or a temporary
    reduced-depth file for --layers."""
    from lib_qwen35.errors import Qwen35Error
    from lib_qwen35.files.checkpoint import read_header
    from lib_qwen35.model.config import infer_layout
    from lib_qwen35.synthetic import qwen35 as synthetic

    sizes = dict(synthetic.FULL, **({"num_layers": args.layers} if args.layers else {}))
    if args.layers:
        path = os.path.join(tempfile.mkdtemp(prefix="bench_cpu_"), "bench.safetensors")
        return synthetic.write_checkpoint_streamed(path, seed=0, **sizes), True
    path = os.path.abspath(args.weights)
    try:
        cfg = infer_layout(read_header(path), path).config
        if cfg.num_layers == sizes["num_layers"] and cfg.hidden_size == sizes["hidden_size"]:
            return path, False
    except Qwen35Error:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    print(f"writing the full-size random checkpoint to {path} (once; ~1 min) ...", flush=True)
    return synthetic.write_checkpoint_streamed(path, seed=0, **sizes), False


def mem_available_gib() -> float | None:
    return _proc_gib("/proc/meminfo", "MemAvailable")


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        mem = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2 ** 30:.1f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        pass
    from lib_qwen35.ops import cpu_features

    isa = cpu_features.isa()
    load = "load average %.2f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    return (f"{cpu}, {os.cpu_count()} CPUs ({isa}){mem}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
            f"python {platform.python_version()}; {load}")


def capabilities() -> list[str]:
    """The CPU's bf16-relevant flags and what "auto" picks here (the load-time measurement runs only where the
    flags say native bf16)."""
    from lib_qwen35.model import devices
    from lib_qwen35.ops import cpu_features

    choice = devices.cpu_choice()
    measured = "" if choice.speedup else ", nothing measured"      # a measured speed is part of choice.why
    return [f"capabilities: {cpu_features.describe()}",
            f"auto on this CPU: {devices.dtype_name(choice.dtype)} ({choice.why}{measured})"]


def _cell(x, width=10):
    return f"{x:>{width}.2f}" if isinstance(x, (int, float)) else f"{x or '-':>{width}}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=DEFAULT_WEIGHTS, help="the full-size file to write or reuse")
    ap.add_argument("--layers", type=int, help="a reduced-depth temporary file instead (quick looks)")
    ap.add_argument("--tokens", type=int, nargs="+", default=[77, 300])
    ap.add_argument("--repeats", type=int, default=3, help="warm encodes per length (median)")
    ap.add_argument("--variants", nargs="+", default=["ours", "ours_torch_gemm", "floor", "floor_bf16",
                                                        "floor_torch_gemm", "transformers"], choices=list(VARIANTS))
    ap.add_argument("--dtype", default="auto", choices=("auto", "fp32", "bf16"), help="ours' (and --baseline-lib's)")
    ap.add_argument("--baseline-lib", help="a library tree whose 'ours' runs too (variant 'baseline')")
    ap.add_argument("--transformers", default="auto", choices=("auto", "off", "shared", "full"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        variant, path, mode = args.child
        print(json.dumps(child(variant, path, args.tokens, args.repeats, mode, args.dtype)))
        return

    path, temporary = checkpoint(args)
    from lib_qwen35.files.checkpoint import read_header

    infos = read_header(path)
    params = sum(math.prod(i.shape) for i in infos.values())
    fp32_gib = params * 4 / 2 ** 30
    avail = mem_available_gib()
    mode = args.transformers
    if mode == "auto":
        mode = "full" if avail is not None and avail > fp32_gib + 4 else "shared"
    variants = [v for v in args.variants if not (v == "transformers" and mode == "off")]
    if args.baseline_lib:
        variants.insert(variants.index("ours") + 1 if "ours" in variants else 0, "baseline")
    print(f"machine: {machine()}")
    for line in capabilities():
        print(line)
    print(f"weights: {path}: {len(infos)} tensors, {params:,} parameters, {os.path.getsize(path) / 2**30:.2f} GiB, "
          f"random (synthetic); each variant in its own process; medians of {args.repeats} warm encodes; "
          f"seconds per encode (batch 1)")
    results = {}
    outputs_dir = tempfile.mkdtemp(prefix="bench_cpu_out_")
    try:
        for v in variants:
            env = dict(os.environ, **ENV.get(v, {}), **{OUTPUTS_ENV: os.path.join(outputs_dir, v + ".pt")})
            if v == "baseline":
                env["PYTHONPATH"] = os.path.abspath(args.baseline_lib)
            cmd = [sys.executable, os.path.abspath(__file__), "--child", v, path, mode, "--repeats", str(args.repeats),
                   "--dtype", args.dtype, "--tokens", *map(str, args.tokens)]
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True, env=env,
                               cwd=os.path.abspath(args.baseline_lib) if v == "baseline" else HERE)
            if r.returncode != 0:
                print(f"{v}: failed ({r.returncode})\n{r.stderr[-3000:]}", flush=True)
                continue
            results[v] = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"  ({v}: {time.perf_counter() - t0:.0f} s)", flush=True)
        for v, r in results.items():
            r["vs_fp32"] = agreement(os.path.join(outputs_dir, v + ".pt"), os.path.join(outputs_dir, "ours_fp32.pt"))
    finally:
        if temporary:
            os.remove(path)
        shutil.rmtree(outputs_dir, ignore_errors=True)
    report(results, args, mode, fp32_gib, avail)


def agreement(path, ref_path) -> dict | None:
    """{T: min and mean token cosine, max |diff| / max |ref|} of one variant's outputs against ours_fp32's, the
    exact path: what the default's bf16 matmuls cost in accuracy (None when either was not saved)."""
    import torch

    if path == ref_path or not (os.path.exists(path) and os.path.exists(ref_path)):
        return None
    got, ref = torch.load(path), torch.load(ref_path)
    out = {}
    for t in got.keys() & ref.keys():
        a, b = got[t].double(), ref[t].double()
        cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
        out[t] = {"min_cos": cos.min().item(), "mean_cos": cos.mean().item(),
                  "max_rel": ((a - b).abs().max() / b.abs().max()).item()}
    return out


def _label(v, r, mode) -> str:
    if v == "transformers":
        return f"transformers {r.get('version', '')} fp32 sdpa" + (" (shared layers)" if mode == "shared" else "")
    if v == "baseline":
        return "ours @ " + os.path.basename(r.get("lib", "")).strip("/")[-24:]
    return VARIANTS[v]


def report(results, args, mode, fp32_gib, avail) -> None:
    T = [str(t) for t in args.tokens]
    cols = "".join(f"{t + ' first':>11}{t + ' warm':>10}" for t in T)
    print(f"\n{'variant':<46}{'load s':>8}{cols}{'peak RSS GiB':>14}{'sys/user':>10}")
    for v, r in results.items():
        rows = [(v, r, "warm")]
        if v.startswith("floor"):
            resident = ("bf16" if v == "floor_bf16" else "fp32") + "-resident forward"
            rows = [(v, r, "inner"), (resident + (", torch GEMM" if "torch" in v else ""), r, "warm")]
        for name, res, which in rows:
            cells = ""
            for t in T:
                x = res["times"].get(t, {})
                first, warm = (x.get("inner_first"), x.get("inner_warm")) if which == "inner" else (x.get("first"),
                                                                                                     x.get("warm"))
                cells += _cell(first, 11) + _cell(warm)
            user = sum(res["times"][t]["user_s"] for t in T if t in res["times"])
            sys_ = sum(res["times"][t]["sys_s"] for t in T if t in res["times"])
            label = _label(name, res, mode) if name in VARIANTS else name
            if name in VARIANTS and res.get("dtype"):
                label += f" [{res['dtype'].replace('float32', 'fp32').replace('bfloat16', 'bf16')}]"
            rss = res.get("peak_rss_gib") if which != "inner" and "-resident" not in name else None
            print(f"{label:<46}{_cell(res.get('load_s'), 8)}{cells}{_cell(rss, 14)}"
                  f"{_cell(sys_ / user if user else None)}")

    def warm(v, t, which="warm"):
        return results.get(v, {}).get("times", {}).get(t, {}).get(which)

    print()
    best = {}          # length -> (seconds, floor variant): the better of the fp32 and bf16 floors
    for t in T:
        floors = [(warm(f, t, "inner_warm"), f) for f in FLOORS if warm(f, t, "inner_warm")]
        if floors:
            best[t] = min(floors)
    if best:
        print("best floor (warm):".ljust(56) + "  ".join(f"{t}: {VARIANTS[f].split(':')[0]} {s:.2f} s"
                                                          for t, (s, f) in best.items()))
    for ours in ("ours", "ours_bf16", "ours_fp32", "baseline"):
        if ours in results and best:
            ratios = "  ".join(f"{t}: {warm(ours, t) / best[t][0]:.2f}x" for t in T if warm(ours, t) and t in best)
            print(f"ratio {ours} / best floor (warm):".ljust(56) + ratios)
    for ours, floor in (("ours", "floor"), ("ours", "floor_bf16"), ("ours_torch_gemm", "floor_torch_gemm"),
                        ("ours", "floor_torch_gemm")):
        if ours in results and floor in results:
            ratios = "  ".join(f"{t}: {warm(ours, t) / warm(floor, t, 'inner_warm'):.2f}x" for t in T
                               if warm(ours, t) and warm(floor, t, "inner_warm"))
            print(f"ratio {ours} / {floor} (warm):".ljust(56) + ratios)
    for ours, floor in (("ours", "floor"), ("ours", "floor_bf16"), ("ours_torch_gemm", "floor_torch_gemm")):
        if ours in results and floor in results:     # the same forward with resident weights: what the FP8 path costs
            kind = "bf16" if floor == "floor_bf16" else "fp32"
            ratios = "  ".join(f"{t}: {warm(ours, t) / warm(floor, t):.2f}x" for t in T
                               if warm(ours, t) and warm(floor, t))
            print(f"ratio {ours} / {kind}-resident forward (warm):".ljust(56) + ratios)
    for other in ("transformers", "baseline", "ours_torch_gemm", "ours_bf16", "ours_fp32"):
        if other in results and "ours" in results:
            ratios = "  ".join(f"{t}: {warm(other, t) / warm('ours', t):.2f}x" for t in T
                               if warm(other, t) and warm("ours", t))
            print(f"ratio {other} / ours (warm):".ljust(56) + ratios)
    for v in ("ours", "ours_torch_gemm", "ours_bf16", "ours_fp32"):
        e = results.get(v, {}).get("vs_naive")
        if e:
            print(f"{v} vs the naive path (whole-weight upcast + F.linear), {e['tokens']} tokens: "
                  f"max |diff| / max |ref| "
                  f"{e['max_rel']:.1e}, min cosine {e['min_cos']:.7f}{', bit-identical' if e['bitwise'] else ''}")
    for v, r in results.items():
        for t, e in sorted((r.get("vs_fp32") or {}).items(), key=lambda kv: int(kv[0])):
            print(f"{v} vs ours_fp32 (the exact path), {t} tokens: min token cosine {e['min_cos']:.5f}, mean "
                  f"{e['mean_cos']:.5f}, max |diff| / max |ref| {e['max_rel']:.1e}")
    for v in ("ours", "ours_bf16", "floor", "floor_bf16"):
        if results.get(v, {}).get("gemm"):
            print(f"{v} GEMM: {results[v]['gemm']}")
    if "transformers" in results and mode == "shared":
        print(f"transformers: layers of one kind share fp32 weights (timing only; its RSS is not the full model's): "
              f"the whole model in fp32 needs {fp32_gib:.1f} GiB, this machine had {avail:.1f} GiB available")
    print(f"machine load after the run: {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "")


if __name__ == "__main__":
    main()
