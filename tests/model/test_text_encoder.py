"""One contract for both encoders (model/text_encoder.py): the 4B `Encoder` and the stock 0.6B `Qwen3Encoder`, which
the alignment fit treats as interchangeable, take the same prompts and ids, and are cached by the same bounded
loaded-encoder cache (model/encoder_cache.py). Every test runs on both, on small synthetic checkpoints."""

import numpy as np
import pytest
import torch

from lib_qwen35.errors import PromptError, WeightsFileError
from lib_qwen35.files.tokenizer import load_qwen3_tokenizer
from lib_qwen35.model import encoder as encoder_module
from lib_qwen35.model import encoder_cache
from lib_qwen35.model import qwen3 as qwen3_module
from lib_qwen35.model.text_encoder import MAX_TOKENS
from lib_qwen35.synthetic import qwen3 as synthetic_qwen3
from lib_qwen35.synthetic import qwen35 as synthetic_qwen35
from lib_qwen35.synthetic.qwen3 import SmallVocabTokenizer

QWEN3_SIZES = {"vocab_size": 300, "hidden_size": 64, "intermediate_size": 96, "num_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32}
KINDS = ("4b", "06b")


@pytest.fixture(scope="module")
def qwen3_ckpts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("q3contract")
    return [synthetic_qwen3.write_checkpoint(folder / f"qwen3_{seed}.safetensors", seed=seed, **QWEN3_SIZES)
            for seed in (3, 4)]


@pytest.fixture(scope="module")
def qwen35_second_ckpt(tmp_path_factory):
    return synthetic_qwen35.write_checkpoint(tmp_path_factory.mktemp("q35contract") / "other.safetensors", seed=1)


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture
def enc(kind, anima_ckpt, qwen3_ckpts):
    """The 4B with its bundled tokenizer; the 0.6B with the real Qwen3 tokenizer folded into its small vocabulary."""
    if kind == "4b":
        return encoder_module.load_encoder(anima_ckpt)
    return qwen3_module.Qwen3Encoder(qwen3_ckpts[0], tokenizer=SmallVocabTokenizer(load_qwen3_tokenizer(),
                                                                                   QWEN3_SIZES["vocab_size"]))


EMPTY_PROMPT = {"4b": [248044], "06b": [151643 % QWEN3_SIZES["vocab_size"]]}


# ---- prompts and ids -------------------------------------------------------------------------------------

def test_the_empty_prompt_is_endoftext(enc, kind):
    assert enc.tokenize("") == enc.empty_prompt_ids == EMPTY_PROMPT[kind]


def test_the_stock_empty_prompt_is_qwen3s_endoftext(qwen3_ckpts):
    """With its real tokenizer (nothing folded), the 0.6B's empty prompt is Qwen3's <|endoftext|>, as Forge feeds it."""
    assert qwen3_module.Qwen3Encoder(qwen3_ckpts[0]).empty_prompt_ids == [151643]


def test_an_empty_id_list_is_the_empty_prompt(enc):
    assert torch.equal(enc.encode_ids([]), enc.encode_ids(enc.tokenize("")))
    empty, other = enc.encode_batch([[], [5, 6]])     # batched: the same up to rounding
    assert torch.allclose(empty, enc.encode_ids(enc.empty_prompt_ids), atol=1e-5) and other.shape[0] == 2


@pytest.mark.parametrize("ids", [[1.7], [1, 2.0], ["7"], [None]])
def test_only_integers_are_ids(enc, ids):
    with pytest.raises(PromptError, match="integers"):
        enc.encode_ids(ids)


def test_numpy_and_torch_integers_are_ids(enc):
    assert torch.equal(enc.encode_ids([np.int64(3), torch.tensor(4)]), enc.encode_ids([3, 4]))


@pytest.mark.parametrize("ids", [None, 7, "1girl", b"1girl"])
def test_something_else_than_ids_is_our_error(enc, ids):
    with pytest.raises(PromptError, match="token ids must be a list of integers.*encode\\(text\\)"):
        enc.encode_ids(ids)


def test_ids_outside_the_vocabulary(enc):
    for bad in ([-1], [1, enc.config.vocab_size]):
        with pytest.raises(PromptError, match="outside the vocabulary"):
            enc.encode_ids(bad)


def test_the_length_limit(enc):
    with pytest.raises(PromptError, match=f"the limit is {MAX_TOKENS}"):
        enc.encode_ids([1] * (MAX_TOKENS + 1))


def test_prompts_must_be_unicode_strings(enc):
    with pytest.raises(PromptError, match="must be a string"):
        enc.tokenize(None)
    with pytest.raises(PromptError, match="not valid Unicode"):
        enc.tokenize("a\udcff")


def test_results_are_float32_rows_per_token(enc):
    batch = enc.encode_batch([[1, 2, 3], [4]])
    assert [o.shape[0] for o in batch] == [3, 1] and all(o.dtype == torch.float32 for o in batch)
    assert torch.equal(enc.encode_ids([4]), enc.encode_batch([[4]])[0])


# ---- the loaded-encoder cache ------------------------------------------------------------------------------

def _loader(kind):
    return encoder_module.load_encoder if kind == "4b" else qwen3_module.load_qwen3_encoder


def _files(kind, anima_ckpt, qwen35_second_ckpt, qwen3_ckpts):
    return (anima_ckpt, qwen35_second_ckpt) if kind == "4b" else tuple(qwen3_ckpts)


def test_a_second_load_reads_no_file(kind, anima_ckpt, qwen35_second_ckpt, qwen3_ckpts, monkeypatch):
    path = _files(kind, anima_ckpt, qwen35_second_ckpt, qwen3_ckpts)[0]
    first = _loader(kind)(path)
    module = encoder_module if kind == "4b" else qwen3_module
    for name in ("read_header", "load_tensors"):
        monkeypatch.setattr(module, name, lambda *a, **k: pytest.fail("the file was read"))
    assert _loader(kind)(path) is first


def test_the_cache_is_bounded(kind, anima_ckpt, qwen35_second_ckpt, qwen3_ckpts):
    a, b = _files(kind, anima_ckpt, qwen35_second_ckpt, qwen3_ckpts)
    load = _loader(kind)
    cache = encoder_cache.QWEN35 if kind == "4b" else encoder_cache.QWEN3
    assert cache.max_entries == 1
    first = load(a)
    assert load(b) is not first and len(cache) == 1          # the other file took its place
    assert load(a) is not first                             # so this one loads again
    cache.max_entries = 2
    try:
        again, other = load(a), load(b)
        assert load(a) is again and load(b) is other and len(cache) == 2
    finally:
        cache.max_entries = 1


def test_a_wrong_file_does_not_evict_the_loaded_encoder(kind, anima_ckpt, qwen35_second_ckpt, qwen3_ckpts, tmp_path):
    path = _files(kind, anima_ckpt, qwen35_second_ckpt, qwen3_ckpts)[0]
    loaded = _loader(kind)(path)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\0" * 100)
    with pytest.raises(WeightsFileError):
        _loader(kind)(bad)
    wrong_model = _files("06b" if kind == "4b" else "4b", anima_ckpt, qwen35_second_ckpt, qwen3_ckpts)[0]
    with pytest.raises(WeightsFileError):
        _loader(kind)(wrong_model)
    assert _loader(kind)(path) is loaded


def test_the_two_encoders_keep_their_own_cache(anima_ckpt, qwen3_ckpts):
    """A fit needs both at once: loading the 0.6B never evicts the 4B, nor the other way round."""
    e4, e6 = encoder_module.load_encoder(anima_ckpt), qwen3_module.load_qwen3_encoder(qwen3_ckpts[0])
    assert encoder_module.load_encoder(anima_ckpt) is e4 and qwen3_module.load_qwen3_encoder(qwen3_ckpts[0]) is e6


def test_a_changed_dtype_is_another_entry(kind, anima_ckpt, qwen35_second_ckpt, qwen3_ckpts):
    path = _files(kind, anima_ckpt, qwen35_second_ckpt, qwen3_ckpts)[0]
    fp32 = _loader(kind)(path, dtype="fp32")
    assert _loader(kind)(path, dtype=torch.float32) is fp32 and _loader(kind)(path, dtype=None) is fp32   # CPU
    bf16 = _loader(kind)(path, dtype="bf16")
    assert bf16 is not fp32 and bf16.dtype == torch.bfloat16
