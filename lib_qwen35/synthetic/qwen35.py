"""Scaled-down Qwen3.5 checkpoints in the real key layout and dtypes, with random weights.

The real `qwen35_4b.safetensors` (4.78 GB) is not redistributable in tests; these files go through the
same loader, validation and forward pass. Anima layout: FP8 E4M3 linears, BF16 norms/embedding,
last layer without MLP, no model.norm, projection head `norm.{0,1,3}` (head output always 1024).
Official layout: Qwen/Qwen3.5-4B keys (`model.language_model.` prefix, all MLPs, `model.norm`,
`model.visual.*`/`mtp.*` present and ignored), optionally sharded with an index.
"""

from __future__ import annotations

import json
import math
import os
import struct

import torch

from ..files import safe_io
from ..files.checkpoint import SAFETENSORS_DTYPES, SYNTHETIC_MARK, written_by_us
from ..model.config import Qwen35Config, expected_shapes

# Small but structurally complete: two 4-layer groups, GQA and grouped value heads, partial RoPE.
SMALL = dict(hidden_size=64, intermediate_size=128, num_layers=8, num_attention_heads=4, num_key_value_heads=2,
             head_dim=32, linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=16,
             linear_value_head_dim=16, vocab_size=248320, head_out=1024)
# The real 4B sizes (for GPU benchmarks with random weights).
FULL = dict(hidden_size=2560, intermediate_size=9216, num_layers=32, num_attention_heads=16, num_key_value_heads=4,
            head_dim=256, linear_num_key_heads=16, linear_num_value_heads=32, linear_key_head_dim=128,
            linear_value_head_dim=128, vocab_size=248320, head_out=1024)


def make_config(layout: str = "anima", **sizes) -> Qwen35Config:
    s = {**SMALL, **sizes}
    n = s.pop("num_layers")
    types = ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(n)]
    anima = layout == "anima"
    return Qwen35Config(layer_types=types, layers_with_mlp=list(range(n - 1 if anima else n)),
                        has_final_norm=not anima, has_head=anima, **s)


def _random_tensor(name: str, shape: tuple, g: torch.Generator, device) -> torch.Tensor:
    """One weight with a realistic scale for its role (norm offsets, A_log, dt_bias all random)."""
    r = torch.randn(shape, generator=g, device=device)
    if name.endswith(("layernorm.weight", "q_norm.weight", "k_norm.weight")) or name == "norm.weight":
        return 0.1 * r                                                      # zero-centred offsets
    if name.endswith("linear_attn.norm.weight"):
        return 1.0 + 0.1 * r                                                # plain weight
    if name == "head.norm.1.weight":
        return -0.003 + 0.001 * r                                           # as in the real file
    if name.endswith("A_log"):
        return torch.rand(shape, generator=g, device=device).mul(15.0).add(1.0).log()   # log U(1, 16)
    if name.endswith("dt_bias") or name == "embed_tokens.weight":
        return r
    if name.endswith(".bias"):
        return 0.02 * r
    if name.endswith("conv1d.weight"):
        return r / math.sqrt(shape[-1])
    return 0.5 * r / math.sqrt(shape[1])                                    # linears [out, in]: activations O(1)


def random_weights(cfg: Qwen35Config, seed: int = 0, device="cpu", stored: bool = False) -> dict[str, torch.Tensor]:
    """Canonical-name random weights, float32 on `device`; `stored=True` casts each tensor to the file's
    dtype as soon as it is drawn and returns it on the CPU (full-size weights drawn on a GPU: the CPU
    generator needs minutes and 17 GB of fp32 for the 4B sizes)."""
    g = torch.Generator(device=device).manual_seed(seed)
    out = {}
    for name, shape in expected_shapes(cfg, "", "head." if cfg.has_head else None).items():
        t = _random_tensor(name, shape, g, device)
        out[name] = t.to(storage_dtype(name)).cpu() if stored else t
    return out


def storage_dtype(name: str) -> torch.dtype:
    """The dtype the real Anima file uses for a tensor of this (canonical) name."""
    if name.endswith(".weight") and not name.endswith(("norm.weight", "conv1d.weight", "embed_tokens.weight",
                                                       "head.norm.1.weight")):
        return torch.float8_e4m3fn
    if name.endswith(("A_log", "dt_bias")):
        return torch.float32
    return torch.bfloat16


def file_name(canonical: str, layout: str, prefix: str | None = None) -> str:
    if canonical.startswith("head."):
        return (prefix or "") + canonical[5:]
    if prefix is None:
        prefix = "model.language_model." if layout == "official" else ""
    return prefix + canonical


def save_synthetic(tensors: dict, path, metadata: dict) -> str:
    """Write a synthetic .safetensors file: never over a file the library did not write; atomically."""
    from safetensors.torch import save_file

    path = safe_io.check_output(path, "synthetic checkpoint", ours=lambda p: written_by_us(p, synthetic=True))
    with safe_io.atomic_output(path) as tmp:
        save_file(tensors, tmp, metadata={**metadata, "synthetic": SYNTHETIC_MARK})
    return path


