"""The Qwen3.5 hybrid backbone and the Anima projection head, exactly as `transformers`
(`Qwen3_5TextModel`, >= 5.2) computes them. The maths, with shapes: docs/qwen35-maths.md.

Shapes: B batch, T tokens, D hidden (2560), Hq/Hkv attention heads (16/4), Dh attention head dim (256),
Hk/Hv DeltaNet key/value heads (16/32), Dk/Dv DeltaNet head dims (128/128).
Batches are right-padded: every mixer is causal, so the outputs at real positions are exact and the
padding needs no mask at all. Given the prompts' lengths, the per-token work runs on the real tokens only, packed
as rows [N, D] (packing.py); the mixers take [N, D] and the batch's Rows and work in [B, T, ...] inside.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import heap
from ..ops.causal_conv import causal_conv
from ..ops.delta_rule import KERNELS, fla_chunk_gated_delta_rule
from .config import Qwen35Config
from .linear import FP8_DTYPES, StoredLinear, UpcastBudget, fuse, upcast
from .packing import Rows


def _buf(module: nn.Module, name: str, t: torch.Tensor | None) -> None:
    module.register_buffer(name, t, persistent=False)


class ZeroCenteredRMSNorm(nn.Module):
    """Qwen3.5's RMSNorm: the stored weight is an offset from 1. y = x/rms(x) * (1 + w), in fp32."""

    def __init__(self, weight: torch.Tensor, eps: float):
        super().__init__()
        _buf(self, "weight", weight)
        self.eps = eps

    def forward(self, x):
        x32 = x.float()
        y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * (1.0 + self.weight.float())).to(x.dtype)


class GatedRMSNorm(nn.Module):
    """DeltaNet output norm: PLAIN weight, then gated by silu(z). Matches Qwen3_5RMSNormGated."""

    def __init__(self, weight: torch.Tensor, eps: float):
        super().__init__()
        _buf(self, "weight", weight)
        self.eps = eps

    def forward(self, h, z):
        dtype = h.dtype
        h32 = h.float()
        h32 = h32 * torch.rsqrt(h32.pow(2).mean(-1, keepdim=True) + self.eps)
        t = self.weight.to(dtype) * h32.to(dtype)
        return (t * F.silu(z.float())).to(dtype)


class HeadRMSNorm(nn.Module):
    """`norm.1` of the projection head. Its weights sit near -0.003, so they are an offset, not a scale.
    parameterisation: "exp" -> scale = exp(w) (the product card's "ExpRMSNorm", default);
    "one_plus" -> scale = 1 + w (zero-centred, like every other Qwen3.5 norm); they agree to ~5e-6
    relative at w = -0.003. "plain" (scale = w) is the bug that collapses every token; kept for tests."""

    PARAMETERISATIONS = ("exp", "one_plus", "plain")

    def __init__(self, weight: torch.Tensor, eps: float, parameterisation: str = "exp"):
        super().__init__()
        if parameterisation not in self.PARAMETERISATIONS:
            raise ValueError(f"head norm parameterisation must be one of {self.PARAMETERISATIONS}")
        _buf(self, "weight", weight)
        self.eps, self.parameterisation = eps, parameterisation

    def scale(self) -> torch.Tensor:
        w = self.weight.float()
        return {"exp": torch.exp, "one_plus": lambda w: 1.0 + w, "plain": lambda w: w}[self.parameterisation](w)

    def forward(self, x):
        x32 = x.float()
        y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.scale()).to(x.dtype)


def l2norm(x, eps: float = 1e-6):
    return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + eps)


