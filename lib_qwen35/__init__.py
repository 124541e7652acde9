"""Qwen3.5-4B text encoder for Anima 2B: exact backbone, projection head, output stage, caches.

Public API:
    load_encoder(path, device="cpu", dtype=None) -> Encoder   (.tokenize, .encode_ids, .encode_batch, .encode)
    Alignment, Calibration, OutputStage                      (model/output_stage.py)
    synthetic.qwen35.write_checkpoint(path, ...)             (scaled-down checkpoints in the real layout)

The names are imported on first use (PEP 562), so `python -m lib_qwen35 --help` runs, and says what is
missing, in a Python without torch.
"""

import importlib

_PUBLIC = {"Encoder": "model.encoder", "load_encoder": "model.encoder", "Alignment": "model.output_stage",
           "Calibration": "model.output_stage", "OutputStage": "model.output_stage", "Qwen35Error": "errors",
           "WeightsFileError": "errors", "OutputStageFileError": "errors", "PromptError": "errors",
           "NonFiniteOutputError": "errors"}

__all__ = list(_PUBLIC)
__version__ = "0.1.0"


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
