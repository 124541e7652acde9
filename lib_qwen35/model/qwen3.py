"""The stock Anima text encoder: plain Qwen3 (Qwen3-0.6B-Base), read from `qwen_3_06b_base.safetensors`.

Used as the *target* space when fitting the 4B -> 0.6B alignment, and by `compare_with_stock`.
Output = last decoder layer after the final RMSNorm, exactly what Forge Neo / ComfyUI feed Anima.

Math (transformers `Qwen3Model`, checked in tests/model/test_qwen3.py):
  RMSNorm with a PLAIN weight: y = w * (x / sqrt(mean(x^2) + eps))   (not zero-centred like Qwen3.5)
  layer: h = x + attn(norm1(x)); out = h + mlp(norm2(h))
  attn: q/k RMSNorm per head (over head_dim) before RoPE; RoPE over the full head_dim, theta 1e6;
        GQA (kv heads repeated), causal, scale 1/sqrt(head_dim); no biases
  mlp: down(silu(gate(x)) * up(x)); embedding unscaled.
Sizes (hidden, layers, heads, ...) are inferred from tensor shapes, so scaled-down synthetic checkpoints
run through the same code as the real 0.6B file.

Compute: as the 4B's (model/devices.py). The linear weights stay in the file's dtype (BF16: 1.2 GB, not 2.4 GB in
fp32) in StoredLinears, fused where they read the same input (q|k|v, gate|up), and go through the CPU linear of
ops/cpu_linear.py (in fp32: decoded in blocks; in bf16: multiplied as stored). On the CPU the activations are fp32
and the dtype is the matmuls'. A right-padded batch runs its per-token work on the real tokens only (packing.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import NonFiniteOutputError, WeightsFileError
from ..files.checkpoint import (
    checkpoint_identity,
    detect_prefix,
    load_tensors,
    loaded_identity,
    read_header,
    short_hash,
)
from ..files.tokenizer import QWEN3_ENDOFTEXT_ID, load_qwen3_tokenizer
from . import devices, encoder_cache
from .devices import check_device, resolve_dtype
from .linear import StoredLinear, fuse
from .packing import Rows
from .text_encoder import TextEncoder

ANCHOR_SUFFIX = "layers.0.self_attn.q_norm.weight"   # present in every Qwen3 checkpoint, absent in Qwen3.5
ROPE_THETA = 1e6                                     # not stored in the file: Qwen3 config constant
RMS_EPS = 1e-6
_FLOAT_DTYPES = {"BF16", "F16", "F32"}
_ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class Qwen3Config:
    vocab_size: int = 151936
    hidden_size: int = 1024
    intermediate_size: int = 3072
    num_layers: int = 28
    num_attention_heads: int = 16
    num_key_value_heads: int = 8
    head_dim: int = 128
    rope_theta: float = ROPE_THETA
    rms_norm_eps: float = RMS_EPS


def infer_config(infos: dict, prefix: str, path: str = "") -> Qwen3Config:
    """Sizes from tensor shapes; raises WeightsFileError naming the first missing/mis-shaped tensor."""
    def shape(name):
        info = infos.get(prefix + name)
        if info is None:
            raise WeightsFileError(f"{path}: tensor {prefix + name!r} is missing; this is not a complete "
                                   f"Qwen3 checkpoint (expected qwen_3_06b_base.safetensors).")
        return tuple(info.shape)

    vocab, hidden = shape("embed_tokens.weight")
    (head_dim,) = shape("layers.0.self_attn.q_norm.weight")
    q_out, _ = shape("layers.0.self_attn.q_proj.weight")
    k_out, _ = shape("layers.0.self_attn.k_proj.weight")
    inter, _ = shape("layers.0.mlp.gate_proj.weight")
    layer_ids = {int(m.group(1)) for n in infos
                 if (m := re.match(re.escape(prefix) + r"layers\.(\d+)\.", n))}
    num_layers = max(layer_ids) + 1
    if sorted(layer_ids) != list(range(num_layers)):
        missing = sorted(set(range(num_layers)) - layer_ids)
        raise WeightsFileError(f"{path}: layers {missing} are missing (found up to layer {num_layers - 1}); "
                               f"the file is incomplete.")
    if q_out % head_dim or k_out % head_dim:
        raise WeightsFileError(f"{path}: q_proj/k_proj rows ({q_out}/{k_out}) are not multiples of "
                               f"head_dim {head_dim}; not a Qwen3 attention layout.")
    cfg = Qwen3Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_layers=num_layers,
                      num_attention_heads=q_out // head_dim, num_key_value_heads=k_out // head_dim,
                      head_dim=head_dim)
    if cfg.num_attention_heads % cfg.num_key_value_heads:
        raise WeightsFileError(f"{path}: {cfg.num_attention_heads} query heads are not a multiple of "
                               f"{cfg.num_key_value_heads} key/value heads.")
    return cfg


def expected_shapes(cfg: Qwen3Config) -> dict[str, tuple]:
    """Every tensor the encoder needs (names without prefix) -> shape."""
    h, hd, i = cfg.hidden_size, cfg.head_dim, cfg.intermediate_size
    q, kv = cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd
    out = {"embed_tokens.weight": (cfg.vocab_size, h), "norm.weight": (h,)}
    for li in range(cfg.num_layers):
        p = f"layers.{li}."
        out.update({
            p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (q, h), p + "self_attn.k_proj.weight": (kv, h),
            p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, q),
            p + "self_attn.q_norm.weight": (hd,), p + "self_attn.k_norm.weight": (hd,),
            p + "mlp.gate_proj.weight": (i, h), p + "mlp.up_proj.weight": (i, h),
            p + "mlp.down_proj.weight": (h, i),
        })
    return out


def validate(infos: dict, path: str = "") -> tuple[str, Qwen3Config]:
    """Find the key prefix, infer sizes, check every tensor's presence, shape and dtype."""
    prefix = detect_prefix(infos.keys(), ANCHOR_SUFFIX)
    if prefix is None:
        if any(n.endswith("linear_attn.in_proj_qkv.weight") for n in infos):
            raise WeightsFileError(f"{path}: this is a Qwen3.5 checkpoint; the stock encoder needs the "
                                   f"Qwen3-0.6B file (qwen_3_06b_base.safetensors).")
        sample = ", ".join(sorted(infos)[:3]) or "no tensors"
        raise WeightsFileError(f"{path}: no tensor ending in {ANCHOR_SUFFIX!r} (found {sample}); not a Qwen3 "
                               f"checkpoint. Expected qwen_3_06b_base.safetensors.")
    cfg = infer_config(infos, prefix, path)
    for name, want in expected_shapes(cfg).items():
        info = infos.get(prefix + name)
        if info is None:
            raise WeightsFileError(f"{path}: tensor {prefix + name!r} is missing; the file is incomplete.")
        if tuple(info.shape) != want:
            raise WeightsFileError(f"{path}: tensor {prefix + name!r} has shape {list(info.shape)}, expected "
                                   f"{list(want)} for hidden {cfg.hidden_size}; the file is corrupt or of "
                                   f"another model.")
        if info.dtype not in _FLOAT_DTYPES:
            raise WeightsFileError(f"{path}: tensor {prefix + name!r} is stored as {info.dtype}; the stock "
                                   f"encoder reads BF16, F16 or F32 weights.")
    return prefix, cfg


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    """Qwen3RMSNorm: normalise in fp32, cast back, then multiply by the plain weight."""
    x32 = x.float()
    y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return w * y.to(x.dtype)