class GatedDeltaNet(nn.Module):
    """Linear-attention mixer. x [B,T,D] -> [B,T,D]."""

    def __init__(self, cfg: Qwen35Config, w: dict, kernel: str = "chunk"):
        super().__init__()
        self.Hk, self.Hv = cfg.linear_num_key_heads, cfg.linear_num_value_heads
        self.Dk, self.Dv = cfg.linear_key_head_dim, cfg.linear_value_head_dim
        self.key_dim, self.value_dim = self.Hk * self.Dk, self.Hv * self.Dv
        parts = [w["in_proj_qkv.weight"], w["in_proj_z.weight"], w["in_proj_b.weight"], w["in_proj_a.weight"]]
        self.splits = [p.shape[0] for p in parts]          # [2*key_dim + value_dim, value_dim, Hv, Hv]
        # One matmul for the four input projections (they all read x).
        self.in_proj = StoredLinear(fuse(parts)) if len({p.dtype for p in parts}) == 1 else None
        self.in_projs = None if self.in_proj is not None else nn.ModuleList(StoredLinear(p) for p in parts)
        _buf(self, "conv_weight", w["conv1d.weight"])       # [C, 1, K] depthwise
        _buf(self, "A_log", w["A_log"])
        _buf(self, "dt_bias", w["dt_bias"])
        self.norm = GatedRMSNorm(w["norm.weight"], cfg.rms_norm_eps)
        self.out_proj = StoredLinear(w["out_proj.weight"])
        self.kernel = kernel

    def forward(self, x, rows: Rows):
        """x [N, D] (the batch's real tokens) -> [N, D]."""
        B, T = rows.B, rows.T
        if self.in_proj is not None:
            proj = self.in_proj(x)
            mixed, _, b, a = rows.unpack(proj).split(self.splits, dim=-1)      # [B, T, ...] for the sequence work
            z = proj.split(self.splits, dim=-1)[1]                              # [N, value_dim]: per token
        else:
            mixed, z, b, a = (lin(x) for lin in self.in_projs)
            mixed, b, a = rows.unpack(mixed), rows.unpack(b), rows.unpack(a)
        mixed = causal_conv(mixed, self.conv_weight)                            # [B,T,2*key_dim+value_dim]
        q, k, v = mixed.split([self.key_dim, self.key_dim, self.value_dim], dim=-1)
        q = q.reshape(B, T, self.Hk, self.Dk)
        k = k.reshape(B, T, self.Hk, self.Dk)
        v = v.reshape(B, T, self.Hv, self.Dv)
        beta = b.float().sigmoid()                                              # [B,T,Hv]
        g = -self.A_log.float().exp() * F.softplus(a.float() + self.dt_bias.float())
        if self.kernel == "fla":   # raw q/k, grouped key heads: l2norm, scale and head mapping happen in fla's kernel
            o = fla_chunk_gated_delta_rule(q, k, v, g, beta.to(x.dtype))
        else:
            rep = self.Hv // self.Hk              # value head h reads key head h // rep
            q = l2norm(q.float()).repeat_interleave(rep, dim=2) * self.Dk ** -0.5
            k = l2norm(k.float()).repeat_interleave(rep, dim=2)
            o = KERNELS[self.kernel](q, k, v.float(), g, beta)                  # [B,T,Hv,Dv] fp32
        o = self.norm(rows.pack(o).to(x.dtype), z.reshape(-1, self.Hv, self.Dv))   # [N, Hv, Dv]
        return self.out_proj(o.reshape(-1, self.value_dim))


