"""The synthetic demo checkpoint that encode and stats use when no --weights is given (real layout and dtypes,
random weights, tiny sizes), and the note every such output carries.

The model and torch are imported inside the functions: the parser imports this module (a command's inputs name
the demo file) and must work in a Python without torch.
"""

from __future__ import annotations

import os
import tempfile

SYNTHETIC_NOTE = ("NOTE: no --weights given: using a small SYNTHETIC checkpoint with random weights "
                  "(real layout, tiny sizes). The numbers below are synthetic, not Qwen3.5-4B's.")


def synthetic_path() -> str:
    return os.path.join(tempfile.gettempdir(), "lib_qwen35_demo", "qwen35_synthetic_seed0.safetensors")


def synthetic_weights_path() -> str:
    from ..synthetic import qwen35 as synthetic

    path = synthetic_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        from ..errors import Qwen35Error
        from ..files.checkpoint import read_header
        from ..model.config import infer_layout

        try:
            infer_layout(read_header(path), path)
        except Qwen35Error:          # damaged (e.g. an interrupted write elsewhere): make it again
            os.remove(path)
    if not os.path.exists(path):
        synthetic.write_checkpoint(path, seed=0)     # atomic: a concurrent run never sees half a file
    return path
