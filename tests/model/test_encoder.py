"""Encoder behaviour: prompts in, caches, errors."""

import pytest
import torch

from lib_qwen35 import Alignment, Calibration, NonFiniteOutputError, PromptError, load_encoder
from lib_qwen35.files import checkpoint
from lib_qwen35.model import embedding_cache


def test_empty_prompt_is_endoftext(anima_ckpt):
    enc = load_encoder(anima_ckpt)
    assert enc.tokenize("") == enc.empty_prompt_ids == [248044]
    assert enc.encode("").shape == (1, 1024)


def test_example_prompt_ids(anima_ckpt):
    enc = load_encoder(anima_ckpt)
    assert enc.tokenize("1girl, from side, looking at viewer, masterpiece") == \
        [16, 27620, 11, 494, 3008, 11, 3221, 506, 24890, 11, 56744]


def test_long_prompt_over_10000_tokens(anima_ckpt):
    enc = load_encoder(anima_ckpt)
    text = "masterpiece, 1girl, silver hair, red eyes, cherry blossoms, " * 900
    ids = enc.tokenize(text)
    assert len(ids) > 10000
    out = enc.encode_ids(ids)
    assert out.shape == (len(ids), 1024) and torch.isfinite(out).all()


def test_bad_prompts(anima_ckpt):
    enc = load_encoder(anima_ckpt)
    with pytest.raises(PromptError, match="must be a string"):
        enc.tokenize(None)
    with pytest.raises(PromptError, match="outside the vocabulary"):
        enc.encode_ids([1, 2, 10 ** 7])
    with pytest.raises(PromptError, match="limit"):
        enc.encode_ids([1] * 200000)


def test_second_encode_reads_no_file_and_runs_no_backbone(anima_ckpt, monkeypatch):
    enc = load_encoder(anima_ckpt)
    first = enc.encode("a cat on a roof")
    runs = enc.stats["backbone_runs"]
    reads = []
    import lib_qwen35.model.encoder as encoder_module
    for mod, name in ((checkpoint, "read_file_header"), (encoder_module, "read_header"),
                      (encoder_module, "load_tensors")):
        monkeypatch.setattr(mod, name, lambda *a, **k: reads.append(a))
    monkeypatch.setattr(type(enc.backbone), "forward", lambda *a, **k: pytest.fail("backbone ran"))
    again = load_encoder(anima_ckpt)               # same object, no reload
    assert again is enc
    assert torch.equal(again.encode("a cat on a roof"), first)
    assert enc.stats["backbone_runs"] == runs and enc.stats["cache_hits"] >= 1 and not reads


def test_output_stage_changes_do_not_rerun_backbone(anima_ckpt):
    enc = load_encoder(anima_ckpt)
    d = 1024
    al = Alignment(torch.eye(d), torch.zeros(d), torch.ones(d))
    cal = Calibration(2 * torch.ones(d), torch.zeros(d))
    raw = enc.encode("sunset over the sea")
    runs = enc.stats["backbone_runs"]
    for kw in ({"output_scale": 2.0}, {"alignment": al, "strength": 0.5}, {"calibration": cal}):
        enc.encode("sunset over the sea", **kw)
    assert enc.stats["backbone_runs"] == runs
    assert torch.allclose(enc.encode("sunset over the sea", output_scale=2.0), 2 * raw)


def test_changed_file_is_reloaded(tmp_path):
    from lib_qwen35.synthetic import qwen35 as synthetic

    p = synthetic.write_checkpoint(tmp_path / "w.safetensors", seed=1)
    a = load_encoder(p).encode_ids([1, 2, 3])
    synthetic.write_checkpoint(p, seed=2)          # same path, new contents (size/mtime change)
    import os
    os.utime(p, ns=(1, 1))
    b = load_encoder(p).encode_ids([1, 2, 3])
    assert not torch.allclose(a, b)


def test_embedding_lru_is_bounded():
    lru = embedding_cache.EmbeddingLRU(max_entries=2, max_bytes=10_000)
    for i in range(3):
        lru.put(i, torch.zeros(2, 100))
    assert len(lru) == 2 and lru.get(0) is None and lru.get(2) is not None
    lru.put("big", torch.zeros(100, 100))           # larger than the byte budget: not stored
    assert lru.get("big") is None


