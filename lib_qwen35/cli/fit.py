"""The `fit` command line: python -m lib_qwen35 fit ... (options, the run with a progress bar on stderr, the report
and what to do next; without weights, the demo between two synthetic checkpoints, demo.py)."""

from __future__ import annotations

import os
import sys

from ..alignment.corpus import load_prompts
from ..alignment.report import report_markdown
from ..alignment.run import check_request, run_fit
from ..errors import Qwen35Error
from ..model import encoder, qwen3
from ..model.devices import auto_device
from . import demo
from .progress import StderrProgress


def add_arguments(parser) -> None:
    parser.add_argument("--weights-4b", metavar="FILE",
                        help="the Qwen3.5-4B encoder, e.g. models/qwen35/qwen35_4b.safetensors (default: none; "
                             "without both weights files, a demo between two tiny random checkpoints)")
    parser.add_argument("--weights-06b", metavar="FILE",
                        help="the stock Qwen3-0.6B encoder, e.g. models/text_encoder/qwen_3_06b_base.safetensors "
                             "(default: none)")
    parser.add_argument("--out", required=True, metavar="FOLDER",
                        help="output folder for the two files and the report, e.g. models/qwen35/my_fit")
    parser.add_argument("--prompts", metavar="FILE",
                        help="your own prompt file, .txt or .jsonl, read like stats --prompts; prompts are "
                             "encoded as written (default: the built-in corpus of 41,277 prompts)")
    parser.add_argument("--limit", type=int, metavar="N", help="use only the first N prompts (default: all)")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N",
                        help="prompts per forward pass; lower it if the GPU runs out of memory (default: %(default)s)")
    parser.add_argument("--device", default="auto",
                        help="auto, cpu, cuda or cuda:N (default: %(default)s = cuda when torch sees a GPU, else cpu)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="compute dtype (default: %(default)s = bf16 on a GPU, fp32 on the CPU)")
    parser.add_argument("--cache-dir", metavar="FOLDER",
                        help="embedding cache, which lets an interrupted fit resume (default: OUT/embedding_cache)")
    parser.add_argument("--holdout", type=float, default=0.1, metavar="F",
                        help="fraction of the prompts held out for the report (default: %(default)s)")
    parser.add_argument("--allow-underdetermined", action="store_true",
                        help="fit even with fewer training prompts than dimensions (1,139 prompts); a preview only")


def next_steps(rotation_path: str, calibration_path: str) -> str:
    """What to do with the fitted files in the WebUI (printed at the end of a fit)."""
    where = os.path.abspath(os.path.dirname(rotation_path))
    in_models = os.sep + os.path.join("models", "qwen35") + os.sep in where + os.sep
    place = ("They are already under models/qwen35/, where the extension looks" if in_models else
             "Copy both files into the WebUI's models/qwen35/ folder (or into a folder of the extension's "
             "\"Extra folders\" setting); rename them if you keep several fits, since the pickers list files by name")
    return (f"Next: {place}. In txt2img, press the refresh button of the Qwen3.5-4B accordion, tick Use alignment and "
            f"pick {os.path.basename(rotation_path)}; for the calibration, tick Use calibration and pick "
            f"{os.path.basename(calibration_path)} (fitted for alignment strength 1.0). Compare with the stock "
            f"encoder in an X/Y/Z plot of [Qwen3.5 TE] Use alignment: Off, On.")


def main(args) -> int:
    device = auto_device(args.device)
    synthetic = not args.weights_4b and not args.weights_06b
    if bool(args.weights_4b) != bool(args.weights_06b):
        print("error: pass both --weights-4b and --weights-06b (or neither, for a synthetic demo).", file=sys.stderr)
        return 2
    try:
        # Everything that can fail without the encoders fails before their (long) load.
        inputs = [(label, path) for label, path in (("4B weights file", args.weights_4b), ("0.6B weights file",
                  args.weights_06b), ("prompt file", args.prompts)) if path]
        check_request(args.out, holdout=args.holdout, batch_size=args.batch_size, limit=args.limit, inputs=inputs)
        prompts, corpus_id = load_prompts(args.prompts, args.limit)
        if synthetic:
            print("DEMO MODE: no weights given, fitting between two tiny RANDOM synthetic checkpoints. The files "
                  "written are NOT usable with real models; pass --weights-4b and --weights-06b for a real fit.",
                  file=sys.stderr)
            e4, e6 = demo.synthetic_encoders(args.out, device, args.dtype)
        else:
            print(f"loading {args.weights_4b} and {args.weights_06b} on {device} ...", file=sys.stderr)
            e4 = encoder.load_encoder(args.weights_4b, device=device, dtype=args.dtype)
            e6 = qwen3.Qwen3Encoder(args.weights_06b, device=device, dtype=args.dtype)
        res = run_fit(e4, e6, args.out, prompts=prompts, corpus_id=corpus_id, prompt_file=args.prompts,
                      batch_size=args.batch_size,
                      holdout=args.holdout, cache_dir=args.cache_dir, progress=StderrProgress(),
                      allow_underdetermined=args.allow_underdetermined, synthetic=synthetic)
    except KeyboardInterrupt:
        print("\ninterrupted; finished embedding chunks are cached, run the same command again to resume.",
              file=sys.stderr)
        return 130
    except Qwen35Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2          # the same exit code as every other command's input errors
    print(report_markdown(res.report))
    print(f"wrote {res.rotation_path}\n      {res.calibration_path}\n      {res.report_json}\n      {res.report_md}")
    if synthetic:
        print("(synthetic demo: random weights; numbers are not meaningful for real models, and the files do "
              "not work with them)")
    else:
        print(next_steps(res.rotation_path, res.calibration_path))
    return 0
