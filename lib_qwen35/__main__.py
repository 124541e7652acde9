"""Command line of the Qwen3.5-4B text encoder for Anima: encode, stats, inspect, fit, corpus.

Run it with the WebUI's Python (it has torch). From the WebUI folder:
    venv/bin/python extensions/sd-forge-qwen35-anima/lib_qwen35 inspect models/qwen35/qwen35_4b.safetensors
    .\\venv\\Scripts\\python.exe extensions\\sd-forge-qwen35-anima\\lib_qwen35 inspect models\\qwen35\\qwen35_4b.safetensors
or from the extension folder, `python -m lib_qwen35 ...`. A path that starts with models/ means the WebUI's
models folder from both (webui_paths.py). Without --weights, encode and stats use a small synthetic
checkpoint (real layout, random weights) and every output says so.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import sys
import tempfile
import time

SYNTHETIC_NOTE = ("NOTE: no --weights given: using a small SYNTHETIC checkpoint with random weights "
                  "(real layout, tiny sizes). The numbers below are synthetic, not Qwen3.5-4B's.")
RUNTIME_PACKAGES = ("torch", "safetensors", "tokenizers", "numpy")   # what the WebUI's Python has
WEBUI_PYTHON = ("venv/bin/python (Linux, macOS) or .\\venv\\Scripts\\python.exe (Windows), from the WebUI "
                "folder")
# Subcommands that live in other modules; each exposes add_arguments(parser) and main(args) -> int.
EXTERNAL_COMMANDS = {
    "fit": ("lib_qwen35.cli.fit", "fit the 4B -> 0.6B alignment and calibration files, with a held-out report"),
    "corpus": ("lib_qwen35.cli.corpus", "export the built-in prompt corpus (JSON lines) or its manifest"),
}
# Arguments that name files: a relative models/... path means the WebUI's models folder (webui_paths.py).
PATH_ARGUMENTS = ("weights", "alignment", "calibration", "prompts", "save", "json", "weights_4b", "weights_06b",
                  "out", "cache_dir", "manifest")
REAL_FILE = "426 tensors, 4,138,640,384 parameters"     # qwen35_4b.safetensors, as inspect counts it


class MissingPackage(Exception):
    """A package the command needs is not importable in this Python (the wrong Python, usually)."""

    def __init__(self, command: str, package: str):
        super().__init__(
            f"the {command} command needs the Python package {package!r}, which this Python does not have "
            f"({sys.executable}, Python {platform.python_version()}). Run it with your WebUI's Python, which "
            f"has it: {WEBUI_PYTHON}. Never install packages into the WebUI's Python for this (developers: "
            f"docs/development.md).")


def missing_runtime_package(error: ModuleNotFoundError) -> str | None:
    """The runtime package (RUNTIME_PACKAGES) whose absence raised `error`, or None for any other module."""
    package = (error.name or "").split(".")[0]
    return package if package in RUNTIME_PACKAGES else None


def _synthetic_path() -> str:
    return os.path.join(tempfile.gettempdir(), "lib_qwen35_demo", "qwen35_synthetic_seed0.safetensors")


def synthetic_weights_path() -> str:
    from .synthetic import qwen35 as synthetic

    path = _synthetic_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        from .errors import Qwen35Error
        from .files.checkpoint import read_header
        from .model.config import infer_layout

        try:
            infer_layout(read_header(path), path)
        except Qwen35Error:          # damaged (e.g. an interrupted write elsewhere): make it again
            os.remove(path)
    if not os.path.exists(path):
        synthetic.write_checkpoint(path, seed=0)     # atomic: a concurrent run never sees half a file
    return path


def _inputs(args) -> list[tuple[str, str]]:
    """(label, path) of every file this command reads: a writer may overwrite none of them."""
    from .errors import Qwen35Error
    from .files.checkpoint import checkpoint_files

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
    from .files.safe_io import MARK_KEY, MARK_VALUE, read_text

    data = json.loads(read_text(path, "JSON file", 64 << 20, Qwen35Error))
    return isinstance(data, dict) and str(data.get(MARK_KEY, "")).startswith(MARK_VALUE)


def _encoder(args):
    from .model.devices import auto_device
    from .model.encoder import load_encoder

    path = args.weights
    if path is None:
        print(SYNTHETIC_NOTE, file=sys.stderr)
        path = synthetic_weights_path()
    return load_encoder(path, device=auto_device(args.device), dtype=args.dtype, kernel=args.kernel), path


def _stage(args):
    from .errors import InvalidArgumentError
    from .model.output_stage import Alignment, Calibration, OutputStage

    stage = OutputStage(alignment=Alignment.load(args.alignment) if args.alignment else None,
                        strength=1.0 if args.strength is None else args.strength,
                        calibration=Calibration.load(args.calibration) if args.calibration else None,
                        output_scale=args.scale)           # checks the values' ranges
    if args.strength is not None and not args.alignment:
        raise InvalidArgumentError("--strength sets the alignment strength, but no --alignment FILE is given, so "
                                   "it would change nothing. Add --alignment FILE (a rotation file made by fit), "
                                   "or leave --strength out.")
    return stage


def _one_prompt(args) -> str:
    from .errors import InvalidArgumentError

    if len(args.prompt) != 1:
        words = " ".join(args.prompt)
        raise InvalidArgumentError(
            f"encode takes one prompt, got {len(args.prompt)} arguments ({', '.join(map(repr, args.prompt[:4]))}). "
            f"Put the prompt in double quotes: encode \"{words}\". To encode several prompts, write them "
            f"one per line in a text file and run: stats --prompts FILE")
    return args.prompt[0]


def cmd_encode(args) -> int:
    from .cli.metrics import format_metrics, prompt_metrics
    from .cli.prompt_syntax import prompt_text
    from .files.checkpoint import written_by_us
    from .files.safe_io import MARK_KEY, MARK_VALUE, atomic_output, check_output

    prompt = _one_prompt(args)
    if args.save:      # before any work: an error after a long load would waste it
        args.save = check_output(args.save, "embeddings file", inputs=_inputs(args), ours=written_by_us)
    stage = _stage(args)
    text = prompt_text(prompt, args.emphasis)
    enc, path = _encoder(args)
    ids = enc.tokenize(text)
    t0 = time.perf_counter()
    raw = enc.encode_ids(ids)
    ms = (time.perf_counter() - t0) * 1e3
    out = stage.apply(raw)
    print(f"weights   {path}{'  (SYNTHETIC)' if args.weights is None else ''}")
    print(f"encoder   {enc.config.num_layers} layers, hidden {enc.config.hidden_size}, weights {enc.weights_dtype}, "
          f"compute {str(enc.dtype).replace('torch.', '')} on {enc.device}, kernel {enc.kernel}, "
          f"loaded in {enc.load_seconds:.2f} s")
    if text != prompt:
        print(f"text      {text}   (emphasis syntax removed, --emphasis {args.emphasis})")
    print(f"tokens    {len(ids)}   encode {ms:.1f} ms   output {tuple(out.shape)}")
    print(format_metrics(prompt_metrics([out])))
    if args.save:
        import torch
        from safetensors.torch import save_file

        with atomic_output(args.save) as tmp:
            save_file({"embeddings": out.cpu().contiguous(), "ids": torch.tensor(ids)}, tmp,
                      metadata={"prompt": prompt, "text": text, "weights": os.path.basename(path),
                                "synthetic": str(args.weights is None), MARK_KEY: MARK_VALUE + " encode"})
        print(f"saved     {args.save}")
    return 0


def cmd_stats(args) -> int:
    from .alignment.corpus import read_prompt_file
    from .cli.metrics import format_metrics, prompt_metrics
    from .cli.prompt_syntax import prompt_text
    from .files.safe_io import MARK_KEY, MARK_VALUE, check_output, write_text_atomic

    if args.json:
        args.json = check_output(args.json, "metrics JSON file", inputs=_inputs(args), ours=_is_our_json)
    stage = _stage(args)
    prompts = [prompt_text(p.text, args.emphasis) for p in read_prompt_file(args.prompts)]
    enc, path = _encoder(args)
    t0 = time.perf_counter()
    outs = [stage.apply(e) for e in enc.encode_batch([enc.tokenize(p) for p in prompts])]
    secs = time.perf_counter() - t0
    m = prompt_metrics(outs)
    m["synthetic"] = args.weights is None
    print(f"weights   {path}{'  (SYNTHETIC)' if args.weights is None else ''}")
    print(f"{len(prompts)} prompt{'s' if len(prompts) != 1 else ''} encoded in {secs:.2f} s "
          f"(emphasis syntax: {args.emphasis})")
    print(format_metrics(m))
    if args.json:
        m = {MARK_KEY: MARK_VALUE + " stats", **m}
        write_text_atomic(args.json, json.dumps({k: (None if isinstance(v, float) and v != v else v)
                                                 for k, v in m.items()}, indent=2))
    return 0


def cmd_inspect(args) -> int:
    """Header-only look at a weights file: what it is and how the loader reads it (no tensor is loaded)."""
    from collections import Counter

    from .errors import WeightsFileError
    from .files.checkpoint import read_header
    from .model.config import Qwen35Config, infer_layout

    infos = read_header(args.weights)
    params = sum(math.prod(i.shape) for i in infos.values())
    print(f"file      {args.weights}")
    print(f"tensors   {len(infos)}, {params:,} parameters")
    print("dtypes    " + ", ".join(f"{d} x{n}" for d, n in sorted(Counter(i.dtype for i in infos.values()).items())))
    try:
        layout = infer_layout(infos, args.weights)      # raises the specific error for anything else
    except WeightsFileError as not_qwen35:
        return _inspect_qwen3(infos, args.weights, not_qwen35)
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
    if not c.has_head:
        verdict = (f"a Qwen3.5 backbone without Anima's projection head (output {c.output_size} wide, e.g. the "
                   f"official Qwen/Qwen3.5-4B): not the encoder the extension uses; get qwen35_4b.safetensors")
    elif c == Qwen35Config():
        verdict = f"the Qwen3.5-4B text encoder for Anima, full size ({REAL_FILE} expected): the extension can use it"
    else:
        verdict = ("a scaled-down file in the layout of the Qwen3.5-4B encoder for Anima (a synthetic test "
                   f"checkpoint?); the real qwen35_4b.safetensors has {REAL_FILE}")
    print(f"verdict   {verdict}")
    return 0


def _inspect_qwen3(infos, path, not_qwen35) -> int:
    """A Qwen3 file (the stock Anima encoder is one) is described; anything else is the Qwen3.5 error."""
    from .errors import WeightsFileError
    from .model.qwen3 import Qwen3Config, validate

    try:
        prefix, c = validate(infos, path)
    except WeightsFileError:
        raise not_qwen35 from None       # it says what the file looks like and what is expected
    print(f"layout    Qwen3 text model (attention only, no Gated DeltaNet), prefix {prefix!r}")
    print(f"sizes     hidden {c.hidden_size}, {c.num_layers} layers, intermediate {c.intermediate_size}, "
          f"vocab rows {c.vocab_size}")
    print(f"heads     attention {c.num_attention_heads}/{c.num_key_value_heads} x {c.head_dim}")
    print("check     every expected tensor present with the expected shape and a float dtype: OK")
    what = ("the stock Anima text encoder, Qwen3-0.6B (qwen_3_06b_base.safetensors)" if c == Qwen3Config()
            else "a Qwen3 text model (the stock Anima encoder, Qwen3-0.6B, is one with hidden 1024 and 28 layers)")
    print(f"verdict   {what}; not the Qwen3.5-4B encoder this extension adds. Leave it where the WebUI loads it "
          f"(models/text_encoder); fit reads it as --weights-06b")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", metavar="FILE",
                   help="the Qwen3.5-4B encoder, e.g. models/qwen35/qwen35_4b.safetensors (default: a small "
                        "synthetic checkpoint with random weights, for a demo)")
    p.add_argument("--device", default="auto",
                   help="auto, cpu, cuda or cuda:N (default: %(default)s = cuda when torch sees a GPU, else cpu)")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="compute dtype (default: %(default)s = bf16 on a GPU, fp32 on the CPU); FP8 weights stay FP8")
    p.add_argument("--kernel", default="auto", choices=["auto", "chunk", "recurrent", "fla"],
                   help="delta-rule kernel (default: %(default)s = fla on CUDA for bf16/fp16 if fla-core >= 0.5.0 "
                        "is installed, else chunk; recurrent is the slow reference)")
    p.add_argument("--alignment", metavar="FILE", help="an alignment file {rotation, mean_4b, mean_06b}, made by fit "
                                                      "(default: none)")
    p.add_argument("--strength", type=float, metavar="A",
                   help="alignment strength in [0, 1]; needs --alignment (default: 1.0 with --alignment)")
    p.add_argument("--calibration", metavar="FILE", help="a calibration file {scale, bias}, made by fit (default: none)")
    p.add_argument("--scale", type=float, default=1.0, metavar="S",
                   help="uniform output scale, applied last (default: %(default)s = unchanged)")


def _emphasis(p: argparse.ArgumentParser) -> None:
    from .cli.prompt_syntax import DEFAULT_SYNTAX, SYNTAXES

    p.add_argument("--emphasis", default=DEFAULT_SYNTAX, choices=SYNTAXES,
                   help="how emphasis syntax is removed before encoding, as the WebUI does (default: %(default)s): "
                        "comfy = (x) and (x:1.2) become x, [x] stays (Forge Neo after 2.26); a1111 = also [x] "
                        "(Forge Neo 2.26 and earlier); none = the text as written")


def _missing_package_command(name: str, summary: str, package: str, sub) -> None:
    """A command whose module cannot be imported here: listed, and explains itself when run."""
    p = sub.add_parser(name, help=f"{summary} (needs {package}: run it with the WebUI's Python)", add_help=False)

    def explain(args):
        raise MissingPackage(name, package)

    p.set_defaults(func=explain, any_arguments=True)      # its options are unknown here: main() lets them pass


def build_parser() -> argparse.ArgumentParser:
    from .alignment.corpus import PROMPT_FILE_RULES

    parser = argparse.ArgumentParser(
        prog="python -m lib_qwen35", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The Qwen3.5-4B text encoder for Anima: check a weights file, encode prompts, fit the "
                    "alignment. Run it with the WebUI's Python: " + WEBUI_PYTHON + " (python path/to/lib_qwen35 "
                    "...), or python -m lib_qwen35 ... from the extension folder.",
        epilog="A path that starts with models/ means the WebUI's models folder, from the WebUI folder and from "
               "the extension folder alike. Each command has its own --help.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("encode", help="encode one prompt and print its token count and embedding metrics",
                       description="Encode one prompt (in double quotes) and print the token count and metrics.")
    p.add_argument("prompt", nargs="+", help="the prompt, in double quotes")
    _emphasis(p)
    _common(p)
    p.add_argument("--save", metavar="FILE", help="also write the embeddings to this .safetensors file (default: none)")
    p.set_defaults(func=cmd_encode)
    p = sub.add_parser("stats", help="embedding metrics over a file of prompts",
                       description="Encode every prompt of a prompt file and print the metrics over them.",
                       epilog=PROMPT_FILE_RULES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", required=True, metavar="FILE", help="a prompt file: .txt or .jsonl (rules below)")
    p.add_argument("--json", metavar="FILE", help="also write the metrics to this JSON file (default: none)")
    _emphasis(p)
    _common(p)
    p.set_defaults(func=cmd_stats)
    p = sub.add_parser("inspect", help="say what a weights file is, from its header (nothing is loaded)",
                       description="Say what a .safetensors weights file is, from its header (nothing is loaded).")
    p.add_argument("weights", metavar="FILE", help="the file to describe, e.g. models/qwen35/qwen35_4b.safetensors")
    p.set_defaults(func=cmd_inspect)
    for name, (module, summary) in EXTERNAL_COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if missing_runtime_package(e) is None:
                raise
            _missing_package_command(name, summary, missing_runtime_package(e), sub)
            continue
        p = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
        mod.add_arguments(p)
        p.set_defaults(func=mod.main)
    return parser


def _resolve_paths(args) -> None:
    """models/... paths against the WebUI folder (said once on stderr when that is not the current folder)."""
    from .files.webui_paths import starts_with_models, user_path, webui_dir

    told = False
    for name in PATH_ARGUMENTS:
        value = getattr(args, name, None)
        if isinstance(value, str) and value:
            resolved = user_path(value)
            if starts_with_models(value) and not told and webui_dir() not in (None, os.path.abspath(os.getcwd())):
                print(f"note: models/ is the WebUI's models folder, {os.path.join(webui_dir(), 'models')}",
                      file=sys.stderr)
                told = True
            setattr(args, name, resolved)


def main(argv=None) -> int:
    from .errors import Qwen35Error

    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "any_arguments", False):
        parser.parse_args(argv)          # argparse's own message and exit for arguments nobody takes
    try:
        _resolve_paths(args)
        return args.func(args)
    except MissingPackage as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if missing_runtime_package(e) is None:
            raise
        print(f"error: {MissingPackage(args.command, missing_runtime_package(e))}", file=sys.stderr)
        return 2
    except (Qwen35Error, ValueError, OSError) as e:   # bad input: a message, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    if not __package__:
        # `python path/to/lib_qwen35 ...` runs this file outside its package: put the folder above it first on
        # sys.path (instead of the package folder, whose module names would shadow others) and run it from there.
        sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        from lib_qwen35.__main__ import main as package_main

        sys.exit(package_main())
    sys.exit(main())
