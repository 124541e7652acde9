"""`inspect`: what a weights file is and how the loader reads it, from its header alone (no tensor is loaded). An
alignment or calibration file is described by inspect_fit.py instead.

The model's modules (torch) are imported when the command runs: the parser imports this module and must work in
a Python without torch (the command then names the Python to use).
"""

from __future__ import annotations

import math
from collections import Counter

from ..errors import InvalidArgumentError, WeightsFileError
from . import inspect_fit

REAL_FILE = "426 tensors, 4,138,640,384 parameters"     # qwen35_4b.safetensors, as inspect counts it


def add_arguments(p) -> None:
    p.add_argument("file", metavar="FILE", help="the file to describe: a weights file, e.g. "
                   "models/qwen35/qwen35_4b.safetensors, or an alignment or calibration file")
    p.add_argument("--weights", metavar="FILE", help="with an alignment or calibration FILE: the Qwen3.5-4B encoder to "
                   "check it against, e.g. models/qwen35/qwen35_4b.safetensors (exit 1 if it was not fitted on it; "
                   "default: not checked, the file's own record is shown)")
    p.add_argument("--alignment", metavar="FILE", help="with a calibration FILE: the alignment file it is used with "
                   "(exit 1 if the calibration belongs to another fit; default: not checked)")


def main(args) -> int:
    """Header-only look at a weights file: what it is and how the loader reads it (no tensor is loaded)."""
    from ..files.checkpoint import read_header
    from ..model.config import Qwen35Config, infer_layout
    from ..model.output_stage import kind_of

    infos = read_header(args.file)
    kind = kind_of(infos)
    if kind is not None:
        return inspect_fit.main(args, kind)
    if args.weights or args.alignment:
        option = "--weights" if args.weights else "--alignment"
        raise InvalidArgumentError(f"{option} checks an alignment or calibration FILE against the files it is used "
                                   f"with; {args.file} is neither (no 'rotation', no 'scale' and 'bias'). Drop "
                                   f"{option}, or inspect the alignment or calibration file.")
    params = sum(math.prod(i.shape) for i in infos.values())
    print(f"file      {args.file}")
    print(f"tensors   {len(infos)}, {params:,} parameters")
    print("dtypes    " + ", ".join(f"{d} x{n}" for d, n in sorted(Counter(i.dtype for i in infos.values()).items())))
    try:
        layout = infer_layout(infos, args.file)      # raises the specific error for anything else
    except WeightsFileError as not_qwen35:
        return _inspect_qwen3(infos, args.file, not_qwen35)
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
    from ..model.qwen3 import Qwen3Config, validate

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