class RotaryEmbedding(nn.Module):
    """Plain 1-D RoPE on the first `rotary_dim` dims of each head (text-only mRoPE reduces to this)."""

    def __init__(self, cfg: Qwen35Config):
        super().__init__()
        d = cfg.rotary_dim
        _buf(self, "inv_freq", 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d)))

    def forward(self, T: int, device, dtype):
        freqs = torch.arange(T, device=device, dtype=torch.float32)[:, None] * self.inv_freq.to(device)
        emb = torch.cat([freqs, freqs], dim=-1)                                 # [T, rotary_dim]
        return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rope(x, cos, sin):
    """x [B,H,T,Dh]: rotate-half on the first cos.shape[-1] dims, the rest pass through."""
    r = cos.shape[-1]
    xr, xp = x[..., :r], x[..., r:]
    x1, x2 = xr[..., : r // 2], xr[..., r // 2:]
    return torch.cat([xr * cos + torch.cat([-x2, x1], dim=-1) * sin, xp], dim=-1)


class GatedAttention(nn.Module):
    """Full causal attention with an output gate. q_proj rows per head are [query Dh | gate Dh]."""

    def __init__(self, cfg: Qwen35Config, w: dict):
        super().__init__()
        self.Hq, self.Hkv, self.Dh = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        parts = [w["q_proj.weight"], w["k_proj.weight"], w["v_proj.weight"]]
        self.splits = [p.shape[0] for p in parts]
        self.qkv = StoredLinear(fuse(parts)) if len({p.dtype for p in parts}) == 1 else None
        self.qkvs = None if self.qkv is not None else nn.ModuleList(StoredLinear(p) for p in parts)
        self.o_proj = StoredLinear(w["o_proj.weight"])
        self.q_norm = ZeroCenteredRMSNorm(w["q_norm.weight"], cfg.rms_norm_eps)
        self.k_norm = ZeroCenteredRMSNorm(w["k_norm.weight"], cfg.rms_norm_eps)

    def forward(self, x, cos, sin, rows: Rows):
        """x [N, D] (the batch's real tokens) -> [N, D]."""
        B, T = rows.B, rows.T
        if self.qkv is not None:
            qg, k, v = rows.unpack(self.qkv(x)).split(self.splits, dim=-1)     # [B, T, ...]
        else:
            qg, k, v = (rows.unpack(lin(x)) for lin in self.qkvs)
        q, gate = qg.view(B, T, self.Hq, 2 * self.Dh).chunk(2, dim=-1)         # per-head split, not flat
        gate = gate.reshape(B, T, self.Hq * self.Dh)
        q = self.q_norm(q).transpose(1, 2)                                      # [B,Hq,T,Dh]
        k = self.k_norm(k.view(B, T, self.Hkv, self.Dh)).transpose(1, 2)        # [B,Hkv,T,Dh]
        v = v.view(B, T, self.Hkv, self.Dh).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        rep = self.Hq // self.Hkv
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.Dh ** -0.5)
        o = o.transpose(1, 2).reshape(B, T, self.Hq * self.Dh)
        return self.o_proj(rows.pack(o * torch.sigmoid(gate)))


class SwiGLU(nn.Module):
    def __init__(self, w: dict):
        super().__init__()
        gate, up = w["gate_proj.weight"], w["up_proj.weight"]
        self.inter = gate.shape[0]
        self.gate_up = StoredLinear(fuse([gate, up])) if gate.dtype == up.dtype else None
        self.gate_proj = None if self.gate_up is not None else StoredLinear(gate)
        self.up_proj = None if self.gate_up is not None else StoredLinear(up)
        self.down_proj = StoredLinear(w["down_proj.weight"])

    def forward(self, x):
        if self.gate_up is not None:
            g, u = self.gate_up(x).split([self.inter, self.inter], dim=-1)
        else:
            g, u = self.gate_proj(x), self.up_proj(x)
        return self.down_proj(F.silu(g) * u)


class DecoderLayer(nn.Module):
    """h = x + mixer(norm(x)); out = h + mlp(norm(h)) (the Anima file's last layer has no MLP)."""

    def __init__(self, cfg: Qwen35Config, i: int, w: dict, kernel: str):
        super().__init__()
        self.kind = cfg.layer_types[i]
        sub = lambda pre: {k[len(pre):]: v for k, v in w.items() if k.startswith(pre)}   # noqa: E731
        self.input_layernorm = ZeroCenteredRMSNorm(w["input_layernorm.weight"], cfg.rms_norm_eps)
        if self.kind == "linear_attention":
            self.mixer = GatedDeltaNet(cfg, sub("linear_attn."), kernel)
        else:
            self.mixer = GatedAttention(cfg, sub("self_attn."))
        self.mlp = SwiGLU(sub("mlp.")) if "mlp.gate_proj.weight" in w else None
        self.post_attention_layernorm = (ZeroCenteredRMSNorm(w["post_attention_layernorm.weight"], cfg.rms_norm_eps)
                                         if self.mlp is not None else None)

    def forward(self, x, cos, sin, rows: Rows):
        """x [N, D], the batch's real tokens (packing.py)."""
        h = self.input_layernorm(x)
        h = self.mixer(h, rows) if self.kind == "linear_attention" else self.mixer(h, cos, sin, rows)
        x = x + h
        if self.mlp is not None:
            x = x + self.mlp(self.post_attention_layernorm(x))
        return x


