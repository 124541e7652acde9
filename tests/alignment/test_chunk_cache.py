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
