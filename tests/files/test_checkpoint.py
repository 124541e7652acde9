"""Loading the real layout, and a specific error for every bad weights file."""

import os
import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from lib_qwen35 import WeightsFileError, load_encoder
from lib_qwen35.files.checkpoint import read_header
from lib_qwen35.model.linear import FP8_DTYPES, StoredLinear
from lib_qwen35.ops import fp8_recode
from lib_qwen35.synthetic import qwen35 as synthetic


def _tensors(path):
    with safe_open(path, framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def _rewrite(src, dst, edit):
    t = _tensors(src)
    edit(t)
    save_file(t, dst)
    return dst


def _expected_anima_names(n_layers=32):
    """The Anima file's key set, written out from the notes (not from our config code)."""
    names = {"embed_tokens.weight", "norm.0.weight", "norm.0.bias", "norm.1.weight", "norm.3.weight", "norm.3.bias"}
    for i in range(n_layers):
        L = f"layers.{i}."
        names.add(L + "input_layernorm.weight")
        if (i + 1) % 4 == 0:
            names |= {L + f"self_attn.{n}.weight" for n in ("q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm")}
        else:
            names |= {L + f"linear_attn.{n}.weight" for n in
                      ("in_proj_qkv", "in_proj_z", "in_proj_b", "in_proj_a", "out_proj", "conv1d", "norm")}
            names |= {L + "linear_attn.A_log", L + "linear_attn.dt_bias"}
        if i != n_layers - 1:
            names.add(L + "post_attention_layernorm.weight")
            names |= {L + f"mlp.{n}.weight" for n in ("gate_proj", "up_proj", "down_proj")}
    return names


@pytest.mark.parametrize("streamed", [False, True])
def test_full_depth_file_has_the_real_426_tensor_layout(tmp_path, streamed):
    sizes = dict(num_layers=32, hidden_size=32, intermediate_size=32)
    path = (synthetic.write_checkpoint_streamed(tmp_path / "deep.safetensors", chunk_elements=100, **sizes)
            if streamed else synthetic.write_checkpoint(tmp_path / "deep.safetensors", **sizes))
    infos = read_header(path)
    assert len(infos) == 426
    assert set(infos) == _expected_anima_names()
    for name, info in infos.items():
        if re.search(r"(proj|proj_\w+)\.weight$", name) or name in ("norm.0.weight", "norm.3.weight"):
            assert info.dtype == "F8_E4M3", name
        elif "norm" in name and name.endswith("weight"):
            assert info.dtype == "BF16", name
    enc = load_encoder(path)
    assert enc.config.num_layers == 32 and enc.config.layers_with_mlp == list(range(31))
    assert enc.encode_ids([1, 2, 3]).shape == (3, 1024)


def test_streamed_writer_lays_out_the_file_as_safetensors_does_and_refuses_foreign_files(tmp_path):
    path = synthetic.write_checkpoint_streamed(tmp_path / "s.safetensors", seed=3, chunk_elements=1000)
    infos = read_header(path)
    written = read_header(synthetic.write_checkpoint(tmp_path / "w.safetensors", seed=3))   # safetensors' own writer
    assert {n: (i.dtype, i.shape, i.offset, i.nbytes) for n, i in infos.items()} == \
        {n: (i.dtype, i.shape, i.offset, i.nbytes) for n, i in written.items()}
    assert _tensors(path)["embed_tokens.weight"].float().std().item() == pytest.approx(1.0, rel=0.05)
    again = synthetic.write_checkpoint_streamed(path, seed=3, chunk_elements=1000)   # ours: replaced
    assert again == str(path)
    foreign = tmp_path / "user.safetensors"
    save_file({"x": torch.zeros(2)}, foreign)
    with pytest.raises(Exception, match="refusing to overwrite"):
        synthetic.write_checkpoint_streamed(foreign)


def test_fp8_weights_stay_fp8_in_memory(anima_ckpt):
    enc = load_encoder(anima_ckpt, upcast_cache_bytes=0)
    linears = [m for m in enc.backbone.modules() if isinstance(m, StoredLinear)]
    # one byte a weight: E4M3, or E4M3 in the CPU's own code while the encoder computes on the CPU
    assert linears and all(m.weight.dtype in (*FP8_DTYPES, fp8_recode.DTYPE) for m in linears)
    assert all(m._cached is None for m in linears)
    assert enc.weights_dtype == "fp8"


def test_fp8_checkpoint_equals_dequantised_weights(tmp_path, anima_ckpt):
    deq = _rewrite(anima_ckpt, tmp_path / "deq.safetensors",
                   lambda t: t.update({k: v.float() for k, v in t.items()}))
    ids = list(range(300, 400))
    a = load_encoder(anima_ckpt, upcast_cache_bytes=0).encode_ids(ids)
    b = load_encoder(deq).encode_ids(ids)
    assert (a - b).abs().max().item() < 1e-5


@pytest.mark.parametrize("prefix", ["model.", "text_encoders.qwen35_4b.transformer.model."])
def test_key_prefix_is_detected(tmp_path, prefix):
    path = synthetic.write_checkpoint(tmp_path / "p.safetensors", prefix=prefix)
    assert next(iter(read_header(path))).startswith(prefix)
    assert load_encoder(path).encode_ids([5, 6]).shape == (2, 1024)


@pytest.mark.parametrize("shards", [1, 3])
def test_official_layout_loads_as_backbone_without_head(tmp_path, shards):
    path = synthetic.write_checkpoint(tmp_path / "official", layout="official", shards=shards) if shards > 1 else \
        synthetic.write_checkpoint(tmp_path / "official.safetensors", layout="official")
    enc = load_encoder(path)
    assert not enc.config.has_head and enc.config.has_final_norm
    assert enc.encode_ids([7, 8, 9]).shape == (3, enc.config.hidden_size)


# ---- bad inputs: each with a specific message -------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(WeightsFileError, match="not found"):
        load_encoder(tmp_path / "nope.safetensors")


def test_not_a_safetensors_file(tmp_path):
    p = tmp_path / "junk.safetensors"
    p.write_bytes(os.urandom(4096))
    with pytest.raises(WeightsFileError, match="not a safetensors file"):
        load_encoder(p)


def test_truncated_file(tmp_path, anima_ckpt):
    p = tmp_path / "cut.safetensors"
    data = open(anima_ckpt, "rb").read()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsFileError, match="truncated"):
        load_encoder(p)


