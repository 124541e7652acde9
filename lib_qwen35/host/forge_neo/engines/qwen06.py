"""Forge Neo after neo-2.26 (upstream 21886f41 "Rewrite TextProcessingEngine", a port of ComfyUI's
sd1_clip in backend/text_processing/_comfy.py): `Qwen06Engine` on `sd_model.text_processing_engine_anima`
up to 2.29.1, on `sd_model.text_processing_engine_qwen` from 2.29.2 (an attribute that Flux2/Klein, Krea2,
Qwen-Image and Z-Image engines share; only Anima's has a T5 tokenizer and the LLM adapter).

    engine.qwen_tokenizer.tokenize_with_weights(line, disable_weights=...)  SDTokenizer: "(x)" / "(x:w)" parsed,
                                                        "[x]" and BREAK kept as text; [(151643, 1.0)] if empty
    engine.text_encoder.encode_token_weights([[(id, 1.0), ...]])         <- the seam (SDClipModel)
        -> (z [1, T, 1024] float32 on memory_management.intermediate_device(), None, {"attention_mask": int64 [1, T]})
    engine.text_encoder.transformer.preprocess_text_embeds(z, t5_ids)    LLM adapter, T5 weights, pad to 512

The engine keeps a per-line cache only inside one `__call__` (one prompt list), so it cannot outlive a
change of our settings, which happen between generations.
"""

from __future__ import annotations

import torch

from .. import memory
from ..text_recovery import recover_text
from .base import EngineGeneration, method_params


class Qwen06Engine(EngineGeneration):
    name = "qwen06"
    engine_class = "Qwen06Engine"
    versions = "Forge Neo from upstream 21886f41 (after neo-2.26) to 2.30"
    seam_name = "encode_token_weights"

    def matches(self, engine) -> bool:
        text_encoder = getattr(engine, "text_encoder", None)
        tokenizer = getattr(engine, "qwen_tokenizer", None)
        return (method_params(type(text_encoder), "encode_token_weights") == ["token_weight_pairs"]
                and callable(getattr(tokenizer, "tokenize_with_weights", None))
                and callable(getattr(getattr(tokenizer, "tokenizer", None), "decode", None)))

    def seam_owner(self, engine):
        return engine.text_encoder

    def replace(self, engine, encode, token_weight_pairs):
        # Anima passes one section (no length limit); several would be concatenated along the tokens, as stock
        sections = [[pair[0] for pair in section] for section in token_weight_pairs] or [[]]
        texts = [recover_text(ids, self.qwen3_tokenizer(engine)) for ids in sections]
        states = encode(texts)                                                   # [T_i, 1024] each
        device = memory.intermediate_device()
        z = torch.cat(states, dim=0).unsqueeze(0).to(device=device, dtype=torch.float32)   # [1, sum T_i, 1024]
        if not getattr(engine.text_encoder, "return_attention_masks", False):
            return z, None
        # stock masks an empty prompt's pad token: mirror that (Anima's engine reads only z)
        mask = torch.cat([torch.full((s.shape[0],), int(bool(text)), dtype=torch.long)
                          for s, text in zip(states, texts)])
        return z, None, {"attention_mask": mask.unsqueeze(0).to(device)}

    def qwen3_tokenizer(self, engine):
        return engine.qwen_tokenizer.tokenizer

    def prompt_text(self, engine, prompt: str) -> str:
        try:
            # as Qwen06Engine.__call__: emphasis "None" keeps "(x)" as text
            no_weights = engine.emphasis.name == "None"
        except Exception:  # noqa: BLE001 - an engine without that field: weights as usual
            no_weights = False
        sections = engine.qwen_tokenizer.tokenize_with_weights(prompt, disable_weights=no_weights)
        return recover_text([pair[0] for section in sections for pair in section], self.qwen3_tokenizer(engine))

    def stock_states(self, engine, batch_ids):
        text_encoder = engine.text_encoder
        pairs = [[(int(i), 1.0) for i in ids] for ids in batch_ids]
        z = type(text_encoder).encode_token_weights(text_encoder, pairs)[0]     # [1, B * L, 1024]
        return z.view(len(batch_ids), -1, z.shape[-1])

    def output_format(self, engine):
        return memory.intermediate_device(), torch.float32
