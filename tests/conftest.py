"""Shared fixtures: small synthetic checkpoints written once per test session."""

import os
import sys

import pytest
import torch

TESTS = os.path.dirname(os.path.abspath(__file__))
# "auto" on the CPU is bf16 on CPUs with native bf16 (model/devices.py): the suite pins it to fp32 so that every
# machine runs the same numbers (tests/model/test_cpu_bf16.py sets it itself); a developer's own value is kept
os.environ.setdefault("QWEN35_CPU_BF16", "off")
# the repository (lib_qwen35) and tests/ itself (repo.py, reference.py, header_files.py, stubs/, live/), whatever
# folder below tests/ a test module sits in
sys.path[:0] = [os.path.dirname(TESTS), TESTS]

from lib_qwen35.model import embedding_cache, encoder_cache  # noqa: E402
from lib_qwen35.synthetic import qwen35 as synthetic  # noqa: E402


@pytest.fixture(scope="session")
def ckpt_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ckpt")


@pytest.fixture(scope="session")
def anima_ckpt(ckpt_dir):
    """Anima layout (FP8 linears, BF16 norms, head), small sizes, seed 0."""
    return synthetic.write_checkpoint(ckpt_dir / "qwen35_small.safetensors", seed=0)


ENGINE_GENERATIONS = ("legacy", "qwen06-anima", "qwen06")  # Forge Neo's Anima text engines (tests/stubs/forge_neo)


@pytest.fixture(params=ENGINE_GENERATIONS)
def engine_generation(request):
    """Every stand-in Forge test runs on each generation of Anima's text engine."""
    return request.param


@pytest.fixture(autouse=True)
def _fresh_caches():
    encoder_cache.QWEN35.clear()
    encoder_cache.QWEN3.clear()
    embedding_cache.EMBEDDINGS.clear()
    torch.manual_seed(0)
    yield
