"""The CPU's compute dtype: "auto" picks bf16 only where the CPU multiplies bf16 natively and a measurement finds it
faster (model/devices.py); on the CPU "bf16" means bf16 matmuls in an fp32 model, held here to the fp32 path; and
results of the two never mix in the embedding cache."""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from lib_qwen35 import load_encoder
from lib_qwen35.model import devices, embedding_cache
from lib_qwen35.model.linear import StoredLinear
from lib_qwen35.ops import cpu_features, cpu_gemm, fp8_recode

AMX = {"cpu_name": "Intel Xeon", "avx512_f": True, "avx512_bf16": True, "amx_tile": True, "amx_bf16": True}
ZEN3 = {"cpu_name": "AMD EPYC", "avx2": True}


def never(*_):
    raise AssertionError("measured where the flags say no")


@pytest.fixture
def amx_granted(monkeypatch):
    monkeypatch.setattr(cpu_features, "_amx_granted", lambda: True)


@pytest.fixture
def cpu_setting(monkeypatch):
    """Set QWEN35_CPU_BF16 and forget the process's decision, so the next load decides again."""
    def set_to(value):
        monkeypatch.setenv(devices.CPU_BF16_ENV, value)
        monkeypatch.setattr(devices, "_cpu_choice", {})
    return set_to


def test_a_native_and_faster_bf16_is_chosen_with_its_reason(amx_granted):
    choice = devices.decide_cpu_dtype("auto", AMX, measure=lambda: 4.0)
    assert choice.dtype == torch.bfloat16 and choice.why == "AMX, 4.0x fp32's speed" and choice.speedup == 4.0


def test_a_native_bf16_that_is_not_faster_stays_fp32(amx_granted):
    choice = devices.decide_cpu_dtype("auto", {"avx512_bf16": True}, measure=lambda: 1 / 1.1)
    assert choice.dtype == torch.float32 and choice.why == "AVX512-BF16 bf16 measured 0.91x fp32's speed"
    assert devices.decide_cpu_dtype("auto", AMX, measure=lambda: 1.2).dtype == torch.float32   # a tie is not enough


def test_without_native_bf16_nothing_is_measured_and_fp32_is_kept():
    choice = devices.decide_cpu_dtype("auto", ZEN3, measure=never)
    assert choice.dtype == torch.float32 and choice.why == "no native bf16: AVX2" and choice.speedup is None


def test_a_failing_measurement_keeps_fp32(amx_granted):
    def broken():
        raise RuntimeError("could not create a primitive descriptor")

    choice = devices.decide_cpu_dtype("auto", AMX, measure=broken)
    assert choice.dtype == torch.float32 and "AMX bf16 failed: RuntimeError" in choice.why


def test_the_override(amx_granted):
    assert devices.decide_cpu_dtype("off", AMX, measure=never).dtype == torch.float32
    on = devices.decide_cpu_dtype("on", ZEN3, measure=never)
    assert on.dtype == torch.bfloat16 and "emulated, slower than fp32" in on.why
    typo = devices.decide_cpu_dtype("yes", ZEN3, measure=never)
    assert typo.dtype == torch.float32 and "'yes' is not one of auto, on, off" in typo.why


def test_the_measurement_runs_the_real_linear_in_both_dtypes(monkeypatch):
    seen = []
    real = cpu_gemm.gemm
    monkeypatch.setattr(cpu_gemm, "gemm", lambda x, w, b=None, which=None: seen.append(x.dtype) or real(x, w, b, which))
    assert devices.measure_bf16_speedup(repeats=1) > 0
    assert seen.count(torch.float32) == seen.count(torch.bfloat16) > 0


def test_status_lines_name_the_dtype_and_why(monkeypatch):
    monkeypatch.setattr(devices, "_cpu_choice", {"choice": devices.CpuChoice(torch.float32, "no native bf16: AVX2")})
    assert devices.describe("cpu", torch.float32) == "cpu fp32 (no native bf16: AVX2)"
    assert devices.describe("cpu", torch.bfloat16).startswith("cpu bf16 (matmuls only, as set; no native bf16 (")
    monkeypatch.setattr(devices, "_cpu_choice", {"choice": devices.CpuChoice(torch.bfloat16, "AMX, 4.0x fp32's speed",
                                                                              "AMX", 4.0)})
    assert devices.describe("cpu", torch.bfloat16) == "cpu bf16 (AMX, 4.0x fp32's speed)"
    assert devices.describe("cpu", torch.float32) == "cpu fp32 (as set; auto would pick bf16: AMX, 4.0x fp32's speed)"
    assert devices.describe("cuda:0", torch.bfloat16) == "cuda:0 bf16"


