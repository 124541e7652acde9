"""The chunked delta-rule kernel against the per-token recurrence (our reference) and transformers'."""

import sys
import types

import pytest
import torch
import torch.nn.functional as F

from lib_qwen35.ops import delta_rule
from lib_qwen35.ops.delta_rule import chunk_gated_delta_rule, pick_kernel, recurrent_gated_delta_rule


def _inputs(B, T, H, K, V, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = F.normalize(torch.randn(B, T, H, K, generator=g), dim=-1) * K ** -0.5
    k = F.normalize(torch.randn(B, T, H, K, generator=g), dim=-1)
    v = torch.randn(B, T, H, V, generator=g)
    decay = -3 * torch.rand(B, T, H, generator=g)
    beta = torch.rand(B, T, H, generator=g)
    return q, k, v, decay, beta


@pytest.mark.parametrize("T", [1, 5, 63, 64, 65, 77, 128, 129, 150])
def test_chunk_equals_recurrence(T):
    args = _inputs(2, T, 4, 16, 8)
    want = recurrent_gated_delta_rule(*args)
    got = chunk_gated_delta_rule(*args)
    assert got.shape == (2, T, 4, 8)
    assert (got - want).abs().max().item() < 1e-5
    assert want.abs().max().item() > 0.1


def test_recurrence_matches_transformers():
    pytest.importorskip("transformers.models.qwen3_5.modeling_qwen3_5")
    from reference import torch_reference_module

    mod = torch_reference_module()      # transformers' torch code, even where fla is installed
    q, k, v, g, beta = _inputs(1, 100, 4, 16, 16, seed=3)
    want, _ = mod.torch_recurrent_gated_delta_rule(q * 16 ** 0.5, k, v, g=g, beta=beta)   # it scales q itself
    assert (recurrent_gated_delta_rule(q, k, v, g, beta) - want).abs().max().item() < 1e-5


def test_chunk_kernel_solves_its_triangular_system_once(monkeypatch):
    """u and w share the matrix (I + A): one solve, against the identity (the chunk length's columns), whose
    inverse then multiplies both beta V and beta K exp(G); not a solve per right-hand side."""
    real, rhs_widths = torch.linalg.solve_triangular, []

    def counted(a, b, **kw):
        rhs_widths.append(b.shape[-1])
        return real(a, b, **kw)

    monkeypatch.setattr(torch.linalg, "solve_triangular", counted)
    args = _inputs(1, 150, 2, 16, 8)                      # K = 16, V = 8, three chunks
    got = chunk_gated_delta_rule(*args)
    assert rhs_widths == [64]                             # the chunk length, not V + K
    assert (got - recurrent_gated_delta_rule(*args)).abs().max().item() < 1e-5


def test_chunk_is_causal():
    q, k, v, g, beta = _inputs(1, 130, 2, 8, 8, seed=5)
    base = chunk_gated_delta_rule(q, k, v, g, beta)
    v2 = v.clone()
    v2[:, 100:] += 1.0                       # change the future only
    moved = chunk_gated_delta_rule(q, k, v2, g, beta)
    assert torch.equal(base[:, :100], moved[:, :100])
    assert not torch.equal(base[:, 100:], moved[:, 100:])


def test_kernel_selection_on_cpu():
    assert pick_kernel("auto", "cpu") == "chunk"
    with pytest.raises(ValueError, match="unknown delta-rule kernel"):
        pick_kernel("mamba2", "cpu")


def test_fla_request_falls_back_on_cpu():
    assert pick_kernel("fla", "cpu") == "chunk"
    assert pick_kernel("recurrent", "cpu") == "recurrent"


def test_single_long_chunk_is_stable_under_strong_decay():
    q, k, v, g, beta = _inputs(1, 128, 2, 16, 8, seed=7)
    g = g * 10                                   # exp(cumsum) underflows to 0 within the chunk
    want = recurrent_gated_delta_rule(q, k, v, g, beta)
    got = chunk_gated_delta_rule(q, k, v, g, beta)
    assert torch.isfinite(got).all() and (got - want).abs().max().item() < 1e-5


def test_fla_kernel_matches_chunk_kernel_in_the_model(anima_ckpt):
    """GPU only: flash-linear-attention's kernel inside the backbone against our chunked kernel."""
    from lib_qwen35 import load_encoder
    from lib_qwen35.ops.delta_rule import fla_available

    if not torch.cuda.is_available() or not fla_available("cuda"):
        pytest.skip("needs CUDA and flash-linear-attention")
    enc = load_encoder(anima_ckpt, device="cuda", dtype="bf16", kernel="fla", cuda_graphs=False)
    assert enc.kernel == "fla"
    ids = torch.randint(0, 248000, (1, 150), generator=torch.Generator().manual_seed(0)).cuda()
    with torch.inference_mode():
        fla_out = enc.backbone(ids, torch.bfloat16).float()
        enc.backbone.set_kernel("chunk")
        ref = enc.backbone(ids, torch.bfloat16).float()
    cos = F.cosine_similarity(fla_out[0], ref[0], dim=-1)
    assert cos.min().item() > 0.999


# -- choosing fla: version, caching ---------------------------------------------------------------------------

class _CountingFinder:
    """An import hook in front of every other: each `import fla` attempt is counted and fails like a broken
    install (fla present, triton missing)."""

    def __init__(self):
        self.attempts = 0

    def find_spec(self, name, path=None, target=None):
        if name == "fla":
            self.attempts += 1
            raise ModuleNotFoundError("No module named 'triton'", name="triton")
        return None


@pytest.fixture()
def no_fla_imported(monkeypatch):
    """No fla in sys.modules and a fresh fla_problem cache, before and after the test."""
    for name in [n for n in sys.modules if n == "fla" or n.startswith("fla.")]:
        monkeypatch.delitem(sys.modules, name)
    delta_rule.fla_problem.cache_clear()
    yield monkeypatch
    delta_rule.fla_problem.cache_clear()


def _fake_fla(monkeypatch, version):
    fla = types.ModuleType("fla")
    fla.__version__ = version
    ops, gdr = types.ModuleType("fla.ops"), types.ModuleType("fla.ops.gated_delta_rule")
    fla.ops, ops.gated_delta_rule = ops, gdr
    for name, mod in (("fla", fla), ("fla.ops", ops), ("fla.ops.gated_delta_rule", gdr)):
        monkeypatch.setitem(sys.modules, name, mod)


def test_fla_older_than_0_5_is_refused(no_fla_imported):
    """fla < 0.5.0 runs 16 key heads for 32 value heads without an error but fills only part of the output."""
    _fake_fla(no_fla_imported, "0.4.2")
    assert not delta_rule.fla_available("cuda")
    assert pick_kernel("auto", "cuda") == "chunk"
    why = delta_rule.why_not_fla("cuda")
    assert "0.4.2" in why and "0.5.0" in why and "fla-core" in why


@pytest.mark.parametrize("version", ["0.5.0", "0.6.0", "1.0.0rc1"])
def test_fla_0_5_or_newer_is_used_on_cuda(no_fla_imported, version):
    _fake_fla(no_fla_imported, version)
    assert delta_rule.fla_available("cuda") and delta_rule.why_not_fla("cuda") is None
    assert pick_kernel("auto", "cuda") == "fla"
    assert not delta_rule.fla_available("cpu")


def test_auto_keeps_fp32_off_fla(no_fla_imported):
    """fla's tl.dot multiplies fp32 in TF32 on Ampere and newer: fp32 compute means the exact chunked kernel."""
    _fake_fla(no_fla_imported, "0.6.0")
    assert pick_kernel("auto", "cuda", torch.float32) == "chunk"
    assert "TF32" in delta_rule.why_not_fla("cuda", torch.float32)
    for dtype in (torch.bfloat16, torch.float16):
        assert pick_kernel("auto", "cuda", dtype) == "fla"
    assert pick_kernel("fla", "cuda", torch.float32) == "fla"      # asked for by name: honoured


def test_failing_fla_import_is_tried_once(no_fla_imported):
    """Encoder.to() asks again on every move; a broken fla must cost its import once per process, not per move."""
    finder = _CountingFinder()
    no_fla_imported.setattr(sys, "meta_path", [finder, *sys.meta_path])
    for _ in range(3):
        assert not delta_rule.fla_available("cuda")
        assert pick_kernel("auto", "cuda") == "chunk"
    assert finder.attempts == 1
    assert "triton" in delta_rule.why_not_fla("cuda")


@pytest.mark.parametrize("B, T", [(1, 1), (1, 17), (1, 77), (1, 128), (3, 9), (32, 17), (4, 64)])
def test_one_chunk_is_the_scan_bit_for_bit(B, T):
    """The single-chunk path (every prompt of <= 128 tokens, every fit batch) against the general scan it
    shortens, on the same prepared chunk: the zero state's reads and writes contributed exactly nothing."""
    args = _inputs(B, T, 4, 16, 8, seed=T)
    parts = delta_rule._prepare(*args, delta_rule.chunk_length(T))
    assert parts[0].shape[2] == 1                            # one chunk
    fast, scan = delta_rule._one_chunk(*parts), delta_rule._scan_chunks(*parts)
    assert torch.equal(fast, scan)
    assert (chunk_gated_delta_rule(*args) - recurrent_gated_delta_rule(*args)).abs().max().item() < 1e-5


def test_short_prompts_take_the_one_chunk_path_and_long_ones_the_scan(monkeypatch):
    taken = []
    for name in ("_one_chunk", "_scan_chunks"):
        real = getattr(delta_rule, name)
        monkeypatch.setattr(delta_rule, name, lambda *a, real=real, name=name: taken.append(name) or real(*a))
    for T in (5, 128, 129, 300):
        chunk_gated_delta_rule(*_inputs(1, T, 2, 8, 8))
    assert taken == ["_one_chunk", "_one_chunk", "_scan_chunks", "_scan_chunks"]
