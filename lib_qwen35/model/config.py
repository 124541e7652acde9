"""Qwen3.5 sizes, inferred from tensor shapes, and the strict key/shape/dtype check of a checkpoint.

Inferring (rather than hard-coding 2560/32/...) lets scaled-down synthetic checkpoints run through
exactly the code that loads the real `qwen35_4b.safetensors`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import WeightsFileError
from ..files.checkpoint import TensorInfo, detect_prefix

ANCHOR_SUFFIX = "layers.0.linear_attn.in_proj_qkv.weight"   # present in every Qwen3.5 text backbone
OFFICIAL_PREFIX = "model.language_model."                   # Qwen/Qwen3.5-4B on the Hub

# Constants a checkpoint cannot tell us (documented defaults of Qwen3.5; see notes/qwen35-reference.md)
ROPE_THETA = 1e7
PARTIAL_ROTARY_FACTOR = 0.25
RMS_EPS = 1e-6
FLOAT_DTYPES = {"F8_E4M3", "F8_E5M2", "BF16", "F16", "F32"}

HEAD_KEYS = ("norm.0.weight", "norm.0.bias", "norm.1.weight", "norm.3.weight", "norm.3.bias")


@dataclass
class Qwen35Config:
    hidden_size: int = 2560
    intermediate_size: int = 9216
    vocab_size: int = 248320
    layer_types: list = field(default_factory=lambda: ["full_attention" if (i + 1) % 4 == 0
                                                       else "linear_attention" for i in range(32)])
    layers_with_mlp: list = field(default_factory=lambda: list(range(31)))
    # gated attention
    num_attention_heads: int = 16
    num_key_value_heads: int = 4
    head_dim: int = 256
    # gated DeltaNet
    linear_num_key_heads: int = 16
    linear_num_value_heads: int = 32
    linear_key_head_dim: int = 128
    linear_value_head_dim: int = 128
    linear_conv_kernel: int = 4
    # output
    has_final_norm: bool = False        # official layout: model.norm; Anima layout: projection head instead
    has_head: bool = True
    head_out: int = 1024
    rope_theta: float = ROPE_THETA
    partial_rotary_factor: float = PARTIAL_ROTARY_FACTOR
    rms_norm_eps: float = RMS_EPS

    @property
    def num_layers(self) -> int:
        return len(self.layer_types)

    @property
    def rotary_dim(self) -> int:
        return int(self.head_dim * self.partial_rotary_factor)

    @property
    def output_size(self) -> int:
        return self.head_out if self.has_head else self.hidden_size


@dataclass
class Layout:
    """Where the tensors of one checkpoint are: backbone prefix and head prefix."""
    prefix: str
    head_prefix: str | None
    config: Qwen35Config
    expected: dict          # name -> expected shape (tuple)


def _describe_foreign(names: list[str], infos: dict[str, TensorInfo]) -> str:
    """Say what a non-Qwen3.5 file most likely is, for the error message."""
    q_norm = detect_prefix(names, "layers.0.self_attn.q_norm.weight")
    if q_norm is not None and not any("linear_attn" in n for n in names):
        emb = [n for n in names if n.endswith("embed_tokens.weight")]
        hidden = infos[emb[0]].shape[1] if emb else "?"
        n_layers = len({m.group(1) for n in names if (m := re.search(r"layers\.(\d+)\.", n))})
        kind = "the stock Qwen3-0.6B encoder (qwen_3_06b_base.safetensors)" if hidden == 1024 else "a plain Qwen3 model"
        return (f"it looks like {kind}: {n_layers} attention-only layers, hidden size {hidden}, no Gated DeltaNet "
                f"layers. This extension needs the Qwen3.5-4B encoder (qwen35_4b.safetensors, hidden 2560, "
                f"32 hybrid layers); keep the 0.6B file as Forge's own text encoder")
    if any(n.startswith(("net.", "blocks.", "model.diffusion_model.")) for n in names) or \
            any("llm_adapter" in n for n in names):
        return ("it looks like a diffusion model (Anima DiT), not a text encoder. Select the Qwen3.5-4B "
                "encoder file (qwen35_4b.safetensors)")
    if any(n.startswith(("encoder.", "decoder.")) and "conv" in n for n in names):
        return "it looks like a VAE, not a text encoder. Select qwen35_4b.safetensors"
    sample = ", ".join(sorted(names)[:4])
    return (f"no tensor ends with '{ANCHOR_SUFFIX}' (found {len(names)} tensors, e.g. {sample}). "
            f"Expected the Qwen3.5-4B Anima encoder, qwen35_4b.safetensors")


def _shape(infos, name):
    return infos[name].shape


def infer_layout(infos: dict[str, TensorInfo], path: str = "") -> Layout:
    """Infer sizes from shapes, then check the whole key set, every shape and every dtype."""
    names = list(infos)
    prefix = detect_prefix(names, ANCHOR_SUFFIX)
    if prefix is None:
        raise WeightsFileError(f"{path}: not a Qwen3.5 text encoder: {_describe_foreign(names, infos)}.")
    p = prefix
    try:
        vocab, hidden = _shape(infos, p + "embed_tokens.weight")
        layer_ids = sorted({int(m.group(1)) for n in names if n.startswith(p)
                            and (m := re.match(re.escape(p) + r"layers\.(\d+)\.", n))})
        num_layers = layer_ids[-1] + 1 if layer_ids else 0
        layer_types = []
        for i in range(num_layers):
            if f"{p}layers.{i}.linear_attn.in_proj_qkv.weight" in infos:
                layer_types.append("linear_attention")
            elif f"{p}layers.{i}.self_attn.q_proj.weight" in infos:
                layer_types.append("full_attention")
            else:
                raise WeightsFileError(f"{path}: layer {i} has neither linear_attn nor self_attn weights "
                                       f"(missing tensors under '{p}layers.{i}.').")
        with_mlp = [i for i in range(num_layers) if f"{p}layers.{i}.mlp.gate_proj.weight" in infos]
        full = layer_types.index("full_attention") if "full_attention" in layer_types else None
        lin = 0
        v_head_dim = _shape(infos, f"{p}layers.{lin}.linear_attn.norm.weight")[0]
        num_v_heads = _shape(infos, f"{p}layers.{lin}.linear_attn.A_log")[0]
        k_head_dim = v_head_dim      # assumption documented in the issue: key head dim == value head dim
        qkv_rows = _shape(infos, f"{p}layers.{lin}.linear_attn.in_proj_qkv.weight")[0]
        num_k_heads = (qkv_rows - v_head_dim * num_v_heads) // (2 * k_head_dim)
        conv_k = _shape(infos, f"{p}layers.{lin}.linear_attn.conv1d.weight")[-1]
        if full is not None:
            head_dim = _shape(infos, f"{p}layers.{full}.self_attn.q_norm.weight")[0]
            n_heads = _shape(infos, f"{p}layers.{full}.self_attn.q_proj.weight")[0] // (2 * head_dim)
            n_kv = _shape(infos, f"{p}layers.{full}.self_attn.k_proj.weight")[0] // head_dim
        else:
            head_dim, n_heads, n_kv = 256, 16, 4
        inter = _shape(infos, f"{p}layers.{with_mlp[0]}.mlp.gate_proj.weight")[0] if with_mlp else 0
    except KeyError as e:
        raise WeightsFileError(f"{path}: missing tensor {e.args[0]} (the file is incomplete or not a "
                               f"Qwen3.5 encoder).") from None

    # The projection head: next to the backbone ("<p>norm.0.weight") or at the top level.
    head_prefix = None
    for hp in (p, ""):
        if hp + "norm.0.weight" in infos:
            head_prefix = hp
            break
    has_final_norm = head_prefix is None and (p + "norm.weight") in infos
    head_out = _shape(infos, head_prefix + "norm.0.weight")[0] if head_prefix is not None else 1024

    cfg = Qwen35Config(
        hidden_size=hidden, intermediate_size=inter, vocab_size=vocab, layer_types=layer_types,
        layers_with_mlp=with_mlp, num_attention_heads=n_heads, num_key_value_heads=n_kv, head_dim=head_dim,
        linear_num_key_heads=num_k_heads, linear_num_value_heads=num_v_heads, linear_key_head_dim=k_head_dim,
        linear_value_head_dim=v_head_dim, linear_conv_kernel=conv_k, has_final_norm=has_final_norm,
        has_head=head_prefix is not None, head_out=head_out)
    expected = expected_shapes(cfg, p, head_prefix)
    _validate(infos, expected, p, path)
    return Layout(prefix=p, head_prefix=head_prefix, config=cfg, expected=expected)


def expected_shapes(cfg: Qwen35Config, prefix: str, head_prefix: str | None) -> dict[str, tuple]:
    """The complete key set (with shapes) a checkpoint of this config must have."""
    h, p = cfg.hidden_size, prefix
    kd = cfg.linear_num_key_heads * cfg.linear_key_head_dim
    vd = cfg.linear_num_value_heads * cfg.linear_value_head_dim
    qd = cfg.num_attention_heads * cfg.head_dim
    kvd = cfg.num_key_value_heads * cfg.head_dim
    out = {p + "embed_tokens.weight": (cfg.vocab_size, h)}
    for i, kind in enumerate(cfg.layer_types):
        L = f"{p}layers.{i}."
        out[L + "input_layernorm.weight"] = (h,)
        if kind == "linear_attention":
            A = L + "linear_attn."
            out.update({A + "in_proj_qkv.weight": (2 * kd + vd, h), A + "in_proj_z.weight": (vd, h),
                        A + "in_proj_b.weight": (cfg.linear_num_value_heads, h),
                        A + "in_proj_a.weight": (cfg.linear_num_value_heads, h),
                        A + "out_proj.weight": (h, vd), A + "conv1d.weight": (2 * kd + vd, 1, cfg.linear_conv_kernel),
                        A + "norm.weight": (cfg.linear_value_head_dim,), A + "A_log": (cfg.linear_num_value_heads,),
                        A + "dt_bias": (cfg.linear_num_value_heads,)})
        else:
            A = L + "self_attn."
            out.update({A + "q_proj.weight": (2 * qd, h), A + "k_proj.weight": (kvd, h),
                        A + "v_proj.weight": (kvd, h), A + "o_proj.weight": (h, qd),
                        A + "q_norm.weight": (cfg.head_dim,), A + "k_norm.weight": (cfg.head_dim,)})
        if i in cfg.layers_with_mlp:
            out[L + "post_attention_layernorm.weight"] = (h,)
            out.update({L + "mlp.gate_proj.weight": (cfg.intermediate_size, h),
                        L + "mlp.up_proj.weight": (cfg.intermediate_size, h),
                        L + "mlp.down_proj.weight": (h, cfg.intermediate_size)})
    if cfg.has_final_norm:
        out[p + "norm.weight"] = (h,)
    if head_prefix is not None:
        o = cfg.head_out
        out.update({head_prefix + "norm.0.weight": (o, h), head_prefix + "norm.0.bias": (o,),
                    head_prefix + "norm.1.weight": (o,), head_prefix + "norm.3.weight": (o, o),
                    head_prefix + "norm.3.bias": (o,)})
    return out


def _ignored(name: str, prefix: str) -> bool:
    """Tensors of the official multimodal checkpoint that a text encoder does not use."""
    rest = name[len(prefix):] if name.startswith(prefix) else name
    return (name.startswith(("model.visual.", "visual.", "mtp.", "lm_head."))
            or rest.startswith(("visual.", "mtp.")))


def _validate(infos: dict[str, TensorInfo], expected: dict, prefix: str, path: str) -> None:
    missing = [n for n in expected if n not in infos]
    unexpected = [n for n in infos if n not in expected and not _ignored(n, prefix)]
    if missing:
        raise WeightsFileError(f"{path}: {len(missing)} tensor(s) missing, e.g. {missing[:3]}. The file is "
                               f"incomplete or a different model; expected the qwen35_4b.safetensors layout.")
    if unexpected:
        raise WeightsFileError(f"{path}: {len(unexpected)} unexpected tensor(s), e.g. {unexpected[:3]}. "
                               f"This is not the Qwen3.5 Anima encoder layout.")
    for name, shape in expected.items():
        got = infos[name]
        if tuple(got.shape) != tuple(shape):
            raise WeightsFileError(f"{path}: tensor {name} has shape {list(got.shape)}, expected {list(shape)}.")
        if got.dtype not in FLOAT_DTYPES:
            raise WeightsFileError(f"{path}: tensor {name} has dtype {got.dtype}; expected a float dtype "
                                   f"(F8_E4M3 linears, BF16 norms).")