def test_stock_qwen3_06b_picked_by_mistake(tmp_path):
    t = {"model.embed_tokens.weight": torch.zeros(16, 1024, dtype=torch.bfloat16)}
    for i in range(28):
        t[f"model.layers.{i}.self_attn.q_norm.weight"] = torch.ones(128, dtype=torch.bfloat16)
        t[f"model.layers.{i}.self_attn.q_proj.weight"] = torch.zeros(8, 1024, dtype=torch.bfloat16)
    save_file(t, tmp_path / "qwen_3_06b_base.safetensors")
    with pytest.raises(WeightsFileError, match=r"Qwen3-0\.6B.*28 attention-only layers.*qwen35_4b"):
        load_encoder(tmp_path / "qwen_3_06b_base.safetensors")


def test_anima_dit_picked_by_mistake(tmp_path):
    save_file({"net.blocks.0.self_attn.q_proj.weight": torch.zeros(4, 4),
               "net.llm_adapter.blocks.0.x": torch.zeros(2)}, tmp_path / "anima.safetensors")
    with pytest.raises(WeightsFileError, match="diffusion model"):
        load_encoder(tmp_path / "anima.safetensors")


def test_missing_tensor(tmp_path, anima_ckpt):
    p = _rewrite(anima_ckpt, tmp_path / "m.safetensors", lambda t: t.pop("layers.2.linear_attn.A_log"))
    with pytest.raises(WeightsFileError, match="missing.*layers.2.linear_attn.A_log"):
        load_encoder(p)


def test_unexpected_tensor(tmp_path, anima_ckpt):
    p = _rewrite(anima_ckpt, tmp_path / "u.safetensors", lambda t: t.update({"layers.0.extra.weight": torch.zeros(3)}))
    with pytest.raises(WeightsFileError, match="unexpected.*layers.0.extra.weight"):
        load_encoder(p)


def test_wrong_shape(tmp_path, anima_ckpt):
    p = _rewrite(anima_ckpt, tmp_path / "s.safetensors",
                 lambda t: t.update({"layers.1.mlp.up_proj.weight": torch.zeros(100, 64).to(torch.float8_e4m3fn)}))
    with pytest.raises(WeightsFileError, match=r"layers.1.mlp.up_proj.weight has shape \[100, 64\], expected \[128, 64\]"):
        load_encoder(p)


def test_wrong_dtype(tmp_path, anima_ckpt):
    p = _rewrite(anima_ckpt, tmp_path / "d.safetensors",
                 lambda t: t.update({"layers.0.input_layernorm.weight": torch.zeros(64, dtype=torch.int32)}))
    with pytest.raises(WeightsFileError, match="dtype I32"):
        load_encoder(p)


@pytest.mark.parametrize("name", ["layers.0.linear_attn.in_proj_qkv.weight", "layers.3.self_attn.q_norm.weight"])
def test_non_finite_weights(tmp_path, anima_ckpt, name):
    def poison(t):
        w = t[name].float()
        w.view(-1)[7] = float("nan")
        t[name] = w.to(t[name].dtype)
    p = _rewrite(anima_ckpt, tmp_path / "nan.safetensors", poison)
    with pytest.raises(WeightsFileError, match=f"{re.escape(name)} contains NaN"):
        load_encoder(p)


def test_synthetic_checkpoints_are_marked_and_a_real_layout_file_is_not(tmp_path, anima_ckpt):
    """What tells a demo fit's random encoder from a real download: the synthetic writers' header mark (files,
    sharded indexes, the streamed writer, the 0.6B layout); the same tensors saved without it are not synthetic."""
    from safetensors import safe_open

    from lib_qwen35.files.checkpoint import encoder_hash, is_synthetic_checkpoint, short_hash
    from lib_qwen35.synthetic import qwen3 as synthetic_qwen3

    assert is_synthetic_checkpoint(anima_ckpt)
    sharded = synthetic.write_checkpoint(tmp_path / "sharded", layout="official", shards=2)
    assert is_synthetic_checkpoint(sharded) and is_synthetic_checkpoint(tmp_path / "sharded")
    streamed = synthetic.write_checkpoint_streamed(tmp_path / "streamed.safetensors", num_layers=4)
    assert is_synthetic_checkpoint(streamed)
    assert is_synthetic_checkpoint(synthetic_qwen3.write_checkpoint(tmp_path / "qwen3.safetensors"))
    with safe_open(str(anima_ckpt), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(tmp_path / "download.safetensors"), metadata={"format": "pt"})
    assert not is_synthetic_checkpoint(tmp_path / "download.safetensors")
    for nothing in (tmp_path / "missing.safetensors", tmp_path):    # unreadable: not synthetic, no exception
        assert not is_synthetic_checkpoint(nothing)
    assert encoder_hash(anima_ckpt) == short_hash(anima_ckpt)
    assert sharded.endswith(".index.json") and encoder_hash(tmp_path / "sharded") == short_hash(sharded)
