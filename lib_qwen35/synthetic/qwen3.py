"""Scaled-down Qwen3 checkpoints in the ComfyUI/Forge `qwen_3_06b_base.safetensors` layout (tests, demos).

Keys `model.embed_tokens.weight`, `model.layers.{i}.…`, `model.norm.weight`, BF16 by default, exactly as
the real file; only the sizes are small. Norm weights are random around 1 (not all ones) so a test would
notice a zero-centred (1 + w) reading of Qwen3's plain-weight RMSNorm.
"""

from __future__ import annotations

import os

import torch

from ..files.tokenizer import QWEN3_ENDOFTEXT_ID
from ..model.qwen3 import Qwen3Config, expected_shapes
from .qwen35 import save_synthetic

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def write_checkpoint(path, *, seed: int = 0, prefix: str = "model.", dtype: str = "bf16",
                     vocab_size: int = 512, hidden_size: int = 64, intermediate_size: int = 128,
                     num_layers: int = 2, num_attention_heads: int = 4, num_key_value_heads: int = 2,
                     head_dim: int = 16, with_lm_head: bool = False) -> str:
    """Write a random Qwen3 checkpoint; returns `path`. Weight scale ~1/sqrt(fan_in) keeps activations sane."""
    cfg = Qwen3Config(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
                      num_layers=num_layers, num_attention_heads=num_attention_heads,
                      num_key_value_heads=num_key_value_heads, head_dim=head_dim)
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, shape in expected_shapes(cfg).items():
        if len(shape) == 1:      # RMSNorm weight: plain scale near 1
            t = 1.0 + 0.2 * torch.randn(shape, generator=gen)
        elif name == "embed_tokens.weight":
            t = torch.randn(shape, generator=gen)
        else:
            t = torch.randn(shape, generator=gen) / shape[1] ** 0.5
        tensors[prefix + name] = t.to(_DTYPES[dtype]).contiguous()
    if with_lm_head:             # some exports carry it; the encoder must ignore it
        tensors["lm_head.weight"] = tensors[prefix + "embed_tokens.weight"].clone()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return save_synthetic(tensors, path, {"format": "pt", "model": "qwen3", "seed": str(seed)})


class SmallVocabTokenizer:
    """Wraps a real tokenizer and folds ids into a small synthetic vocabulary (id % vocab_size).

    Lets a synthetic checkpoint with a tiny embedding table be driven by real prompts (demos and tests
    only; a real checkpoint never needs it).
    """

    def __init__(self, tokenizer, vocab_size: int):
        self.tokenizer, self.vocab_size = tokenizer, int(vocab_size)
        self.endoftext_id = QWEN3_ENDOFTEXT_ID % self.vocab_size   # Qwen3's <|endoftext|>, folded

    def encode(self, text: str) -> list[int]:
        return [i % self.vocab_size for i in self.tokenizer.encode(text)]