def rope_cos_sin(t: int, head_dim: int, theta: float, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin [T, head_dim] for positions 0..T-1 (rotate-half layout, computed in fp32)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float()
                                / head_dim))
    freqs = torch.arange(t, device=device).float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def compute_dtype(dtype, device) -> torch.dtype:
    """The 0.6B's compute dtype: fp32, bf16 or fp16 as asked; None or 'auto': bfloat16 on a CUDA GPU, the 4B's
    'auto' elsewhere (on the CPU: bf16 matmuls where native and faster, else fp32; devices.cpu_choice)."""
    if (dtype is None or (isinstance(dtype, str) and dtype.lower() == "auto")) and torch.device(device).type == "cuda":
        return torch.bfloat16
    return resolve_dtype(dtype, device)       # float32 / bfloat16 / float16, else a specific error


class Qwen3Encoder(TextEncoder):
    """Qwen3 text backbone -> hidden states after the final norm [T, hidden] (float32).

    The same contract as the 4B `Encoder` (text_encoder.py): tokenize, encode_ids, encode_batch, to, identity,
    short_hash; an empty prompt is [<|endoftext|>], as Forge feeds it. The linear weights and the embedding table
    stay in their stored dtype (only the looked-up rows are cast: a fp32 copy of the real table would take ~620 MB);
    the norms' small weights are kept in the activation dtype.
    """

    ENDOFTEXT_ID = QWEN3_ENDOFTEXT_ID

    def __init__(self, path: str, device="cpu", dtype: torch.dtype | str | None = None, tokenizer=None):
        self.path = str(path)
        device = check_device(device)
        dtype = compute_dtype(dtype, device)      # before the load: a bad dtype fails at once
        infos = read_header(self.path)
        prefix, self.config = validate(infos, self.path)
        self.prefix = prefix
        self.identity = loaded_identity(infos)
        self._tokenizer = tokenizer
        names = [prefix + n for n in expected_shapes(self.config)]
        raw = load_tensors(infos, names, device="cpu")      # owned copies, never a mapping of the file
        self._short_hash = short_hash(self.path)
        if checkpoint_identity(self.path) != self.identity:
            raise WeightsFileError(f"{self.path}: the file changed while it was being loaded; wait until the copy "
                                   f"or download finishes, then try again.")
        w = {n[len(prefix):]: raw.pop(n) for n in list(raw)}
        self._lin = {}                 # 'layers.{i}.qkv' | '.o' | '.gate_up' | '.down' -> StoredLinear
        for li in range(self.config.num_layers):
            for name, parts in LINEARS.items():
                p = f"layers.{li}."
                self._lin[p + name] = _linear([w.pop(f"{p}{part}.weight") for part in parts])
        self._stored = w               # the embedding table and the norms' weights, as stored
        self._w: dict[str, torch.Tensor] = {}
        self.device = torch.device("cpu")
        self.dtype = dtype
        self.to(device, dtype)
        self.stats = {"backbone_runs": 0}

    def _load_tokenizer(self):
        return load_qwen3_tokenizer()

    def to(self, device=None, dtype: torch.dtype | str | None = None) -> Qwen3Encoder:
        """Move the weights (they keep their stored dtype); `dtype` changes the compute dtype."""
        device = check_device(device) if device is not None else self.device
        dtype = self.dtype if dtype is None else compute_dtype(dtype, device)
        for lin in self._lin.values():
            lin.to(device)
            lin.gemm_dtype = dtype
        act = devices.activation_dtype(device, dtype)
        for n, t in self._stored.items():
            self._stored[n] = t = t.to(device)
            self._w[n] = t if n == "embed_tokens.weight" else t.to(act)
        self.device, self.dtype = device, dtype
        return self

    @torch.inference_mode()
    def _forward(self, ids: torch.Tensor, lengths: list[int] | None = None) -> torch.Tensor:
        """ids [B, T] (right-padded) -> hidden [B, T, hidden] in the activation dtype, zeros at the padded places.
        Causal, so valid positions never see padding and need no mask; the per-token work runs on the real
        tokens only (rows [N, hidden])."""
        cfg, w, lin = self.config, self._w, self._lin
        rows = Rows.of(ids, lengths)
        b, t = ids.shape
        hd, nh, nkv = cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
        act = self.activation_dtype
        x = F.embedding(rows.pack(ids), w["embed_tokens.weight"]).to(act)       # [N, H]
        cos, sin = rope_cos_sin(t, hd, cfg.rope_theta, self.device, act)     # [T, hd]
        eps = cfg.rms_norm_eps
        splits = [nh * hd, nkv * hd, nkv * hd]
        for li in range(cfg.num_layers):
            p = f"layers.{li}."
            h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
            q, k, v = rows.unpack(lin[p + "qkv"](h)).split(splits, dim=-1)     # [B, T, ...]
            q = rms_norm(q.reshape(b, t, nh, hd), w[p + "self_attn.q_norm.weight"], eps).transpose(1, 2)
            k = rms_norm(k.reshape(b, t, nkv, hd), w[p + "self_attn.k_norm.weight"], eps).transpose(1, 2)
            v = v.reshape(b, t, nkv, hd).transpose(1, 2)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            if nkv != nh:  # GQA: query head j uses kv head j // (nh / nkv)
                k = k.repeat_interleave(nh // nkv, dim=1)
                v = v.repeat_interleave(nh // nkv, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=hd ** -0.5)
            x = x + lin[p + "o"](rows.pack(a.transpose(1, 2).reshape(b, t, nh * hd)))
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
            g, u = lin[p + "gate_up"](h).chunk(2, dim=-1)
            x = x + lin[p + "down"](F.silu(g) * u)
        return rows.unpack(rms_norm(x, w["norm.weight"], eps))

    def encode_batch(self, batch) -> list[torch.Tensor]:
        """List of id lists -> list of Tensor[T_i, hidden] float32. Right padding: exact for a causal model."""
        batch = [self.check_ids(ids) for ids in batch]
        if not batch:
            return []
        t = max(len(ids) for ids in batch)
        padded = torch.zeros(len(batch), t, dtype=torch.long)
        for row, ids in enumerate(batch):
            padded[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        hidden = self._forward(padded.to(self.device), [len(ids) for ids in batch]).float()
        self.stats["backbone_runs"] += 1
        # clones made outside inference mode: plain tensors the caller owns, not views of the batch
        out = [hidden[row, : len(ids)].clone() for row, ids in enumerate(batch)]
        if torch.isfinite(hidden).all():      # one check for the batch; per-row only to name the culprit
            return out
        for row, o in enumerate(out):
            if not torch.isfinite(o).all():
                raise NonFiniteOutputError(
                    f"the Qwen3 encoder produced NaN/Inf for prompt {row} of the batch (dtype {self.dtype}); "
                    f"use float32 or bfloat16 instead of float16, or check the weights file.")
        return out

    def encode(self, text: str) -> torch.Tensor:
        return self.encode_ids(self.tokenize(text))


# the model's linears as this encoder multiplies them: those that read the same input fused into one
LINEARS = {"qkv": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), "o": ("self_attn.o_proj",),
           "gate_up": ("mlp.gate_proj", "mlp.up_proj"), "down": ("mlp.down_proj",)}


def _linear(weights: list[torch.Tensor]) -> StoredLinear:
    """One StoredLinear for weights that read the same input (exact: each output row is the same dot product)."""
    return StoredLinear(fuse(weights) if len(weights) > 1 else weights[0])


def load_qwen3_encoder(path: str, device="cpu", dtype: torch.dtype | str | None = None) -> Qwen3Encoder:
    """Load (or reuse) the stock encoder for `path`: loading the 0.6B file takes seconds. Reused while the file
    and the dtype are the same (encoder_cache.py); a different device moves the cached encoder."""
    device = check_device(device)
    dtype = compute_dtype(dtype, device)
    return encoder_cache.QWEN3.get(path, (str(dtype),), device,
                                   load=lambda: Qwen3Encoder(path, device=device, dtype=dtype),
                                   check=lambda: validate(read_header(path), str(path)))
