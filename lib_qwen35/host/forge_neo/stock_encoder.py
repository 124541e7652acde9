"""Forge's already-loaded stock Qwen3-0.6B encoder, behind the interface the alignment fit expects
(host/stock_encoder.py: the shared part).

The hidden states come from the engine generation's STOCK seam (`AnimaTextProcessingEngine.process_tokens`
or `SDClipModel.encode_token_weights`), called through the class (engines/*.stock_states), never through
the instance: our patch (seam.py) puts the replacement on the instance, and calling that would fit the 4B encoder
against itself. An empty prompt gives [151643], as in Forge.

Batching: Forge's mask marks everything after the first pad as padding, which is where the padding is.
"""

from __future__ import annotations

import os

import torch

from .. import a1111
from ..stock_encoder import QWEN3_PAD_ID, StockEncoder
from ..stock_identity import identify
from . import detection, memory
from .engines import generation_of


class ForgeStockEncoder(StockEncoder):
    """The stock encoder of a loaded Anima model's text engine (any supported engine generation)."""

    def __init__(self, engine, *, identity: str, path: str | None = None, short_hash: str | None = None,
                 prepare=None, still_loaded=None, generation=None):
        super().__init__(identity=identity, path=path, short_hash=short_hash, still_loaded=still_loaded)
        self.engine = engine
        self.generation = generation or generation_of(engine)
        self._prepare = prepare            # () -> None: have Forge load the TE onto its device
        self.device, self.dtype = _output_format(self.generation, engine)

    @property
    def pad_id(self) -> int:
        return int(getattr(self.engine, "id_pad", QWEN3_PAD_ID))

    def _tokenizer_ids(self, text: str) -> list[int]:
        tokenizer = self.generation.qwen3_tokenizer(self.engine)
        return tokenizer([text], truncation=False, add_special_tokens=False)["input_ids"][0]

    def generation_text(self, prompt: str) -> str:
        """The text a generation would hand the 4B encoder for `prompt`: Forge's own tokenization
        (emphasis syntax parsed away), decoded back, as the replacement does."""
        return self.generation.prompt_text(self.engine, prompt)

    def _states(self, padded, lengths) -> torch.Tensor:
        if self._prepare is not None:
            self._prepare()
        return self.generation.stock_states(self.engine, padded)   # [B, L, 1024]; the class method, never our patch


def wrapper(sd_model, located) -> ForgeStockEncoder:
    """The stock encoder of `sd_model`, an Anima model whose engine `located` found (stock_encoder.of_loaded_model)."""
    engine = located.engine
    path = _text_encoder_file(sd_model)
    text_encoder = engine.text_encoder
    identity, short = identify("forge-stock-qwen3|", _model_files(sd_model),
                               # the Qwen3 model, on every generation
                               getattr(text_encoder, "transformer", text_encoder), path)

    def prepare():
        memory.load_model_gpu(_clip_patcher(sd_model))   # what Anima.get_learned_conditioning does first

    def still_loaded():
        return detection.locate(a1111.sd_model()).engine is engine

    return ForgeStockEncoder(engine, identity=identity, path=path, short_hash=short, prepare=prepare,
                             still_loaded=still_loaded, generation=located.generation)


def _output_format(generation, engine) -> tuple[torch.device, torch.dtype]:
    try:
        return generation.output_format(engine)
    except Exception:  # noqa: BLE001 - no known format: float32 on the CPU
        return torch.device("cpu"), torch.float32


def _clip_patcher(sd_model):
    objects = getattr(sd_model, "forge_objects", None)
    clip = getattr(objects, "clip", None) if objects is not None else None
    return getattr(clip, "patcher", None) if clip is not None else None


def _model_files(sd_model) -> list[str]:
    """The checkpoint file and the separately chosen VAE / text-encoder files (Forge's 'VAE / Text Encoder')."""
    files = []
    info = getattr(sd_model, "sd_checkpoint_info", None)
    filename = getattr(info, "filename", None) if info is not None else None
    if filename:
        files.append(str(filename))
    try:
        files += [str(m) for m in (getattr(a1111.opts(), "forge_additional_modules", None) or [])]
    except Exception:  # noqa: BLE001 - no readable options: the checkpoint file alone
        pass
    return files


def _text_encoder_file(sd_model) -> str | None:
    files = _model_files(sd_model)
    for f in files[1:]:
        if "qwen" in os.path.basename(f).lower():
            return f
    return files[0] if files else None
