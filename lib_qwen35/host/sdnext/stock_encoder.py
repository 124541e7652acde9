"""SD.Next's already-loaded stock Qwen3-0.6B encoder, behind the interface the alignment fit expects
(host/stock_encoder.py: the shared part).

tokenize: the pipeline's own tokenizer, as `_encode_prompt` calls it; an empty prompt gives the pad id.
The states are text_encoder(...).last_hidden_state from calling the pipeline's `text_encoder` directly: our
patch sits on `_encode_prompt`, never on the text encoder, so this is always the stock 0.6B. Under an
offload mode the text encoder's own hooks move it to SD.Next's device for the call, as in a generation.
The padding is masked.
"""

from __future__ import annotations

import os

import torch

from .. import a1111
from ..stock_encoder import QWEN3_PAD_ID, StockEncoder
from ..stock_identity import identify

MAX_LENGTH = 512   # `_encode_prompt`'s max_sequence_length


class SDNextStockEncoder(StockEncoder):
    def __init__(self, pipe, *, identity: str, path: str | None = None, short_hash: str | None = None,
                 still_loaded=None):
        super().__init__(identity=identity, path=path, short_hash=short_hash, still_loaded=still_loaded)
        self.pipe = pipe
        self.device = _execution_device(pipe)
        self.dtype = getattr(pipe.text_encoder, "dtype", torch.float32)

    @property
    def pad_id(self) -> int:
        pad = getattr(self.pipe.tokenizer, "pad_token_id", None)
        return int(pad) if isinstance(pad, int) else QWEN3_PAD_ID

    def _tokenizer_ids(self, text: str) -> list[int]:
        return self.pipe.tokenizer([text], truncation=True, max_length=MAX_LENGTH)["input_ids"][0]

    def generation_text(self, prompt: str) -> str:
        """SD.Next hands `_encode_prompt` the prompt as typed (after styles and <lora:...> tags): no parsing."""
        return prompt

    def _states(self, padded, lengths) -> torch.Tensor:
        length = len(padded[0])
        ids = torch.tensor(padded, dtype=torch.long)   # [B, L]
        mask = torch.tensor([[1] * n + [0] * (length - n) for n in lengths], dtype=torch.long)
        device = _execution_device(self.pipe)
        states = self.pipe.text_encoder(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        return states.cpu()   # [B, L, 1024]


def wrapper(sd_model, located) -> SDNextStockEncoder:
    """The stock encoder of `sd_model`, an Anima pipeline whose seam `located` found (stock_encoder.of_loaded_model)."""
    text_encoder = sd_model.text_encoder
    files = _model_files(sd_model)
    path = _text_encoder_file(files)
    identity, short = identify("sdnext-stock-qwen3|", files, text_encoder, path)

    def still_loaded():
        return getattr(a1111.sd_model(), "text_encoder", None) is text_encoder

    return SDNextStockEncoder(sd_model, identity=identity, path=path, short_hash=short, still_loaded=still_loaded)


def _execution_device(pipe) -> torch.device:
    try:
        return torch.device(pipe._execution_device)   # diffusers: where offloaded components compute
    except Exception:  # noqa: BLE001 - a pipeline that cannot say is taken to run on the CPU
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
