"""Forge Neo up to neo-2.26: `AnimaTextProcessingEngine` (backend/text_processing/anima_engine.py) on
`sd_model.text_processing_engine_anima`.

    engine.tokenize_line(line) -> [PromptChunk]        emphasis parsed; Qwen ids of every segment, pad 151643 if none
    engine.process_tokens([qwen_ids], [multipliers])   -> z [1, T, 1024]    <- the seam
    engine.anima_preprocess(z[0], t5_ids, t5_weights)  LLM adapter, T5 weights, pad to 512

The stock seam returns the TE's embedding dtype on `memory_management.text_encoder_device()`.
"""

from __future__ import annotations

import torch

from .. import memory
from ..text_recovery import QWEN3_PAD_ID, recover_text
from .base import EngineGeneration, method_params


class LegacyEngine(EngineGeneration):
    name = "legacy"
    engine_class = "AnimaTextProcessingEngine"
    versions = "Forge Neo neo-2.26 and earlier"
    seam_name = "process_tokens"

    def matches(self, engine) -> bool:
        return (method_params(type(engine), "process_tokens") == ["batch_tokens", "batch_multipliers"]
                and callable(getattr(engine, "tokenize_line", None))
                and callable(getattr(getattr(engine, "qwen_tokenizer", None), "decode", None)))

    def seam_owner(self, engine):
        return engine

    def replace(self, engine, encode, batch_tokens, batch_multipliers):
        texts = [recover_text(tokens, engine.qwen_tokenizer) for tokens in batch_tokens]
        device, dtype = self.output_format(engine)
        return pad_stack(encode(texts)).to(device=device, dtype=dtype)  # [B, L, 1024]

    def qwen3_tokenizer(self, engine):
        return engine.qwen_tokenizer

    def prompt_text(self, engine, prompt: str) -> str:
        ids = [t for chunk in engine.tokenize_line(prompt) for t in chunk.qwen_tokens]
        return recover_text(ids, engine.qwen_tokenizer)

    def stock_states(self, engine, batch_ids):
        multipliers = [[1.0] * len(ids) for ids in batch_ids]
        return type(engine).process_tokens(engine, batch_ids, multipliers)

    def output_format(self, engine):
        """Those of the TE's token embeddings, which the stock `process_embeds` looks up on
        `memory_management.text_encoder_device()` (probed with one pad id)."""
        device = memory.text_encoder_device()
        embeddings = None
        try:
            embeddings = engine.text_encoder.get_input_embeddings()
            probe = embeddings(torch.tensor([[QWEN3_PAD_ID]], device=device, dtype=torch.long))
            return probe.device, probe.dtype
        except Exception:  # noqa: BLE001 - no probe: the format comes from the weights or Forge
            weight = getattr(embeddings, "weight", None)
            if isinstance(weight, torch.Tensor) and weight.dtype in (torch.float16, torch.bfloat16, torch.float32):
                return device, weight.dtype
            dtype = memory.text_encoder_dtype(torch.float32)
            return device, dtype if dtype in (torch.float16, torch.bfloat16, torch.float32) else torch.float16


def pad_stack(rows: list[torch.Tensor]) -> torch.Tensor:
    """[T_i, D] -> [B, max T, D], zero-padded on the right (Forge passes one prompt at a time)."""
    length = max(r.shape[0] for r in rows)
    out = rows[0].new_zeros((len(rows), length, rows[0].shape[-1]))
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = r
    return out
