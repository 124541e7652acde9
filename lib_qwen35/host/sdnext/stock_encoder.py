"""SD.Next's already-loaded stock Qwen3-0.6B encoder, behind the interface the alignment fit expects.

`lib_qwen35.fit.run_fit` / `compare_with_stock` take any object with
    tokenize(text) -> Qwen3 ids            (the pipeline's own tokenizer, as `_encode_prompt` calls it;
                                            an empty prompt -> [151643], the pad id)
    encode_batch(list of ids) -> list of [T_i, 1024] float32   (text_encoder(...).last_hidden_state)
    identity (str: the key of the resumable disk cache), device, dtype, path, short_hash (metadata).

The states come from calling the pipeline's `text_encoder` directly: our patch sits on `_encode_prompt`,
never on the text encoder, so this is always the stock 0.6B. Under an offload mode the text encoder's
own hooks move it to SD.Next's device for the call, as in a generation.

Batching: prompts are right-padded with the pad id and masked; the model is causal, so the valid positions
are the same as for each prompt alone.
"""

from __future__ import annotations

import hashlib
import os

import torch

from .. import a1111
from ..stock_identity import file_key, short_hash_or_none, weights_fingerprint

QWEN3_PAD_ID = 151643
MAX_LENGTH = 512   # `_encode_prompt`'s max_sequence_length


class SDNextStockEncoder:
    def __init__(self, pipe, *, identity: str, path: str | None = None, short_hash: str | None = None, still_loaded=None):
        self.pipe = pipe
        self.identity = identity
        self.path = path
        self.short_hash = short_hash
        self._still_loaded = still_loaded
        self.device = _execution_device(pipe)
        self.dtype = getattr(pipe.text_encoder, "dtype", torch.float32)
        self.stats = {"backbone_runs": 0}

    @property
    def pad_id(self) -> int:
        pad = getattr(self.pipe.tokenizer, "pad_token_id", None)
        return int(pad) if isinstance(pad, int) else QWEN3_PAD_ID

    def tokenize(self, text: str) -> list[int]:
        ids = self.pipe.tokenizer([text], truncation=True, max_length=MAX_LENGTH)["input_ids"][0]
        return [int(i) for i in ids] or [self.pad_id]

    def generation_text(self, prompt: str) -> str:
        """SD.Next hands `_encode_prompt` the prompt as typed (after styles and <lora:...> tags): no parsing."""
        return prompt

    def encode_batch(self, batch) -> list[torch.Tensor]:
        batch = [[int(i) for i in ids] or [self.pad_id] for ids in batch]
        if not batch:
            return []
        if self._still_loaded is not None and not self._still_loaded():
            from lib_qwen35.errors import Qwen35Error

            raise Qwen35Error("the loaded Anima model changed while the stock encoder was in use; "
                              "start again (finished chunks are reused).")
        length = max(len(ids) for ids in batch)
        ids = torch.tensor([row + [self.pad_id] * (length - len(row)) for row in batch], dtype=torch.long)   # [B, L]
        mask = torch.tensor([[1] * len(row) + [0] * (length - len(row)) for row in batch], dtype=torch.long)
        device = _execution_device(self.pipe)
        with a1111.generation_lock(), torch.inference_mode():
            z = self.pipe.text_encoder(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        self.stats["backbone_runs"] += 1
        # clone outside inference mode: plain tensors the caller may use freely
        return [z[row, : len(ids_)].float().cpu().clone() for row, ids_ in enumerate(batch)]

    def encode_ids(self, ids) -> torch.Tensor:
        return self.encode_batch([ids])[0]


def from_sd_model(sd_model, webui) -> SDNextStockEncoder | None:
    """The wrapper for the loaded pipeline's stock encoder, or None when it is not Anima.
    Raises (with the fix) for an Anima pipeline whose seam we do not know."""
    from . import pipeline_seam

    located = pipeline_seam.locate(sd_model)
    if located.kind == "unsupported":
        raise webui.unsupported(located)
    if not located.is_anima:
        return None
    text_encoder = sd_model.text_encoder
    fingerprint = weights_fingerprint(text_encoder)
    files = [f for f in _model_files(sd_model)]
    identity = "sdnext-stock-qwen3|" + hashlib.sha256(f"{'|'.join(file_key(f) for f in files)}|{fingerprint}".encode()).hexdigest()[:24]
    path = _text_encoder_file(files)
    short = (short_hash_or_none(path) if path else None) or fingerprint[:10]

    def still_loaded():
        return getattr(a1111.sd_model(), "text_encoder", None) is text_encoder

    return SDNextStockEncoder(sd_model, identity=identity, path=path, short_hash=short, still_loaded=still_loaded)


def _execution_device(pipe) -> torch.device:
    try:
        return torch.device(pipe._execution_device)   # diffusers: where offloaded components compute
    except Exception:
        return torch.device("cpu")


def _model_files(sd_model) -> list[str]:
    """The checkpoint (a diffusers folder or a file) SD.Next loaded the pipeline from."""
    info = getattr(sd_model, "sd_checkpoint_info", None)
    filename = getattr(info, "filename", None) or getattr(info, "path", None)
    return [str(filename)] if filename else []


def _text_encoder_file(files: list[str]) -> str | None:
    """A diffusers folder keeps the text encoder in text_encoder/model.safetensors."""
    for f in files:
        candidate = os.path.join(f, "text_encoder", "model.safetensors") if os.path.isdir(f) else f
        if os.path.isfile(candidate):
            return candidate
    return None