def _is_synthetic_index(path) -> bool:
    data = json.loads(safe_io.read_text(path, "index", 64 << 20))
    return isinstance(data, dict) and data.get("metadata", {}).get(safe_io.MARK_KEY) == SYNTHETIC_MARK


def write_checkpoint(path, *, seed: int = 0, layout: str = "anima", prefix: str | None = None,
                     shards: int = 1, weights: dict | None = None, **sizes) -> str:
    """Write a random checkpoint; returns the path to load (the index for a sharded official file).
    `weights` (canonical names, float) overrides the random ones; they are cast to the real dtypes."""
    if layout not in ("anima", "official"):
        raise ValueError("layout must be 'anima' or 'official'")
    cfg = make_config(layout, **sizes)
    w = weights if weights is not None else random_weights(cfg, seed)
    tensors = {file_name(k, layout, prefix): v.to(storage_dtype(k) if layout == "anima" else torch.bfloat16)
               .contiguous() for k, v in w.items()}
    if layout == "official":   # multimodal extras that a text encoder must ignore
        tensors["model.visual.patch_embed.proj.weight"] = torch.zeros(8, 3, 2, 2, dtype=torch.bfloat16)
        tensors["mtp.fc.weight"] = torch.zeros(8, 8, dtype=torch.bfloat16)
    path = os.fspath(path)
    meta = {"format": "pt"}
    if shards <= 1:
        save_synthetic(tensors, path, meta)
        return path
    os.makedirs(path, exist_ok=True)
    index = safe_io.check_output(os.path.join(path, "model.safetensors.index.json"), "synthetic index",
                                 ours=_is_synthetic_index)
    names = sorted(tensors)
    weight_map = {}
    for s in range(shards):
        shard = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[s::shards]}
        save_synthetic(part, os.path.join(path, shard), meta)
        weight_map.update({n: shard for n in part})
    safe_io.write_text_atomic(index, json.dumps({"metadata": {safe_io.MARK_KEY: SYNTHETIC_MARK},
                                                 "weight_map": weight_map}, indent=1, sort_keys=True))
    return index


STREAM_CHUNK_ELEMENTS = 1 << 24     # one fp32 draw of at most 64 MB at a time


def write_checkpoint_streamed(path, *, seed: int = 0, chunk_elements: int = STREAM_CHUNK_ELEMENTS, **sizes) -> str:
    """Write a random Anima-layout checkpoint tensor by tensor, each drawn in row chunks and written as soon as
    it is cast to its stored dtype: memory stays at one chunk (~64 MB of fp32) whatever the size, so the real
    4B sizes (`**FULL`, 4.8 GB on disk, 17 GB as fp32) can be written on a small machine. Same key names,
    dtypes, metadata mark and byte layout rules as `write_checkpoint` (safetensors order: larger dtypes first,
    then by name; an 8-byte aligned JSON header); the values differ (drawn per chunk). Atomic, and never over
    a file the library did not write. Returns the path."""
    names = {dtype: name for name, dtype in SAFETENSORS_DTYPES.items()}   # torch dtype -> the header's name
    cfg = make_config("anima", **sizes)
    shapes = {file_name(k, "anima"): (k, tuple(v)) for k, v in
              expected_shapes(cfg, "", "head." if cfg.has_head else None).items()}
    dtypes = {n: storage_dtype(k) for n, (k, _) in shapes.items()}
    order = sorted(shapes, key=lambda n: (-dtypes[n].itemsize, n))
    header, offset = {}, 0
    for n in order:
        nbytes = math.prod(shapes[n][1]) * dtypes[n].itemsize
        header[n] = {"dtype": names[dtypes[n]], "shape": list(shapes[n][1]),
                     "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    header["__metadata__"] = {"format": "pt", "synthetic": SYNTHETIC_MARK}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)

    path = safe_io.check_output(os.fspath(path), "synthetic checkpoint",
                                ours=lambda p: written_by_us(p, synthetic=True))
    g = torch.Generator().manual_seed(seed)
    with safe_io.atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            for n in order:
                canonical, shape = shapes[n]
                rows = max(1, chunk_elements // max(1, math.prod(shape[1:])))
                for r in range(0, shape[0], rows):
                    part = (min(rows, shape[0] - r),) + shape[1:]     # row chunks keep shape[1:], which sets the scale
                    t = _random_tensor(canonical, part, g, "cpu").to(dtypes[n]).contiguous()
                    f.write(memoryview(t.view(torch.uint8).numpy()))
    return path


def dequantised(weights: dict[str, torch.Tensor], layout: str = "anima") -> dict[str, torch.Tensor]:
    """What the file holds after its dtype round trip, back in float32 (reference for tests)."""
    return {k: v.to(storage_dtype(k) if layout == "anima" else torch.bfloat16).float() for k, v in weights.items()}
