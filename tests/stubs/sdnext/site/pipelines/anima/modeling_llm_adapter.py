"""Stand-in for SD.Next's pipelines/anima/modeling_llm_adapter.AnimaLLMAdapter: T5 ids as queries
cross-attending to the Qwen3 states, **no attention mask** (padding is attended), output [B, Lt, target_dim]."""

import types

import torch


class AnimaLLMAdapter(torch.nn.Module):
    def __init__(self, source_dim=1024, target_dim=1024, rows=1024, seed=1):
        super().__init__()
        self.config = types.SimpleNamespace(source_dim=source_dim, target_dim=target_dim)
        g = torch.Generator().manual_seed(seed)
        self.embed = torch.nn.Embedding(rows, target_dim, _weight=torch.randn(rows, target_dim, generator=g))
        self.embed.weight.requires_grad_(False)
        self.calls = []   # (source shape, target shape)
        self.sources = []   # the source_hidden_states it was given (clones)

    @property
    def dtype(self):
        return self.embed.weight.dtype

    def forward(self, source_hidden_states, target_input_ids):
        self.calls.append((tuple(source_hidden_states.shape), tuple(target_input_ids.shape)))
        self.sources.append(source_hidden_states.detach().clone())
        q = self.embed(target_input_ids % self.embed.num_embeddings).to(source_hidden_states.dtype)   # [B, Lt, D]
        attn = torch.softmax(q @ source_hidden_states.transpose(1, 2) / 32.0, dim=-1)            # [B, Lt, Lq]
        return q + attn @ source_hidden_states
