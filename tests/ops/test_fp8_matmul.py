"""FP8 tensor-core matmul: quantisation maths, the _scaled_mm call against its emulation, fallbacks, the
availability decision, and the end-to-end tolerance we adopt (per-token cosine >= 0.98 vs fp32)."""

import pytest
import torch
import torch.nn.functional as F

from lib_qwen35 import load_encoder
from lib_qwen35.model import devices, linear
from lib_qwen35.model.linear import StoredLinear
from lib_qwen35.ops import fp8_matmul as f8
from lib_qwen35.synthetic import qwen35 as synthetic

# 8 value heads make every fused projection a multiple of 16 rows (in_proj 192+128+8+8 = 336), as in the 4B model.
FP8_FRIENDLY = dict(linear_num_value_heads=8)


def _w(n, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (0.5 * torch.randn(n, k, generator=g) / k ** 0.5).to(torch.float8_e4m3fn)


def _x(m, k, seed=1, dtype=torch.bfloat16):
    return torch.randn(m, k, generator=torch.Generator().manual_seed(seed)).to(dtype)


def _cpu_scaled_mm_works() -> bool:
    try:
        f8.fp8_linear(_x(16, 32), _w(16, 32))
        return True
    except Exception:   # noqa: BLE001 - older torch builds have no CPU kernel
        return False


@pytest.fixture()
def fp8_kernel(monkeypatch):
    """Use torch's CPU _scaled_mm where it exists, else the emulation (same maths), so the tests run anywhere."""
    if not _cpu_scaled_mm_works():
        monkeypatch.setattr(f8, "fp8_linear", f8.emulated_fp8_linear)
    monkeypatch.setattr(f8, "ALLOW_CPU", True)      # product code keeps switched linears exact off the GPU
    return f8.fp8_linear


def test_quantize_per_token_maths():
    x = torch.tensor([[1.0, -2.0, 0.5, 448.0 * 3], [0.0, 0.0, 0.0, 0.0], [1e-3, -1e-3, 2e-3, 0.0]])
    q, s = f8.quantize(x, "per_token")
    assert q.dtype == torch.float8_e4m3fn and s.shape == (3, 1)
    assert s[0, 0].item() == pytest.approx(3.0)                 # amax / 448
    assert torch.isfinite(s).all() and (s > 0).all()            # zero row: tiny scale, not 0/0
    back = q.float() * s
    assert torch.equal(back[1], torch.zeros(4))
    assert back[0, 3].item() == pytest.approx(448.0 * 3)        # the row maximum maps to 448 exactly
    rel = ((back - x).abs() / x.abs().clamp(min=1e-30))[x != 0]
    assert rel.max().item() <= 2 ** -4 + 1e-6                    # E4M3: 3 mantissa bits, half-step 2^-4


def test_quantize_per_tensor_and_bad_mode():
    x = _x(8, 32, dtype=torch.float32)
    q, s = f8.quantize(x, "per_tensor")
    assert s.dim() == 0 and s.item() == pytest.approx(x.abs().max().item() / 448)
    with pytest.raises(ValueError):
        f8.quantize(x, "per_channel")


@pytest.mark.parametrize("mode", f8.MODES)
def test_fp8_linear_equals_its_emulation(mode, fp8_kernel):
    x, w = _x(37, 64), _w(48, 64)               # M = 37: no multiple-of-16 need on the token dimension
    bias = torch.randn(48).to(torch.bfloat16)
    got = f8.fp8_linear(x.reshape(1, 37, 64), w, bias, mode)
    want = f8.emulated_fp8_linear(x.reshape(1, 37, 64), w, bias, mode)
    assert got.shape == (1, 37, 48) and got.dtype == torch.bfloat16
    assert (got.float() - want.float()).abs().max().item() <= 1e-2 * want.float().abs().max().item()


@pytest.mark.parametrize("mode", f8.MODES)
def test_per_linear_error_vs_exact_upcast(mode):
    """The tolerance behind the mode: ~2.5% relative error per linear from activation rounding (bf16 alone: ~0.2%)."""
    x, w = _x(300, 256), _w(512, 256)
    exact = x.float() @ w.float().t()
    got = f8.emulated_fp8_linear(x, w, mode=mode).float()
    rel = ((got - exact).norm() / exact.norm()).item()
    assert 0.005 <= rel <= 0.04, rel            # lower bound: the activation really was quantised


def test_shapes_not_multiple_of_16_use_exact_upcast():
    x, w = _x(5, 64), _w(200, 64)               # 200 rows: _scaled_mm would refuse
    assert not f8.shapes_ok(64, 200)
    got = f8.fp8_linear(x, w)
    assert torch.equal(got, F.linear(x, w.to(torch.bfloat16)))


def test_switched_linear_stays_exact_off_the_gpu(fp8_friendly_ckpt):
    """A backbone moved to CPU after enable_fp8_matmul must not run CPU FP8 GEMMs (slow, and not asked for)."""
    bb = load_encoder(fp8_friendly_ckpt, dtype="fp32", upcast_cache_bytes=0).backbone
    ids = torch.randint(0, 248320, (1, 20), generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        want = bb(ids, torch.bfloat16)
        linear.enable_fp8_matmul(bb, "per_token")
        got = bb(ids, torch.bfloat16)
        linear.disable_fp8_matmul(bb)
    assert torch.equal(got, want)


def test_unavailable_on_cpu_with_reasons():
    ok, why = f8.fp8_matmul_support("cpu")
    assert ok is False and "CUDA" in why
    mode, why = f8.choose_mode("cpu", torch.bfloat16, "auto")
    assert mode is None and "upcast" in why
    mode, why = f8.choose_mode("cpu", torch.float32, "per_token")
    assert mode is None and "float32" in why
    mode, why = f8.choose_mode("cuda", torch.bfloat16, "off")
    assert mode is None and "off" in why
    with pytest.raises(ValueError):
        f8.choose_mode("cpu", torch.bfloat16, "fp4")


def test_probe_uses_the_compute_dtype(monkeypatch):
    """Row-wise scaling has only bf16 output on Ada and on Hopper with cuBLAS < 12.9 (torch's _scaled_mm check).
    A bf16-only probe would pass there and then fp16 compute would fail in every forward."""
    def ada_scaled_mm(x, weight, bias=None, mode="per_token"):
        if mode == "per_token" and x.dtype != torch.bfloat16:
            raise RuntimeError("Only bf16 high precision output types are supported for row-wise scaling.")
        return f8.emulated_fp8_linear(x, weight, bias, mode)

    monkeypatch.setattr(f8, "fp8_linear", ada_scaled_mm)
    monkeypatch.setattr(f8, "fp8_matmul_support", lambda device: (True, "Fake Ada (compute capability 8.9) ..."))
    monkeypatch.setattr(f8, "_probe_cache", {})
    assert f8.choose_mode("cpu", torch.bfloat16, "auto")[0] == "per_token"
    assert f8.choose_mode("cpu", torch.float16, "auto")[0] == "per_tensor"      # the fallback that works
    mode, why = f8.choose_mode("cpu", torch.float16, "per_token")
    assert mode is None and "row-wise" in why
    assert f8.probe("cpu", "per_token", torch.bfloat16) is None                # cached apart from fp16's failure


@pytest.fixture(scope="module")
def fp8_friendly_ckpt(tmp_path_factory):
    return synthetic.write_checkpoint(tmp_path_factory.mktemp("fp8") / "m.safetensors", seed=5, **FP8_FRIENDLY)


def test_backbone_tolerance_and_switching(fp8_friendly_ckpt, fp8_kernel):
    # the GPU's FP8 matmul, emulated here: the weights stay E4M3 as on a GPU (no CPU code)
    enc = load_encoder(fp8_friendly_ckpt, dtype="fp32", upcast_cache_bytes=0, cpu_code=False)
    bb = enc.backbone
    ids = torch.randint(0, 248320, (2, 80), generator=torch.Generator().manual_seed(7))
    eligible = sum(1 for m in bb.modules() if isinstance(m, StoredLinear) and m.weight.dtype == torch.float8_e4m3fn)
    with torch.inference_mode():
        ref = bb(ids, torch.float32)
        upcast_bf16 = bb(ids, torch.bfloat16).float()
        assert linear.enable_fp8_matmul(bb, "per_token") == eligible == linear.fp8_enabled_count(bb)
        assert torch.equal(bb(ids, torch.float32), ref)          # fp32 compute keeps the exact path
        fp8 = bb(ids, torch.bfloat16).float()
        linear.disable_fp8_matmul(bb)
        assert linear.fp8_enabled_count(bb) == 0
        assert torch.equal(bb(ids, torch.bfloat16).float(), upcast_bf16)   # switched back exactly
    cos_bf16 = F.cosine_similarity(upcast_bf16, ref, dim=-1).min().item()
    cos_fp8 = F.cosine_similarity(fp8, ref, dim=-1).min().item()
    assert cos_bf16 >= 0.999, cos_bf16           # bf16 tolerance: per-token cosine >= 0.999 vs fp32
    assert cos_fp8 >= 0.98, cos_fp8              # fp8 tolerance: per-token cosine >= 0.98 vs fp32
    assert cos_fp8 < cos_bf16                    # the FP8 path really ran


@pytest.fixture()
def fp8_on_cpu(monkeypatch, fp8_kernel):
    """choose_mode() as on an FP8 GPU, with the CPU kernel (or its emulation) doing the FP8 matmuls, and the
    activations in the compute dtype as on a GPU (the CPU keeps them fp32: model/devices.py)."""
    monkeypatch.setattr(f8, "fp8_matmul_support", lambda device: (True, "Fake GPU (compute capability 8.9) ..."))
    monkeypatch.setattr(devices, "activation_dtype", lambda device, dtype: dtype)
    monkeypatch.setattr(f8, "_probe_cache", {})


def test_fp8_and_exact_embeddings_are_cached_apart(fp8_friendly_ckpt, fp8_on_cpu):
    """An FP8-matmul encoder and an exact one on the same file and dtype must not serve each other's results."""
    from lib_qwen35.model import embedding_cache

    embedding_cache.EMBEDDINGS.clear()
    exact = load_encoder(fp8_friendly_ckpt, dtype="bf16", upcast_cache_bytes=0, fp8_matmul="off")
    fp8 = load_encoder(fp8_friendly_ckpt, dtype="bf16", upcast_cache_bytes=0, fp8_matmul="per_token")
    assert exact.fp8_mode is None and fp8.fp8_mode == "per_token"
    ids = list(range(1000, 1040))
    a = exact.encode_ids(ids)
    b = fp8.encode_ids(ids)
    assert fp8.stats["cache_hits"] == 0 and fp8.stats["backbone_runs"] == 1
    assert not torch.equal(a, b)                                    # FP8 rounding really changed the numbers
    assert torch.equal(exact.encode_ids(ids), a) and exact.stats["cache_hits"] == 1
    assert torch.equal(fp8.encode_ids(ids), b) and fp8.stats["cache_hits"] == 1


def test_per_tensor_scaling_does_not_depend_on_the_batch(fp8_friendly_ckpt, fp8_on_cpu):
    """A per-tensor scale spans the whole forward: batched with a longer prompt (and padded to it), a prompt would
    get other numbers than alone. The encoder runs per-tensor mode one prompt at a time."""
    enc = load_encoder(fp8_friendly_ckpt, dtype="bf16", upcast_cache_bytes=0, fp8_matmul="per_tensor")
    assert enc.fp8_mode == "per_tensor"
    short, long_ = list(range(2000, 2012)), list(range(3000, 3070))
    alone = [enc.encode_batch([x], use_cache=False)[0] for x in (short, long_)]
    together = enc.encode_batch([short, long_], use_cache=False)
    assert torch.equal(together[0], alone[0]) and torch.equal(together[1], alone[1])


def test_per_tensor_scaling_turns_cuda_graphs_off(fp8_friendly_ckpt, fp8_on_cpu, monkeypatch):
    """A graph pads to its bucket, and a per-tensor scale would take the padding in."""
    from lib_qwen35.ops.cuda_graphs import GraphRunner

    monkeypatch.setattr(GraphRunner, "available", staticmethod(lambda device: True))   # as on a GPU
    per_tensor = load_encoder(fp8_friendly_ckpt, dtype="bf16", upcast_cache_bytes=0, fp8_matmul="per_tensor")
    assert per_tensor._graphs is None and "per-tensor" in per_tensor.fast_path_status()
    per_token = load_encoder(fp8_friendly_ckpt, dtype="bf16", upcast_cache_bytes=0, fp8_matmul="per_token")
    assert per_token._graphs is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp8_linear_on_gpu_matches_emulation():
    ok, why = f8.fp8_matmul_support("cuda")
    if not ok:
        pytest.skip(why)
    w = _w(1024, 2560).cuda()
    for dtype in (torch.bfloat16, torch.float16):
        x = _x(300, 2560, dtype=dtype).cuda()
        for mode in f8.MODES:
            if f8.probe("cuda", mode, dtype) is not None:
                continue
            got = f8.fp8_linear(x, w, mode=mode)
            want = f8.emulated_fp8_linear(x, w, mode=mode).float()
            assert got.dtype == dtype
            assert ((got.float() - want).norm() / want.norm()).item() <= 1e-2
        mode, why = f8.choose_mode("cuda", dtype, "auto")
        assert mode in f8.MODES, why         # whatever the probe chose really runs in this dtype
        f8.fp8_linear(x, w, mode=mode)
