"""`encode`: one prompt through the encoder and the output stage; prints the token count and the embedding
metrics, and can save the embeddings.

torch, safetensors and the model are imported when the command runs: the parser imports this module and must
work in a Python without them (the command then names the Python to use).
"""

from __future__ import annotations

import os
import time

from ..errors import InvalidArgumentError
from ..files.safe_io import MARK_KEY, MARK_VALUE, atomic_output, check_output
from .encode_options import add_emphasis_argument, add_encoder_arguments, input_files, open_encoder, output_stage
from .prompt_syntax import prompt_text


def _one_prompt(args) -> str:
    if len(args.prompt) != 1:
        words = " ".join(args.prompt)
        raise InvalidArgumentError(
            f"encode takes one prompt, got {len(args.prompt)} arguments ({', '.join(map(repr, args.prompt[:4]))}). "
            f"Put the prompt in double quotes: encode \"{words}\". To encode several prompts, write them "
            f"one per line in a text file and run: stats --prompts FILE")
    return args.prompt[0]


def add_arguments(p) -> None:
    p.add_argument("prompt", nargs="+", help="the prompt, in double quotes")
    add_emphasis_argument(p)
    add_encoder_arguments(p)
    p.add_argument("--save", metavar="FILE", help="also write the embeddings to this .safetensors file (default: none)")


def main(args) -> int:
    from ..files.checkpoint import written_by_us
    from .metrics import format_metrics, prompt_metrics

    prompt = _one_prompt(args)
    if args.save:      # before any work: an error after a long load would waste it
        args.save = check_output(args.save, "embeddings file", inputs=input_files(args), ours=written_by_us)
    stage = output_stage(args)
    text = prompt_text(prompt, args.emphasis)
    enc, path = open_encoder(args)
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
