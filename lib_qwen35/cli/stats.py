"""`stats`: every prompt of a prompt file through the encoder and the output stage; prints the embedding metrics
over them, and can write them as JSON.

torch and the model are imported when the command runs: the parser imports this module and must work in a
Python without them (the command then names the Python to use).
"""

from __future__ import annotations

import json
import time

from ..alignment.corpus import read_prompt_file
from ..errors import Qwen35Error
from ..files.safe_io import MARK_KEY, MARK_VALUE, check_output, read_text, write_text_atomic
from .encode_options import add_emphasis_argument, add_encoder_arguments, input_files, open_encoder, output_stage
from .prompt_syntax import prompt_text


def _is_our_json(path) -> bool:
    data = json.loads(read_text(path, "JSON file", 64 << 20, Qwen35Error))
    return isinstance(data, dict) and str(data.get(MARK_KEY, "")).startswith(MARK_VALUE)


def add_arguments(p) -> None:
    p.add_argument("--prompts", required=True, metavar="FILE", help="a prompt file: .txt or .jsonl (rules below)")
    p.add_argument("--json", metavar="FILE", help="also write the metrics to this JSON file (default: none)")
    add_emphasis_argument(p)
    add_encoder_arguments(p)


def main(args) -> int:
    from .metrics import format_metrics, prompt_metrics

    if args.json:
        args.json = check_output(args.json, "metrics JSON file", inputs=input_files(args), ours=_is_our_json)
    stage = output_stage(args)
    prompts = [prompt_text(p.text, args.emphasis) for p in read_prompt_file(args.prompts)]
    enc, path = open_encoder(args)
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
