"""What encode and stats share: the encoder and output-stage options, the emphasis option, opening the encoder
(or the synthetic demo's), the output stage, and the files a run reads (which no output may overwrite).

torch and the model are imported inside the functions that use them: the parser imports this module and must
work in a Python without torch (the command then names the Python to use).
"""

from __future__ import annotations

import argparse
import sys

from ..errors import InvalidArgumentError, Qwen35Error
from .demo import SYNTHETIC_NOTE, synthetic_path, synthetic_weights_path
from .prompt_syntax import DEFAULT_SYNTAX, SYNTAXES


def input_files(args) -> list[tuple[str, str]]:
    """(label, path) of every file this command reads: a writer may overwrite none of them."""
    from ..files.checkpoint import checkpoint_files

    weights = getattr(args, "weights", None)
    out = [("weights file", weights or synthetic_path())]
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


def open_encoder(args):
    from ..model.devices import auto_device
    from ..model.encoder import load_encoder

    path = args.weights
    if path is None:
        print(SYNTHETIC_NOTE, file=sys.stderr)
        path = synthetic_weights_path()
    return load_encoder(path, device=auto_device(args.device), dtype=args.dtype, kernel=args.kernel), path


def output_stage(args):
    from ..model.output_stage import Alignment, Calibration, OutputStage

    stage = OutputStage(alignment=Alignment.load(args.alignment) if args.alignment else None,
                        strength=1.0 if args.strength is None else args.strength,
                        calibration=Calibration.load(args.calibration) if args.calibration else None,
                        output_scale=args.scale)           # checks the values' ranges
    if args.strength is not None and not args.alignment:
        raise InvalidArgumentError("--strength sets the alignment strength, but no --alignment FILE is given, so "
                                   "it would change nothing. Add --alignment FILE (a rotation file made by fit), "
                                   "or leave --strength out.")
    return stage


def add_encoder_arguments(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--calibration", metavar="FILE",
                   help="a calibration file {scale, bias}, made by fit (default: none)")
    p.add_argument("--scale", type=float, default=1.0, metavar="S",
                   help="uniform output scale, applied last (default: %(default)s = unchanged)")


def add_emphasis_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--emphasis", default=DEFAULT_SYNTAX, choices=SYNTAXES,
                   help="how emphasis syntax is removed before encoding, as the WebUI does (default: %(default)s): "
                        "comfy = (x) and (x:1.2) become x, [x] stays (Forge Neo after 2.26); a1111 = also [x] "
                        "(Forge Neo 2.26 and earlier); none = the text as written")