def test_auto_follows_the_override_and_the_cpu_keeps_fp32_activations(anima_ckpt, cpu_setting, monkeypatch):
    cpu_setting("on")
    enc = load_encoder(anima_ckpt)                       # auto
    assert enc.dtype == torch.bfloat16 and enc.activation_dtype == torch.float32
    assert enc.numerics == "bf16-matmuls-fp32-rest-v1"
    gemms = []
    real = cpu_gemm.gemm
    monkeypatch.setattr(cpu_gemm, "gemm", lambda x, w, b=None, which=None: gemms.append(x.dtype) or real(x, w, b, which))
    seen = {}
    forward = enc.backbone.forward
    monkeypatch.setattr(enc.backbone, "forward", lambda ids, dtype, **kw: seen.setdefault("dtype", dtype) and
                        forward(ids, dtype, **kw))
    assert enc.encode_ids([5, 6, 7]).dtype == torch.float32
    assert seen["dtype"] == torch.float32 and set(gemms) == {torch.bfloat16}
    cpu_setting("off")
    assert load_encoder(anima_ckpt).dtype == torch.float32


def test_explicit_fp32_never_measures_and_stays_the_exact_path(anima_ckpt, cpu_setting, monkeypatch):
    cpu_setting("auto")
    monkeypatch.setattr(devices, "measure_bf16_speedup", never)
    monkeypatch.setattr(cpu_features, "capabilities", lambda: dict(AMX))
    monkeypatch.setattr(cpu_features, "_amx_granted", lambda: True)
    monkeypatch.setattr(devices, "_cpu_choice", {"choice": devices.CpuChoice(torch.bfloat16, "AMX", "AMX", 4.0)})
    enc = load_encoder(anima_ckpt, dtype="fp32")
    assert enc.dtype == enc.activation_dtype == torch.float32 and enc.numerics == ""


def test_bf16_matmuls_stay_close_to_fp32(anima_ckpt):
    """The bound the docs state (docs/performance.md, "Accuracy of bf16"): every token's cosine with the fp32 path
    >= 0.9995 on the small synthetic checkpoint (measured 0.99992), and within 3% of the output's scale."""
    prompts = [list(range(2000, 2060)), list(range(100, 400, 3)), list(range(5000, 5017))]
    exact = load_encoder(anima_ckpt, dtype="fp32").encode_batch(prompts, use_cache=False)
    half = load_encoder(anima_ckpt, dtype="bf16").encode_batch(prompts, use_cache=False)
    for a, b in zip(exact, half):
        assert not torch.equal(a, b)
        assert F.cosine_similarity(a.double(), b.double(), dim=-1).min().item() >= 0.9995
        assert (a - b).abs().max().item() <= 0.03 * a.abs().max().item()


def test_the_embedding_cache_never_hands_one_dtype_the_others_result(anima_ckpt, cpu_setting):
    embedding_cache.EMBEDDINGS.clear()
    ids = list(range(3000, 3040))
    cpu_setting("off")
    fp32 = load_encoder(anima_ckpt)                        # auto -> fp32
    a = fp32.encode_ids(ids)
    cpu_setting("on")
    bf16 = load_encoder(anima_ckpt)                        # auto -> bf16 matmuls: a new encoder, a new key
    assert bf16 is not fp32 and bf16.dtype == torch.bfloat16
    b = bf16.encode_ids(ids)
    assert bf16.stats["cache_hits"] == 0 and bf16.stats["backbone_runs"] == 1 and not torch.equal(a, b)
    assert torch.equal(bf16.encode_ids(ids), b) and bf16.stats["cache_hits"] == 1
    assert torch.equal(fp32.encode_ids(ids), a) and fp32.stats["cache_hits"] == 1
    assert torch.equal(fp32.encode_batch([ids], use_cache=False)[0], a)
    assert torch.equal(bf16.encode_batch([ids], use_cache=False)[0], b)


def _stored_linears(enc) -> list:
    return [m for m in enc.backbone.modules() if isinstance(m, StoredLinear)]


