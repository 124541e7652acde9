"""Test doubles that are not Forge modules: the tokenizers Forge hands the Anima engine, a small stand-in
for the stock Qwen3-0.6B text encoder with its LLM adapter, a scripted encoder for error paths, and the Anima
engine of a future Forge that no adapter knows.

The Qwen3 tokenizer is the real one (the project's bundled Qwen3 tokenizer, behind the call signature
of the transformers tokenizer Forge uses); the T5 one is a word-level stand-in (we never read T5 ids).
"""

from __future__ import annotations

import re
import zlib

import torch


class Qwen3TokenizerHF:
    """`tok(texts, truncation=False, add_special_tokens=False)["input_ids"]` and `.decode(ids, ...)`,
    like transformers' Qwen2Tokenizer (no BOS/EOS added; byte-level BPE)."""

    def __init__(self):
        from lib_qwen35.files.tokenizer import load_qwen3_tokenizer

        self._tok = load_qwen3_tokenizer()

    def __call__(self, texts, truncation=False, add_special_tokens=True):  # Qwen adds no special tokens either way
        if isinstance(texts, str):
            return {"input_ids": self._tok.encode(texts)}
        return {"input_ids": [self._tok.encode(t) for t in texts]}

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=False):
        return self._tok.decode(list(ids))


class T5TokenizerStandIn:
    """Word-level ids in [3, 32000); the end id 1 appended unless add_special_tokens=False, like T5TokenizerFast."""

    def __call__(self, texts, truncation=False, add_special_tokens=True):
        def ids(text):
            return [3 + zlib.crc32(w.encode()) % 31997 for w in re.findall(r"\w+|[^\w\s]", text)] + ([1] if add_special_tokens else [])

        return {"input_ids": ids(texts) if isinstance(texts, str) else [ids(t) for t in texts]}


class _HashedEmbedding(torch.nn.Module):
    """Qwen3 ids -> [.., 1024] through a small table (id mod rows), like nn.Embedding's interface."""

    def __init__(self, rows=4096, dim=1024, dtype=torch.float32, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn(rows, dim, generator=g).to(dtype), requires_grad=False)

    def forward(self, ids):
        return torch.nn.functional.embedding(ids % self.weight.shape[0], self.weight)


class StubQwen3TextEncoder(torch.nn.Module):
    """Stands in for backend.nn.llm.llama.Qwen3_06B: num_layers, get_input_embeddings(), forward(input_ids,
    attention_mask, embeds=..., num_tokens=..., intermediate_output=..., final_layer_norm_intermediate=...,
    dtype=..., embeds_info=...) -> (hidden [B, L, 1024] in the embeddings' dtype, None), and
    preprocess_text_embeds(z, t5_ids) -> [B, Lt, 1024] (a one-layer cross-attention "adapter")."""

    num_layers = 28

    def __init__(self, dtype=torch.float32, seed=0):
        super().__init__()
        self.embed = _HashedEmbedding(dtype=dtype, seed=seed)
        self.t5_embed = _HashedEmbedding(rows=1024, dtype=dtype, seed=seed + 1)
        self.calls = 0

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids=None, attention_mask=None, embeds=None, num_tokens=None, intermediate_output=None,
                final_layer_norm_intermediate=True, dtype=None, embeds_info=None):
        self.calls += 1
        x = embeds.to(self.embed.weight.dtype)
        # causal mixing so that the states depend on the context, not only on each token
        steps = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype).view(1, -1, 1)
        return torch.tanh(torch.cumsum(x, dim=1) / steps), None

    def preprocess_text_embeds(self, text_embeds, text_ids):
        q = self.t5_embed(text_ids.long()).to(text_embeds.dtype)  # [B, Lt, 1024]
        attn = torch.softmax(q @ text_embeds.transpose(1, 2) / 32.0, dim=-1)  # [B, Lt, Lq]
        return q + attn @ text_embeds


class ScriptedEncoder:
    """Implements the Encoder contract (tokenize, encode_ids, to, device, dtype, identity, stats) with
    deterministic outputs, and can be told to fail: fail_with = an exception to raise from encode_ids."""

    def __init__(self, path="scripted.safetensors", dtype=torch.float32, fail_with=None, output=None):
        self.path, self.dtype, self.device = path, dtype, torch.device("cpu")
        self.identity = f"{path}|scripted"
        self.fail_with, self.output = fail_with, output
        self.stats = {"backbone_runs": 0, "cache_hits": 0}
        self.moves = []
        self.seen_texts = []

    def to(self, device):
        self.moves.append(str(torch.device(device)))
        self.device = torch.device(device)
        return self

    def tokenize(self, text):
        self.seen_texts.append(text)
        return [248044] if not text else [ord(c) % 248044 for c in text]

    def encode_ids(self, ids):
        if self.fail_with is not None:
            raise self.fail_with
        self.stats["backbone_runs"] += 1
        if self.output is not None:
            return self.output(len(ids))
        g = torch.Generator().manual_seed(sum(ids) % 100003)
        return torch.randn(len(ids), 1024, generator=g)


class UnknownAnimaEngine:
    """An Anima engine of a future Forge: T5 tokenizer and LLM adapter, but neither known seam."""

    def __init__(self, text_encoder, t5_tokenizer):
        self.text_encoder, self.t5_tokenizer = text_encoder, t5_tokenizer

    def __call__(self, texts):
        return [torch.zeros(1, 512, 1024) for _ in texts]


def unknown_anima(world, attribute="text_processing_engine_qwen"):
    from backend.diffusion_engine.anima import Anima

    model = world.new_anima("anima_future")
    delattr(model, model.engine_attr)
    model.engine_attr = attribute
    setattr(model, attribute, UnknownAnimaEngine(world.text_encoder, world.t5_tokenizer))
    assert isinstance(model, Anima)
    return model
