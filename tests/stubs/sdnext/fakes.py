"""Test doubles that are not SD.Next modules: what the Anima pipeline holds as `tokenizer`, `t5_tokenizer`
and `text_encoder` (transformers' Qwen2TokenizerFast, T5TokenizerFast and Qwen3Model in SD.Next).

The Qwen3 tokenizer is the real one (the project's bundled Qwen3 tokenizer behind transformers' call
signature: padding to the longest with <|endoftext|> 151643 on the right, truncation, tensors); the T5 one
is a word-level stand-in appending </s> (id 1), padded with 0. The text encoder is small and causal, takes
the attention mask, and returns a ModelOutput-like object with `last_hidden_state` [B, L, 1024].
"""

from __future__ import annotations

import re
import zlib
from collections import OrderedDict

import torch

QWEN3_PAD_ID = 151643


class BatchEncoding(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _batch(rows, pad_id, padding, return_tensors):
    if not padding and return_tensors is None:
        return BatchEncoding(input_ids=rows, attention_mask=[[1] * len(r) for r in rows])
    length = max((len(r) for r in rows), default=0)
    ids = [r + [pad_id] * (length - len(r)) for r in rows]          # right padding (the default side)
    mask = [[1] * len(r) + [0] * (length - len(r)) for r in rows]
    if return_tensors == "pt":
        return BatchEncoding(input_ids=torch.tensor(ids, dtype=torch.long).view(len(rows), length),
                             attention_mask=torch.tensor(mask, dtype=torch.long).view(len(rows), length))
    return BatchEncoding(input_ids=ids, attention_mask=mask)


class Qwen2TokenizerStandIn:
    """`tok(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")`, no BOS/EOS."""

    pad_token_id = QWEN3_PAD_ID

    def __init__(self):
        from lib_qwen35.files.tokenizer import load_qwen3_tokenizer

        self._tok = load_qwen3_tokenizer()
        self.calls = []

    def __call__(self, texts, padding=False, truncation=False, max_length=None, return_tensors=None, add_special_tokens=True):
        texts = [texts] if isinstance(texts, str) else list(texts)
        self.calls.append(list(texts))
        rows = [self._tok.encode(t) for t in texts]
        if truncation and max_length is not None:
            rows = [r[:max_length] for r in rows]
        return _batch(rows, self.pad_token_id, padding, return_tensors)

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=False):
        return self._tok.decode([int(i) for i in ids])


class T5TokenizerStandIn:
    """Word-level ids in [3, 32000) plus </s> (1); padded with <pad> (0), like T5TokenizerFast."""

    pad_token_id = 0

    def __call__(self, texts, padding=False, truncation=False, max_length=None, return_tensors=None, add_special_tokens=True):
        texts = [texts] if isinstance(texts, str) else list(texts)
        rows = [[3 + zlib.crc32(w.encode()) % 31997 for w in re.findall(r"\w+|[^\w\s]", t)] + ([1] if add_special_tokens else []) for t in texts]
        if truncation and max_length is not None:
            rows = [r[:max_length] for r in rows]
        return _batch(rows, self.pad_token_id, padding, return_tensors)


class BaseModelOutputWithPast(OrderedDict):
    """transformers.ModelOutput's behaviour that matters: attribute access, and setting an attribute
    updates the mapping (and the other way round)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def to_tuple(self):
        return tuple(self.values())


class Qwen3ModelStandIn(torch.nn.Module):
    """Stands in for transformers.Qwen3Model (hidden 1024): forward(input_ids, attention_mask) ->
    last_hidden_state [B, L, 1024] in its dtype on its device. Causal (cumulative mean of hashed
    embeddings); masked positions still get states, as in the real model."""

    def __init__(self, dtype=torch.float32, rows=4096, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.embed_tokens = torch.nn.Embedding(rows, 1024, _weight=torch.randn(rows, 1024, generator=g).to(dtype))
        self.embed_tokens.weight.requires_grad_(False)
        self.calls = []   # (input_ids shape, attention_mask given)

    @property
    def dtype(self):
        return self.embed_tokens.weight.dtype

    @property
    def device(self):
        return self.embed_tokens.weight.device

    def get_input_embeddings(self):
        return self.embed_tokens

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        self.calls.append((tuple(input_ids.shape), attention_mask is not None))
        x = self.embed_tokens(input_ids % self.embed_tokens.num_embeddings)
        steps = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype).view(1, -1, 1)
        return BaseModelOutputWithPast(last_hidden_state=torch.tanh(torch.cumsum(x, dim=1) / steps), past_key_values=None)