class ProjectionHead(nn.Module):
    """Anima's 2560 -> 1024 head: norm.0 Linear(+bias) -> norm.1 RMSNorm -> SiLU -> norm.3 Linear(+bias)."""

    def __init__(self, cfg: Qwen35Config, w: dict, norm_parameterisation: str = "exp"):
        super().__init__()
        self.proj_in = StoredLinear(w["norm.0.weight"], w["norm.0.bias"])
        self.norm = HeadRMSNorm(w["norm.1.weight"], cfg.rms_norm_eps, norm_parameterisation)
        self.proj_out = StoredLinear(w["norm.3.weight"], w["norm.3.bias"])

    def forward(self, x):
        return self.proj_out(F.silu(self.norm(self.proj_in(x))))


class Qwen35Backbone(nn.Module):
    """ids [B,T] -> head output [B,T,1024] (or final hidden [B,T,D] for a head-less official checkpoint)."""

    def __init__(self, cfg: Qwen35Config, weights: dict, kernel: str = "chunk", head_norm: str = "exp"):
        """`weights` uses canonical names: 'embed_tokens.weight', 'layers.{i}.…', 'norm.weight', 'head.norm.0.weight'….
        It is consumed (entries popped) so each layer's unfused tensors are freed as soon as the layer is built:
        loading peaks at about one layer above the model's own size."""
        super().__init__()
        self.cfg = cfg
        take = lambda pre: {k[len(pre):]: weights.pop(k) for k in [k for k in weights if k.startswith(pre)]}  # noqa: E731
        _buf(self, "embed", weights.pop("embed_tokens.weight"))                 # [V, D], stored dtype
        layers = []
        for i in range(cfg.num_layers):
            layers.append(DecoderLayer(cfg, i, take(f"layers.{i}."), kernel))
            heap.release_free_memory()    # that layer's unfused parts, just freed, leave the RSS (ops/heap.py)
        self.layers = nn.ModuleList(layers)
        self.final_norm = (ZeroCenteredRMSNorm(weights.pop("norm.weight"), cfg.rms_norm_eps) if cfg.has_final_norm
                           else None)
        self.head = ProjectionHead(cfg, take("head."), head_norm) if cfg.has_head else None
        self.rope = RotaryEmbedding(cfg)

    def set_kernel(self, kernel: str) -> None:
        for layer in self.layers:
            if layer.kind == "linear_attention":
                layer.mixer.kernel = kernel

    def cache_upcasts(self, dtype: torch.dtype, max_bytes: int) -> None:
        """Keep upcast copies of the first linears that fit `max_bytes` (0 clears them)."""
        budget = UpcastBudget(max_bytes)
        for m in self.modules():
            if isinstance(m, StoredLinear):
                m.drop_cache()
                if max_bytes > 0:
                    m.cache_upcast(dtype, budget)

    def _packed_hidden(self, ids: torch.Tensor, dtype: torch.dtype, rows: Rows) -> torch.Tensor:
        """The real tokens' pre-head hidden state [N, D]."""
        ids = rows.pack(ids)
        x = upcast(self.embed[ids], dtype) if self.embed.dtype in FP8_DTYPES else self.embed[ids].to(dtype)
        cos, sin = self.rope(rows.T, ids.device, dtype)
        for layer in self.layers:
            x = layer(x, cos, sin, rows)
        return self.final_norm(x) if self.final_norm is not None else x

    def hidden_states(self, ids: torch.Tensor, dtype: torch.dtype, lengths: list[int] | None = None) -> torch.Tensor:
        """Pre-head hidden state [B,T,D]: after the last layer (and model.norm if the file has one). `lengths` (each
        prompt's real tokens; default: all T) lets the per-token work skip the padding, which then reads as zeros."""
        rows = Rows.of(ids, lengths)
        return rows.unpack(self._packed_hidden(ids, dtype, rows))

    def forward(self, ids: torch.Tensor, dtype: torch.dtype = torch.float32,
                lengths: list[int] | None = None) -> torch.Tensor:
        rows = Rows.of(ids, lengths)
        x = self._packed_hidden(ids, dtype, rows)
        return rows.unpack(self.head(x) if self.head is not None else x)
