"""The on-disk chunk cache of pooled embeddings: a damaged or stale chunk is computed again."""

import os

import torch

from fake_encoders import fake_pair

from lib_qwen35.alignment.chunk_cache import embed_prompts
from lib_qwen35.alignment.corpus import generate_corpus


def test_corrupt_or_stale_chunk_is_recomputed(tmp_path):
    e4, e6 = fake_pair()
    prompts = generate_corpus(100)
    ref = embed_prompts(e4, prompts, role="4b", cache_dir=str(tmp_path), chunk_size=50)
    folder = tmp_path / os.listdir(tmp_path)[0]
    first = folder / "chunk-00000.safetensors"
    first.write_bytes(first.read_bytes()[:100])                    # truncated by a kill
    again = embed_prompts(e4, prompts, role="4b", cache_dir=str(tmp_path), chunk_size=50)
    assert torch.equal(ref, again)
    other = embed_prompts(e4, generate_corpus(200)[100:], role="4b", cache_dir=str(tmp_path), chunk_size=50)
    assert not torch.equal(other, ref)                              # different prompts: cache not reused


def test_the_key_tells_the_cpu_bf16_matmuls_from_fp32_and_from_all_bf16():
    """Chunks of another arithmetic are never reused: bf16 matmuls in an fp32 model (the CPU's bf16), the older
    all-bf16 CPU path (same dtype and device, no tag) and fp32 each get their own folder; where everything computes
    in the dtype the key is the one earlier versions wrote, so their chunks stay usable."""
    import hashlib

    from lib_qwen35.alignment.chunk_cache import POOLING_VERSION, encoder_cache_key
    from lib_qwen35.model.devices import numerics_tag

    e = fake_pair()[0]
    fp32 = encoder_cache_key(e)
    assert fp32 == hashlib.sha256(f"fake4b|torch.float32|cpu|{POOLING_VERSION}".encode()).hexdigest()[:16]
    e.dtype = torch.bfloat16
    all_bf16 = encoder_cache_key(e)
    e.numerics = numerics_tag("cpu", torch.bfloat16)
    assert e.numerics == "bf16-matmuls-fp32-rest-v1"
    assert len({fp32, all_bf16, encoder_cache_key(e)}) == 3
    assert numerics_tag("cpu", torch.float32) == "" and numerics_tag("cuda", torch.bfloat16) == ""


def test_both_encoders_give_their_arithmetic_to_the_key(anima_ckpt, tmp_path):
    from lib_qwen35 import load_encoder
    from lib_qwen35.alignment.chunk_cache import encoder_cache_key
    from lib_qwen35.model.qwen3 import Qwen3Encoder
    from lib_qwen35.synthetic.qwen3 import write_checkpoint

    q3 = write_checkpoint(tmp_path / "q3.safetensors", seed=1, vocab_size=300, hidden_size=64, intermediate_size=96,
                          num_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=32)
    for load in (lambda dtype: load_encoder(anima_ckpt, dtype=dtype), lambda dtype: Qwen3Encoder(q3, dtype=dtype)):
        fp32, bf16 = load("fp32"), load("bf16")
        assert fp32.numerics == "" and bf16.numerics == "bf16-matmuls-fp32-rest-v1"
        assert encoder_cache_key(fp32) != encoder_cache_key(bf16)
