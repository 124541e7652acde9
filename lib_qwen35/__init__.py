"""Qwen3.5-4B text encoder for Anima 2B: exact backbone, projection head, output stage, caches.

Public API:
    load_encoder(path, device="cpu", dtype=None) -> Encoder   (.tokenize, .encode_ids, .encode_batch, .encode)
    Alignment, Calibration, OutputStage                      (output_stage.py)
    synthetic.write_checkpoint(path, ...)                    (scaled-down checkpoints in the real layout)
"""

from .encoder import Encoder, load_encoder
from .errors import NonFiniteOutputError, OutputStageFileError, PromptError, Qwen35Error, WeightsFileError
from .output_stage import Alignment, Calibration, OutputStage

__all__ = ["Encoder", "load_encoder", "Alignment", "Calibration", "OutputStage", "Qwen35Error",
           "WeightsFileError", "OutputStageFileError", "PromptError", "NonFiniteOutputError"]
__version__ = "0.1.0"
