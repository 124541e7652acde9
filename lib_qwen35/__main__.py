"""Command line: python -m lib_qwen35 {encode,stats,inspect,fit,corpus} ...

Without --weights, a small deterministic synthetic checkpoint (real layout, random weights) is built and
used, and every output says so: the numbers then describe random weights, not the real encoder.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import tempfile
import time

SYNTHETIC_NOTE = ("NOTE: no --weights given: using a small SYNTHETIC checkpoint with random weights "
                  "(real layout, tiny sizes). The numbers below are synthetic, not Qwen3.5-4B's.")
# Subcommands that live in other modules; each exposes add_arguments(parser) and main(args) -> int.
EXTERNAL_COMMANDS = {"fit": "lib_qwen35.fit", "corpus": "lib_qwen35.corpus"}


def _synthetic_path() -> str:
    return os.path.join(tempfile.gettempdir(), "lib_qwen35_demo", "qwen35_synthetic_seed0.safetensors")


def synthetic_weights_path() -> str:
    from . import synthetic

    path = _synthetic_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        from .checkpoint import read_header
        from .config import infer_layout
        from .errors import Qwen35Error

        try:
            infer_layout(read_header(path), path)
        except Qwen35Error:          # damaged (e.g. an interrupted write elsewhere): make it again
            os.remove(path)
    if not os.path.exists(path):
        synthetic.write_checkpoint(path, seed=0)     # atomic: a concurrent run never sees half a file
    return path


def _inputs(args) -> list[tuple[str, str]]:
    """(label, path) of every file this command reads: a writer may overwrite none of them."""
    from .checkpoint import checkpoint_files
    from .errors import Qwen35Error

    weights = getattr(args, "weights", None)
    out = [("weights file", weights or _synthetic_path())]
    if weights:
        try:
            out += [("weights file", f) for f in checkpoint_files(weights)]
        except Qwen35Error:
            pass                       # reported by the load itself
    for label, attr in (("alignment file", "alignment"), ("calibration file", "calibration"),
                        ("prompt file", "prompts")):
        if getattr(args, attr, None):
            out.append((label, getattr(args, attr)))
    return out


def _is_our_json(path) -> bool:
    from .errors import Qwen35Error
    from .safe_io import MARK_KEY, MARK_VALUE, read_text

    data = json.loads(read_text(path, "JSON file", 64 << 20, Qwen35Error))
    return isinstance(data, dict) and str(data.get(MARK_KEY, "")).startswith(MARK_VALUE)


def _encoder(args):
    from .encoder import load_encoder

    path = args.weights
    if path is None:
        print(SYNTHETIC_NOTE, file=sys.stderr)
        path = synthetic_weights_path()
    return load_encoder(path, device=args.device, dtype=args.dtype, kernel=args.kernel), path


def _stage(args):
    from .output_stage import Alignment, Calibration, OutputStage

    return OutputStage(alignment=Alignment.load(args.alignment) if args.alignment else None, strength=args.strength,
                       calibration=Calibration.load(args.calibration) if args.calibration else None,
                       output_scale=args.scale)


def cmd_encode(args) -> int:
    from .checkpoint import written_by_us
    from .diagnostics import format_metrics, prompt_metrics
    from .safe_io import MARK_KEY, MARK_VALUE, atomic_output, check_output

    if args.save:      # before any work: an error after a long load would waste it
        args.save = check_output(args.save, "embeddings file", inputs=_inputs(args), ours=written_by_us)
    stage = _stage(args)
    enc, path = _encoder(args)
    ids = enc.tokenize(args.prompt)
    t0 = time.perf_counter()
    raw = enc.encode_ids(ids)
    ms = (time.perf_counter() - t0) * 1e3
    out = stage.apply(raw)
    print(f"weights   {path}{'  (SYNTHETIC)' if args.weights is None else ''}")
    print(f"encoder   {enc.config.num_layers} layers, hidden {enc.config.hidden_size}, weights {enc.weights_dtype}, "
          f"compute {str(enc.dtype).replace('torch.', '')} on {enc.device}, kernel {enc.kernel}, "
          f"loaded in {enc.load_seconds:.2f} s")
    print(f"tokens    {len(ids)}   encode {ms:.1f} ms   output {tuple(out.shape)}")
    print(format_metrics(prompt_metrics([out])))
    if args.save:
        import torch
        from safetensors.torch import save_file

        with atomic_output(args.save) as tmp:
            save_file({"embeddings": out.cpu().contiguous(), "ids": torch.tensor(ids)}, tmp,
                      metadata={"prompt": args.prompt, "weights": os.path.basename(path),
                                "synthetic": str(args.weights is None), MARK_KEY: MARK_VALUE + " encode"})
        print(f"saved     {args.save}")
    return 0


def cmd_stats(args) -> int:
    from .corpus import read_prompt_lines
    from .diagnostics import format_metrics, prompt_metrics
    from .safe_io import MARK_KEY, MARK_VALUE, check_output, write_text_atomic

    if args.json:
        args.json = check_output(args.json, "metrics JSON file", inputs=_inputs(args), ours=_is_our_json)
    stage = _stage(args)
    prompts = [line for line in read_prompt_lines(args.prompts) if line.strip()]
    if not prompts:
        print(f"error: {args.prompts} holds no prompts", file=sys.stderr)
        return 2
    enc, path = _encoder(args)
    t0 = time.perf_counter()
    outs = [stage.apply(e) for e in enc.encode_batch([enc.tokenize(p) for p in prompts])]
    secs = time.perf_counter() - t0
    m = prompt_metrics(outs)
    m["synthetic"] = args.weights is None
    print(f"weights   {path}{'  (SYNTHETIC)' if args.weights is None else ''}")
    print(f"{len(prompts)} prompts encoded in {secs:.2f} s")
    print(format_metrics(m))
    if args.json:
        m = {MARK_KEY: MARK_VALUE + " stats", **m}
        write_text_atomic(args.json, json.dumps({k: (None if isinstance(v, float) and v != v else v)
                                                 for k, v in m.items()}, indent=2))
    return 0


def cmd_inspect(args) -> int:
    """Header-only look at a weights file: what it is and how the loader reads it (no tensor is loaded)."""
    from collections import Counter

    from .checkpoint import read_header
    from .config import infer_layout

    infos = read_header(args.weights)
    params = sum(math.prod(i.shape) for i in infos.values())
    print(f"file      {args.weights}")
    print(f"tensors   {len(infos)}, {params:,} parameters")
    print("dtypes    " + ", ".join(f"{d} x{n}" for d, n in sorted(Counter(i.dtype for i in infos.values()).items())))
    layout = infer_layout(infos, args.weights)      # raises the specific error for anything else
    c = layout.config
    kinds = Counter(c.layer_types)
    print(f"layout    Qwen3.5 text backbone, prefix {layout.prefix!r}, "
          f"{'projection head at ' + repr(layout.head_prefix + 'norm.*') if c.has_head else 'no head (final norm)'}")
    print(f"sizes     hidden {c.hidden_size}, {c.num_layers} layers ({kinds['linear_attention']} Gated DeltaNet, "
          f"{kinds['full_attention']} gated attention), MLP in {len(c.layers_with_mlp)}, intermediate "
          f"{c.intermediate_size}, vocab rows {c.vocab_size}, output {c.output_size}")
    print(f"heads     attention {c.num_attention_heads}/{c.num_key_value_heads} x {c.head_dim}; DeltaNet "
          f"{c.linear_num_key_heads} key / {c.linear_num_value_heads} value x {c.linear_value_head_dim}")
    print("check     every expected tensor present with the expected shape and a float dtype: OK")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", help="qwen35_4b.safetensors (default: a small synthetic checkpoint)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--kernel", default="auto", choices=["auto", "chunk", "recurrent", "fla"],
                   help="delta-rule kernel (auto: fla on CUDA for bf16/fp16 if fla-core >= 0.5.0 is installed, "
                        "else chunked torch)")
    p.add_argument("--alignment", help="rotation_matrix.safetensors")
    p.add_argument("--strength", type=float, default=1.0, help="alignment strength a in [0, 1]")
    p.add_argument("--calibration", help="calibration_params.safetensors")
    p.add_argument("--scale", type=float, default=1.0, help="uniform output scale")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib_qwen35", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("encode", help="encode one prompt and print token count and diagnostics")
    p.add_argument("prompt")
    _common(p)
    p.add_argument("--save", help="write the embeddings to this .safetensors file")
    p.set_defaults(func=cmd_encode)
    p = sub.add_parser("stats", help="diagnostics over a file of prompts (one per line)")
    p.add_argument("--prompts", required=True)
    p.add_argument("--json", help="also write the metrics as JSON")
    _common(p)
    p.set_defaults(func=cmd_stats)
    p = sub.add_parser("inspect", help="describe a weights file from its header (nothing is loaded)")
    p.add_argument("weights")
    p.set_defaults(func=cmd_inspect)
    for name, module in EXTERNAL_COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        p = sub.add_parser(name, help=(mod.__doc__ or name).strip().splitlines()[0])
        mod.add_arguments(p)
        p.set_defaults(func=mod.main)
    return parser


def main(argv=None) -> int:
    from .errors import Qwen35Error

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (Qwen35Error, ValueError, OSError) as e:   # bad input: a message, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
