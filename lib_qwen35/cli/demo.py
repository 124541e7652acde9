"""The synthetic demos, for a command run without weights: the checkpoint encode and stats use (real layout and
dtypes, random weights, tiny sizes) and the note every such output carries; fit's pair of tiny 4B-layout and
0.6B-layout checkpoints.

The model and torch are imported inside the functions: the parser imports this module (a command's inputs name
the demo file) and must work in a Python without torch.
"""

from __future__ import annotations

import os
import tempfile

from ..errors import Qwen35Error
from ..files.tokenizer import load_qwen3_tokenizer

# 0.6B-layout demo sizes: hidden must be 1024 (the width Anima's adapter reads); everything else tiny.
SYNTHETIC_06B = dict(vocab_size=4096, hidden_size=1024, intermediate_size=256, num_layers=2,
                     num_attention_heads=8, num_key_value_heads=4, head_dim=64)
SYNTHETIC_NOTE = ("NOTE: no --weights given: using a small SYNTHETIC checkpoint with random weights "
                  "(real layout, tiny sizes). The numbers below are synthetic, not Qwen3.5-4B's.")


def synthetic_path() -> str:
    return os.path.join(tempfile.gettempdir(), "lib_qwen35_demo", "qwen35_synthetic_seed0.safetensors")


def synthetic_weights_path() -> str:
    from ..synthetic import qwen35 as synthetic

    path = synthetic_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        from ..files.checkpoint import read_header
        from ..model.config import infer_layout

        try:
            infer_layout(read_header(path), path)
        except Qwen35Error:          # damaged (e.g. an interrupted write elsewhere): make it again
            os.remove(path)
    if not os.path.exists(path):
        synthetic.write_checkpoint(path, seed=0)     # atomic: a concurrent run never sees half a file
    return path


def synthetic_encoders(out_dir: str, device, dtype):
    """Tiny random 4B-layout and 0.6B-layout checkpoints (both output 1024 dims), for a demo."""
    from ..model.encoder import load_encoder
    from ..model.qwen3 import Qwen3Encoder
    from ..synthetic.qwen3 import SmallVocabTokenizer
    from ..synthetic.qwen3 import write_checkpoint as write_06b
    from ..synthetic.qwen35 import write_checkpoint as write_4b

    folder = os.path.join(out_dir, "synthetic_weights")
    os.makedirs(folder, exist_ok=True)
    p4 = os.path.join(folder, "synthetic_qwen35_4b.safetensors")
    p6 = os.path.join(folder, "synthetic_qwen_3_06b.safetensors")
    if not os.path.exists(p4):
        write_4b(p4, seed=1, num_layers=4)   # one 3 DeltaNet + 1 attention group: enough for a demo
    if not os.path.exists(p6):
        write_06b(p6, seed=2, **SYNTHETIC_06B)
    e4 = load_encoder(p4, device=device, dtype=dtype)
    e6 = Qwen3Encoder(p6, device=device, dtype=dtype,
                      tokenizer=SmallVocabTokenizer(load_qwen3_tokenizer(), SYNTHETIC_06B["vocab_size"]))
    return e4, e6