@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
def test_non_finite_output_is_reported_with_the_fix_for_its_dtype(anima_ckpt, monkeypatch, dtype):
    """fp16 overflows: switch dtype. fp32 (and bf16, the same range) do not with sound weights: the file is at
    fault, and telling an fp32 run to "use bf16 or fp32" would send the user in a circle."""
    enc = load_encoder(anima_ckpt, dtype=dtype)
    monkeypatch.setattr(enc.backbone, "forward", lambda ids, dtype, lengths=None: torch.full((*ids.shape, 1024),
                                                                                              float("nan")))
    with pytest.raises(NonFiniteOutputError) as caught:
        enc.encode_ids([4, 5, 6])
    message = str(caught.value)
    assert "NaN/Inf" in message and str(anima_ckpt) in message
    if dtype == "fp16":
        assert "bf16 or fp32" in message
    else:
        assert "bf16 or fp32" not in message and "re-download" in message


@pytest.mark.parametrize("ids", [None, 7, "1girl", b"1girl"])
def test_encode_ids_of_something_else_than_ids_is_our_error(anima_ckpt, ids):
    from lib_qwen35.errors import PromptError

    with pytest.raises(PromptError, match="token ids must be a list of integers.*encode\\(text\\)"):
        load_encoder(anima_ckpt).encode_ids(ids)


def test_fp16_and_bf16_compute_agree_with_fp32(anima_ckpt):
    ids = list(range(2000, 2060))
    ref = load_encoder(anima_ckpt, dtype="fp32").encode_ids(ids)
    got = load_encoder(anima_ckpt, dtype="bf16").encode_ids(ids)
    cos = torch.nn.functional.cosine_similarity(ref, got, dim=-1)
    assert cos.min().item() > 0.99


def test_cuda_graphs_can_be_switched_off_without_reload(anima_ckpt):
    enc = load_encoder(anima_ckpt)
    assert "CUDA graphs off" in enc.fast_path_status()          # CPU: never on
    enc.set_cuda_graphs(False)
    assert "off (requested)" in enc.fast_path_status()
    assert load_encoder(anima_ckpt) is enc


def test_cached_embeddings_are_not_shared_with_callers(anima_ckpt):
    enc = load_encoder(anima_ckpt)
    ids = [11, 12, 13]
    first = enc.encode_ids(ids)
    with torch.inference_mode():
        first.mul_(0)                                 # a caller modifying its result in place
    again = enc.encode_ids(ids)
    assert enc.stats["cache_hits"] >= 1 and again.abs().sum() > 0


def test_cache_entries_hold_only_their_own_rows(anima_ckpt):
    enc = load_encoder(anima_ckpt)
    short, long_ = [5], list(range(100, 1100))
    enc.encode_batch([long_, short])
    hit = embedding_cache.EMBEDDINGS.get((enc._emb_key, tuple(short)))
    assert hit.shape == (1, 1024) and hit.untyped_storage().nbytes() == 1024 * 4


def test_a_wrong_file_does_not_evict_the_loaded_encoder(anima_ckpt, tmp_path):
    from lib_qwen35 import WeightsFileError

    enc = load_encoder(anima_ckpt)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\0" * 100)
    with pytest.raises(WeightsFileError):
        load_encoder(bad)
    assert load_encoder(anima_ckpt) is enc


def test_unusable_devices_and_ids_are_reported(anima_ckpt):
    from lib_qwen35 import Qwen35Error

    with pytest.raises(Qwen35Error, match="unknown device"):
        load_encoder(anima_ckpt, device="foo")
    if not torch.cuda.is_available():
        with pytest.raises(Qwen35Error, match="CUDA is not available"):
            load_encoder(anima_ckpt, device="cuda")
    enc = load_encoder(anima_ckpt)
    with pytest.raises(PromptError, match="integers"):
        enc.encode_ids([1.7])
    with pytest.raises(PromptError, match="not valid Unicode"):
        enc.tokenize("a\udcff")
