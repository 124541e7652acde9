"""The stock Qwen3 encoder equals transformers' Qwen3Model (the arbiter), and loads/validates files."""

import json
import struct

import pytest
import torch

from lib_qwen35.errors import PromptError, WeightsFileError
from lib_qwen35.model.qwen3 import Qwen3Encoder, rms_norm
from lib_qwen35.synthetic.qwen3 import SmallVocabTokenizer, write_checkpoint

SIZES = dict(vocab_size=300, hidden_size=64, intermediate_size=96, num_layers=3,
             num_attention_heads=4, num_key_value_heads=2, head_dim=32)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("q3") / "qwen_3_06b_base.safetensors", seed=3, **SIZES)


@pytest.fixture(scope="module")
def reference(ckpt):
    """transformers Qwen3Model loaded with the very tensors in the synthetic file (fp32)."""
    transformers = pytest.importorskip("transformers")
    from safetensors.torch import load_file

    cfg = transformers.Qwen3Config(
        vocab_size=SIZES["vocab_size"], hidden_size=SIZES["hidden_size"],
        intermediate_size=SIZES["intermediate_size"], num_hidden_layers=SIZES["num_layers"],
        num_attention_heads=SIZES["num_attention_heads"], num_key_value_heads=SIZES["num_key_value_heads"],
        head_dim=SIZES["head_dim"], rope_theta=1e6, rms_norm_eps=1e-6, attention_bias=False,
        tie_word_embeddings=True, max_position_embeddings=4096)
    model = transformers.Qwen3Model(cfg).eval()
    state = {k[len("model."):]: v.float() for k, v in load_file(ckpt).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("rotary" in m for m in missing), (missing, unexpected)
    # the file's norms must be random (not ones), or a zero-centred-norm bug would go unnoticed
    assert (state["layers.0.self_attn.q_norm.weight"] - 1).abs().max() > 0.05
    return model


def _ids(n, seed):
    return torch.randint(0, SIZES["vocab_size"], (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def test_matches_transformers_qwen3model(ckpt, reference):
    enc = Qwen3Encoder(ckpt, dtype=torch.float32)
    assert enc.config.num_layers == 3 and enc.config.num_key_value_heads == 2 and enc.config.head_dim == 32
    for n in (1, 7, 41):
        ids = _ids(n, n)
        with torch.no_grad():
            want = reference(input_ids=torch.tensor([ids])).last_hidden_state[0]
        got = enc.encode_ids(ids)
        assert got.shape == (n, SIZES["hidden_size"]) and got.dtype == torch.float32
        assert (got - want).abs().max().item() <= 1e-4


def test_batch_equals_single(ckpt):
    enc = Qwen3Encoder(ckpt, dtype=torch.float32)
    batch = [_ids(n, 100 + n) for n in (5, 1, 23, 12)]
    outs = enc.encode_batch(batch)
    for ids, out in zip(batch, outs):
        assert out.shape[0] == len(ids)
        assert (out - enc.encode_ids(ids)).abs().max().item() <= 1e-5


def test_plain_weight_norm_not_zero_centred():
    x = torch.randn(3, 8)
    w = torch.full((8,), 2.0)
    want = 2.0 * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
    assert torch.allclose(rms_norm(x, w, 1e-6), want, atol=1e-6)


def test_prefix_detected_and_lm_head_ignored(tmp_path, reference):
    path = write_checkpoint(tmp_path / "noprefix.safetensors", seed=3, prefix="", with_lm_head=True, **SIZES)
    enc = Qwen3Encoder(path, dtype=torch.float32)
    assert enc.prefix == ""
    ids = _ids(9, 9)
    with torch.no_grad():
        want = reference(input_ids=torch.tensor([ids])).last_hidden_state[0]
    assert (enc.encode_ids(ids) - want).abs().max().item() <= 1e-4


def test_fp32_and_fp16_files_load(tmp_path):
    for dt in ("fp32", "fp16"):
        path = write_checkpoint(tmp_path / f"{dt}.safetensors", seed=1, dtype=dt, **SIZES)
        out = Qwen3Encoder(path).encode_ids([1, 2, 3])
        assert out.shape == (3, 64) and torch.isfinite(out).all()


def test_bad_ids(ckpt):
    enc = Qwen3Encoder(ckpt)
    with pytest.raises(PromptError, match="outside"):
        enc.encode_ids([1, SIZES["vocab_size"]])
    # an empty id list is the empty prompt, as in the 4B encoder: tests/model/test_text_encoder.py


class _FakeTokenizer:
    def encode(self, text):
        return [ord(c) for c in text]


def test_tokenize_empty_prompt_is_endoftext(ckpt):
    enc = Qwen3Encoder(ckpt, tokenizer=SmallVocabTokenizer(_FakeTokenizer(), SIZES["vocab_size"]))
    assert enc.tokenize("") == [151643 % SIZES["vocab_size"]]
    assert enc.tokenize("ab") == [97, 98]
    assert enc.encode("ab").shape == (2, 64)


def test_real_qwen3_tokenizer_ids():
    """The stock encoder tokenizes with the Qwen3 (not Qwen3.5) vocabulary (ids from the notes)."""
    from lib_qwen35.files.tokenizer import load_qwen3_tokenizer

    ids = load_qwen3_tokenizer().encode("1girl, from side, looking at viewer, masterpiece")
    assert ids == [16, 28552, 11, 504, 3108, 11, 3330, 518, 25708, 11, 58731]


def _write_raw(path, header: dict, data: bytes):
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + data)


def test_validation_errors(tmp_path, ckpt):
    from safetensors.torch import load_file, save_file

    with pytest.raises(WeightsFileError, match="not found"):
        Qwen3Encoder(tmp_path / "absent.safetensors")
    # not a Qwen3 file at all
    save_file({"foo.weight": torch.zeros(2)}, str(tmp_path / "foo.safetensors"))
    with pytest.raises(WeightsFileError, match="not a Qwen3"):
        Qwen3Encoder(tmp_path / "foo.safetensors")
    # a Qwen3.5 file given to the stock encoder
    save_file({"model.layers.0.linear_attn.in_proj_qkv.weight": torch.zeros(2, 2)},
              str(tmp_path / "q35.safetensors"))
    with pytest.raises(WeightsFileError, match="Qwen3.5"):
        Qwen3Encoder(tmp_path / "q35.safetensors")
    state = load_file(ckpt)
    # missing tensor
    broken = {k: v for k, v in state.items() if k != "model.layers.1.mlp.up_proj.weight"}
    save_file(broken, str(tmp_path / "missing.safetensors"))
    with pytest.raises(WeightsFileError, match="layers.1.mlp.up_proj.weight.*missing"):
        Qwen3Encoder(tmp_path / "missing.safetensors")
    # wrong shape
    bad = dict(state)
    bad["model.layers.2.self_attn.o_proj.weight"] = torch.zeros(64, 100, dtype=torch.bfloat16)
    save_file(bad, str(tmp_path / "shape.safetensors"))
    with pytest.raises(WeightsFileError, match="o_proj.weight.*shape"):
        Qwen3Encoder(tmp_path / "shape.safetensors")
    # a gap in the layers
    gap = {k: v for k, v in state.items() if ".layers.1." not in k}
    save_file(gap, str(tmp_path / "gap.safetensors"))
    with pytest.raises(WeightsFileError, match=r"layers \[1\] are missing"):
        Qwen3Encoder(tmp_path / "gap.safetensors")
    # unsupported dtype
    i8 = dict(state)
    i8["model.norm.weight"] = torch.zeros(64, dtype=torch.int8)
    save_file(i8, str(tmp_path / "int8.safetensors"))
    with pytest.raises(WeightsFileError, match="stored as I8"):
        Qwen3Encoder(tmp_path / "int8.safetensors")
    # truncated file
    blob = open(ckpt, "rb").read()
    open(tmp_path / "trunc.safetensors", "wb").write(blob[: len(blob) // 2])
    with pytest.raises(WeightsFileError, match="truncated"):
        Qwen3Encoder(tmp_path / "trunc.safetensors")


def test_weights_stay_as_stored_and_bf16_matmuls_stay_close_to_fp32(ckpt):
    """The linears keep the file's BF16 (half the RAM of fp32 copies), fused where they read the same input; bf16
    matmuls in an fp32 model (the CPU's bf16) agree with the fp32 path to the bound the 4B is held to."""
    exact = Qwen3Encoder(ckpt, dtype=torch.float32)
    half = Qwen3Encoder(ckpt, dtype=torch.bfloat16)
    assert {lin.weight.dtype for lin in exact._lin.values()} == {torch.bfloat16} and len(exact._lin) == 4 * 3
    assert half.activation_dtype == torch.float32 and half.numerics == "bf16-matmuls-fp32-rest-v1"
    assert exact.numerics == ""
    batch = [_ids(n, 200 + n) for n in (5, 1, 23, 12)]
    for a, b in zip(exact.encode_batch(batch), half.encode_batch(batch)):
        assert b.dtype == torch.float32 and not torch.equal(a, b)
        assert torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1).min().item() >= 0.9995


def test_packed_forward_is_the_padded_forward(ckpt):
    enc = Qwen3Encoder(ckpt, dtype=torch.float32)
    lengths = [5, 1, 23, 12]
    ids = torch.zeros(4, 23, dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.tensor(_ids(n, 300 + n))
    padded, packed = enc._forward(ids), enc._forward(ids, lengths)
    for i, n in enumerate(lengths):
        assert (packed[i, :n] - padded[i, :n]).abs().max().item() <= 1e-6 * padded[i, :n].abs().max().item()
        assert not packed[i, n:].any()