def test_bf16_matmuls_keep_the_e4m3_weights_in_the_cpu_code_with_the_same_numbers(anima_ckpt):
    """On a bf16 CPU the E4M3 weights take the CPU's own code in place (ops/fp8_recode.py); the outputs are the E4M3
    route's bit for bit, and a move gives the file's bytes back."""
    enc = load_encoder(anima_ckpt, dtype="bf16")
    lins = _stored_linears(enc)
    assert lins and all(m.in_cpu_code and m.weight.dtype == fp8_recode.DTYPE for m in lins)
    assert enc.weights_dtype == "fp8"
    prompts = [list(range(2000, 2060)), list(range(100, 400, 3))]
    coded = enc.encode_batch(prompts, use_cache=False)
    before = {m: m.weight.clone() for m in lins}
    enc.backbone.to("cpu")                         # any move or cast: the weights come back as E4M3
    assert all(m.weight.dtype == torch.float8_e4m3fn for m in lins)
    assert all(torch.equal(fp8_recode.restored(before[m]).view(torch.uint8), m.weight.view(torch.uint8))
               for m in lins)
    e4m3 = enc.encode_batch(prompts, use_cache=False)
    assert all(torch.equal(a, b) for a, b in zip(coded, e4m3))
    raw = {k: v for k, v in load_file(anima_ckpt).items() if v.dtype == torch.float8_e4m3fn}
    assert any(torch.equal(m.weight.view(torch.uint8), t.view(torch.uint8)) for t in raw.values() for m in lins)


def test_fp32_takes_the_code_too_with_the_exact_paths_numbers(anima_ckpt):
    """fp32 matmuls decode the code in three integer passes (int32 scratch): the outputs are those of E4M3 through
    fp16 bits (cpu_code=False) bit for bit."""
    coded, e4m3 = load_encoder(anima_ckpt, dtype="fp32"), load_encoder(anima_ckpt, dtype="fp32", cpu_code=False)
    assert all(m.in_cpu_code for m in _stored_linears(coded)) and coded.weights_dtype == "fp8"
    assert not any(m.in_cpu_code for m in _stored_linears(e4m3))
    prompts = [list(range(2000, 2060)), list(range(100, 400, 3))]
    assert all(torch.equal(a, b) for a, b in zip(coded.encode_batch(prompts, use_cache=False),
                                                 e4m3.encode_batch(prompts, use_cache=False)))


def test_fp16_matmuls_keep_e4m3_and_a_cast_sees_the_true_weights():
    w = (torch.randn(32, 16, generator=torch.Generator().manual_seed(0)) * 0.02).to(torch.float8_e4m3fn)
    lin = StoredLinear(w.clone())
    lin.gemm_dtype = torch.float16
    assert not lin.use_cpu_code()                  # no route decodes the code into fp16
    lin.gemm_dtype = torch.bfloat16
    assert lin.use_cpu_code() and lin.weight.dtype == fp8_recode.DTYPE
    lin.double()
    assert lin.weight.dtype == torch.float64 and torch.equal(lin.weight, w.double())


def test_an_encoder_that_computes_on_a_gpu_never_takes_the_cpu_code(anima_ckpt):
    """The WebUI loads into RAM and moves to the GPU per generation: recoding there would cost ~3 s a generation
    for nothing, so the host turns it off; a CPU encoder takes it again when it comes back to the CPU."""
    from lib_qwen35.host.encoder_holder import _default_encoder_loader

    gpu_bound = _default_encoder_loader(anima_ckpt, torch.bfloat16, computes_on_cpu=False)
    assert not gpu_bound.cpu_code and not any(m.in_cpu_code for m in _stored_linears(gpu_bound))
    gpu_bound._use_cpu_code()                      # what a return to the CPU runs
    assert not any(m.in_cpu_code for m in _stored_linears(gpu_bound))
    cpu = _default_encoder_loader(anima_ckpt, torch.bfloat16, computes_on_cpu=True)
    assert cpu is not gpu_bound and all(m.in_cpu_code for m in _stored_linears(cpu))
    cpu.backbone.to("cpu")                         # a move gives E4M3 back ...
    assert not any(m.in_cpu_code for m in _stored_linears(cpu))
    cpu._use_cpu_code()                            # ... and the return to the CPU recodes
    assert all(m.in_cpu_code for m in _stored_linears(cpu))
