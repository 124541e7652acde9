"""What every WebUI's wrapper of its loaded stock Qwen3-0.6B shares: the interface the alignment fit expects.

`lib_qwen35.alignment.run.run_fit` / `compare.compare_with_stock` take any object with
    tokenize(text) -> Qwen3 ids            (the WebUI's own tokenizer; an empty prompt -> [pad id])
    encode_batch(list of ids) -> list of [T_i, 1024] float32   (hidden states after the final norm)
    identity (str: the key of the resumable disk cache), device, dtype, path, short_hash (metadata).

A WebUI package subclasses StockEncoder with `_tokenizer_ids(text)` and `_states(padded)` (forge_neo/,
sdnext/ stock_encoder.py), and its WebUIHost.stock_encoder is `of_loaded_model` with its `wrapper`.
Batching: prompts are right-padded with the pad id; the model is causal and the
padding comes after every valid position, so the valid positions are the same as for each prompt alone.
"""

from __future__ import annotations

import torch

from lib_qwen35.errors import Qwen35Error
from lib_qwen35.files.tokenizer import QWEN3_ENDOFTEXT_ID as QWEN3_PAD_ID  # Qwen3 pads with <|endoftext|>

from . import a1111


def of_loaded_model(webui, sd_model, wrapper):
    """`wrapper(sd_model, located)`: the WebUI's StockEncoder for an Anima model whose seam its package knows;
    None for another model. An Anima model with an unknown seam raises `webui.unsupported`: a fit against
    some other encoder would go wrong without a word."""
    located = webui.locate(sd_model)
    if located.kind == "unsupported":
        raise webui.unsupported(located)
    return wrapper(sd_model, located) if located.is_anima else None


class StockEncoder:
    def __init__(self, *, identity: str, path: str | None = None, short_hash: str | None = None, still_loaded=None):
        self.identity = identity
        self.path = path
        self.short_hash = short_hash
        self._still_loaded = still_loaded  # () -> bool: is this encoder still the loaded model's?

    @property
    def pad_id(self) -> int:
        return QWEN3_PAD_ID

    def tokenize(self, text: str) -> list[int]:
        return [int(i) for i in self._tokenizer_ids(text)] or [self.pad_id]

    def encode_batch(self, batch) -> list[torch.Tensor]:
        batch = [[int(i) for i in ids] or [self.pad_id] for ids in batch]
        if not batch:
            return []
        if self._still_loaded is not None and not self._still_loaded():
            raise Qwen35Error("the loaded Anima model changed while the stock encoder was in use; "
                              "start again (finished chunks are reused).")
        length = max(len(ids) for ids in batch)
        padded = [ids + [self.pad_id] * (length - len(ids)) for ids in batch]   # [B, L]
        with a1111.generation_lock(), torch.inference_mode():
            z = self._states(padded, [len(ids) for ids in batch])   # [B, L, 1024]
        # clone outside inference mode: plain tensors the caller may use freely
        return [z[row, : len(ids)].float().clone() for row, ids in enumerate(batch)]

    # ---- what each WebUI provides -------------------------------------------------------------------

    def _tokenizer_ids(self, text: str) -> list[int]:
        """The ids the WebUI's tokenizer gives `text` (no special tokens added)."""
        raise NotImplementedError

    def _states(self, padded: list[list[int]], lengths: list[int]) -> torch.Tensor:
        """[B, L, 1024] stock hidden states of the right-padded ids (`lengths`: the valid ids of each
        row), through the stock seam, never our patch. Runs under the generation lock and inference mode."""
        raise NotImplementedError
