"""The CPU fast path for stored (FP8) weights held to its naive references: the bit-trick decode to torch's own
FP8 conversion for every code, the blocked linear to the whole-weight upcast + F.linear (bit for bit with the
torch GEMM, to fp32 rounding with oneDNN), and the whole backbone to the naive path."""

import threading

import pytest
import torch
import torch.nn.functional as F

from lib_qwen35 import load_encoder
from lib_qwen35.model.linear import StoredLinear, UpcastBudget
from lib_qwen35.ops import cpu_gemm, cpu_linear, fp8_decode

ONEDNN = cpu_gemm.onednn_problem()
ONEDNN_BF16 = cpu_gemm.onednn_problem(torch.bfloat16)
needs_onednn = pytest.mark.skipif(ONEDNN is not None, reason=f"oneDNN unusable here: {ONEDNN}")
COMPUTE = (torch.float32, torch.bfloat16, torch.float16)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-identical (so -0.0 != 0.0 and NaN payloads count)."""
    ints = {4: torch.int32, 2: torch.int16}
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(ints[a.element_size()]),
                                                                     b.view(ints[b.element_size()]))


def all_codes(fp8_dtype) -> torch.Tensor:
    return torch.arange(256, dtype=torch.int32).to(torch.uint8).view(fp8_dtype).reshape(16, 16)


@pytest.mark.parametrize("fp8", [torch.float8_e4m3fn, torch.float8_e5m2])
@pytest.mark.parametrize("dtype", COMPUTE)
def test_decode_is_torch_conversion_for_every_code(fp8, dtype):
    w = all_codes(fp8)
    out, bits = torch.empty(16, 16, dtype=dtype), torch.empty(16, 16, dtype=torch.int16)
    got = fp8_decode.decode_into(w, out, bits)
    ref = fp8_decode.decode_reference(w, dtype)
    finite = torch.isfinite(ref)
    assert same_bits(torch.where(finite, got, 0), torch.where(finite, ref, 0))   # subnormals, +-0.0 included
    assert torch.signbit(got.flatten()[0x80]) and got.flatten()[1] == ref.flatten()[1] != 0
    if fp8 == torch.float8_e5m2:       # +-Inf and NaN come through as such
        inf = torch.isinf(ref)
        assert torch.equal(torch.isnan(got), torch.isnan(ref)) and same_bits(got[inf], ref[inf])
    else:                              # S.1111.111 (NaN) is E4M3FN's only non-finite code; the loader refuses it
        assert int((~finite).sum()) == 2 and torch.equal(got[~finite].abs().float(), torch.full((2,), 480.0))


def test_whole_tensor_decode_and_non_fp8_inputs():
    w = (torch.randn(37, 29) * 3).to(torch.float8_e4m3fn)
    assert same_bits(fp8_decode.decode(w, torch.float32), w.float())
    assert same_bits(fp8_decode.decode(w.t(), torch.float32), w.t().float())   # non-contiguous input
    b = torch.randn(5, 7, dtype=torch.bfloat16)
    assert same_bits(fp8_decode.decode(b, torch.float32), b.float())


BACKENDS = ["torch", pytest.param("onednn", marks=needs_onednn)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rows", [1, 37, 203])          # rows per block: a sliver, ragged, the whole weight
@pytest.mark.parametrize("tokens", [1, 18])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("wdtype", [torch.float8_e4m3fn, torch.float8_e5m2, torch.bfloat16, torch.float32])
def test_blocked_linear_is_the_reference_to_fp32_rounding(backend, rows, tokens, bias, wdtype, monkeypatch):
    monkeypatch.setattr(cpu_linear, "ROW_MULTIPLE", 1)        # any block width, slivers included
    monkeypatch.setattr(cpu_linear, "MIN_ROWS", 1)
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(203, 96, generator=g) * 0.2).to(wdtype)      # 203 rows: a ragged last block
    b = torch.randn(203, generator=g).to(torch.bfloat16) if bias else None
    x = torch.randn(1, tokens, 96, generator=g)
    got = cpu_linear.linear(x, w, b, block_elements=rows * 96, backend=backend)
    ref = cpu_linear.linear_reference(x, w, b)
    exact = F.linear(x.double(), w.double(), None if b is None else b.double())
    assert got.shape == ref.shape == (1, tokens, 203) and got.dtype == torch.float32
    assert (got.double() - exact).abs().max().item() < 2e-6 * exact.abs().max().item()
    assert (got - ref).abs().max().item() < 2e-6 * exact.abs().max().item()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_blocked_linear_in_half_precision_is_the_reference(dtype):
    g = torch.Generator().manual_seed(1)
    w = (torch.randn(130, 64, generator=g) * 0.2).to(torch.float8_e4m3fn)
    x = torch.randn(7, 64, generator=g).to(dtype)
    got = cpu_linear.linear(x, w, block_elements=500, backend="torch")
    ref = cpu_linear.linear_reference(x, w)
    assert got.dtype == dtype and (got.float() - ref.float()).abs().max().item() <= 1e-2 * ref.abs().max().item()


@needs_onednn
@pytest.mark.parametrize("rows", [16, 48, 100, 700])
@pytest.mark.parametrize("tokens", [1, 77])
@pytest.mark.parametrize("bias", [False, True])
def test_blocking_changes_no_bit_with_onednn(rows, tokens, bias, monkeypatch):
    """Split over output rows, every output element is the same sum: bit for bit oneDNN on the whole upcast
    weight (blocks of at least 8 rows; the model's are multiples of 128)."""
    monkeypatch.setattr(cpu_linear, "ROW_MULTIPLE", 16)
    g = torch.Generator().manual_seed(2)
    w = (torch.randn(700, 320, generator=g) * 0.1).to(torch.float8_e4m3fn)
    b = torch.randn(700, generator=g).to(torch.bfloat16) if bias else None
    x = torch.randn(tokens, 320, generator=g)
    got = cpu_linear.linear(x, w, b, block_elements=320 * rows, backend="onednn")
    assert same_bits(got, cpu_gemm.gemm(x, w.float(), None if b is None else b.float(), "onednn"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_activations_near_the_fp32_limit_do_not_overflow_the_folded_scale(backend):
    """x * 256 would overflow here (the fast path folds E4M3's decode scale into x): it must notice and decode
    the weight unscaled instead."""
    w = torch.full((24, 16), 0.015625).to(torch.float8_e4m3fn)
    x = torch.full((3, 16), 1e37)
    got = cpu_linear.linear(x, w, backend=backend)
    ref = cpu_linear.linear_reference(x, w)
    assert torch.isfinite(ref).all() and torch.allclose(got, ref, rtol=1e-6)


@pytest.mark.parametrize("K, N, elements, expected", [
    (2560, 12352, 3 << 19, [(r, 512) for r in range(0, 12288, 512)] + [(12288, 64)]),    # 12352 = 24 x 512 + 64
    (9216, 2560, 3 << 19, [(r, 128) for r in range(0, 2560, 128)]),
    (96, 203, 100, [(0, 128), (128, 75)]),
    (96, 130, 100, [(0, 130)]),                    # a 2-row remainder joins the block before it
    (96, 20, 1 << 20, [(0, 20)]),
])
def test_blocks_are_multiples_of_128_rows_without_a_sliver(K, N, elements, expected):
    assert cpu_linear.blocks(K, N, elements) == expected


def test_scratch_is_one_block_per_thread_and_threads_do_not_mix():
    g = torch.Generator().manual_seed(3)
    w = (torch.randn(512, 256, generator=g) * 0.1).to(torch.float8_e4m3fn)
    xs = [torch.randn(33, 256, generator=g) for _ in range(4)]
    refs = [cpu_linear.linear(x, w, block_elements=256 * 32) for x in xs]      # this thread, one at a time
    results, errors = {}, []

    def work(i):
        try:
            for _ in range(20):
                got = cpu_linear.linear(xs[i], w, block_elements=256 * 32)
                if not same_bits(got, refs[i]):
                    errors.append(i)
            results[i] = cpu_linear._scratch.bufs[torch.float32].numel()
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert set(results.values()) == {128 * 256}         # one 128-row block, never the whole 512 x 256 weight


def test_scratch_made_in_inference_mode_serves_normal_calls():
    w = (torch.randn(40, 16) * 0.2).to(torch.float8_e4m3fn)
    x = torch.randn(3, 16)
    result = {}

    def work():
        with torch.inference_mode():
            result["inference"] = cpu_linear.linear(x, w).clone()
        result["normal"] = cpu_linear.linear(x, w)      # the same thread-local buffers, outside inference mode

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert same_bits(result["normal"], result["inference"])


def test_autograd_and_empty_inputs_take_the_reference():
    w = (torch.randn(40, 16) * 0.2).to(torch.float8_e4m3fn)
    x = torch.randn(3, 16, requires_grad=True)
    y = cpu_linear.linear(x, w)
    y.sum().backward()
    assert x.grad is not None and same_bits(y.detach(), cpu_linear.linear_reference(x.detach(), w))
    assert cpu_linear.linear(torch.randn(0, 16), w).shape == (0, 40)


def test_stored_linear_gives_the_same_numbers_with_and_without_an_upcast_copy():
    w = (torch.randn(300, 128) * 0.1).to(torch.float8_e4m3fn)
    lin = StoredLinear(w, torch.randn(300).to(torch.bfloat16))
    x = torch.randn(1, 20, 128)
    plain = lin(x)
    lin.cache_upcast(torch.float32, UpcastBudget(1 << 30))
    assert lin._cached is not None and same_bits(lin(x), plain)


def test_a_host_that_turns_onednn_off_gets_the_torch_gemm():
    x, w = torch.randn(5, 64), torch.randn(48, 64)
    torch.backends.mkldnn.enabled = False
    try:
        assert same_bits(cpu_gemm.gemm(x, w, None, "onednn"), F.linear(x, w))
        assert "turned off" in cpu_gemm.onednn_problem()
    finally:
        torch.backends.mkldnn.enabled = True


def test_backend_choice_and_override(monkeypatch):
    assert cpu_gemm.backend() in cpu_gemm.BACKENDS
    assert cpu_gemm.backend() == ("onednn" if ONEDNN is None else "torch")
    monkeypatch.setattr(cpu_gemm, "_choice", {})
    monkeypatch.setenv("QWEN35_CPU_GEMM", "torch")
    assert cpu_gemm.backend() == "torch" and "QWEN35_CPU_GEMM=torch" in cpu_gemm.describe()


def test_the_backend_is_chosen_per_dtype(monkeypatch):
    monkeypatch.setattr(cpu_gemm, "_choice", {})
    assert cpu_gemm.backend(torch.bfloat16) == ("onednn" if ONEDNN_BF16 is None else "torch")
    assert cpu_gemm.describe(torch.bfloat16).startswith("oneDNN bf16 GEMM" if ONEDNN_BF16 is None else "torch bf16")
    assert cpu_gemm.backend(torch.float16) == "torch"            # oneDNN is asked for fp32 and bf16 only
    x, w = torch.randn(3, 32).bfloat16(), torch.randn(8, 32).bfloat16()
    assert cpu_gemm.gemm(x, w).dtype == torch.bfloat16


def test_an_unknown_backend_name_is_named_not_passed_off_as_torch(monkeypatch):
    monkeypatch.setattr(cpu_gemm, "_choice", {})
    monkeypatch.setenv("QWEN35_CPU_GEMM", "mkl")
    assert cpu_gemm.backend() == "torch"
    text = cpu_gemm.describe()
    assert "'mkl'" in text and "not one of" in text and "QWEN35_CPU_GEMM=torch" not in text


@pytest.mark.parametrize("backend", BACKENDS)
def test_backbone_fast_path_equals_the_naive_path(anima_ckpt, monkeypatch, backend):
    """The whole small model: blocked decode + GEMM vs whole-weight upcast + F.linear."""
    monkeypatch.setattr(cpu_gemm, "_choice", {torch.float32: (backend, None)})
    monkeypatch.setattr(cpu_linear, "BLOCK_ELEMENTS", 64 * 40)       # several blocks per linear at test sizes
    monkeypatch.setattr(cpu_linear, "ROW_MULTIPLE", 16)
    bb = load_encoder(anima_ckpt, dtype="fp32").backbone
    ids = torch.arange(1000, 1077)[None]
    with torch.inference_mode():
        fast = bb(ids)
        monkeypatch.setattr(cpu_linear, "supports", lambda x, w: False)
        naive = bb(ids)
    assert (fast - naive).abs().max().item() < 1e-5 * naive.abs().max().item()


# -- bf16 matmuls in an fp32 model (the CPU's bf16 mode) ---------------------------------------------------------

BF16_BACKENDS = ["torch", pytest.param("onednn", marks=pytest.mark.skipif(
    ONEDNN_BF16 is not None, reason=f"no oneDNN bf16 here: {ONEDNN_BF16}"))]


@pytest.mark.parametrize("fp8", [torch.float8_e4m3fn, torch.float8_e5m2])
@pytest.mark.parametrize("flush", [False, True])
def test_decode_to_bf16_through_fp32_is_exact_for_every_code_even_with_subnormals_flushed(fp8, flush):
    """The bf16 route (fp16 -> fp32 -> bf16) gives torch's conversion for every finite code; the values it writes
    are normal bf16 numbers, so a CPU that flushes subnormal inputs (AMX, AVX512-BF16) still sees them."""
    w = all_codes(fp8)
    out, bits, staging = torch.empty(16, 16, dtype=torch.bfloat16), torch.empty(16, 16, dtype=torch.int16), \
        torch.empty(16, 16)
    torch.set_flush_denormal(flush)     # returns whether the CPU supports it, not the previous mode
    try:
        got = fp8_decode.decode_into(w, out, bits, staging)
        scaled = fp8_decode.decode_scaled_into(w, torch.empty_like(out), bits, staging)
    finally:
        torch.set_flush_denormal(False)     # torch's default; leaving it on would change every later test
    ref = fp8_decode.decode_reference(w, torch.bfloat16)
    finite = torch.isfinite(ref)
    assert same_bits(torch.where(finite, got, 0), torch.where(finite, ref, 0))
    nonzero = finite & (ref != 0)
    smallest = scaled[nonzero].float().abs().min().item()
    assert smallest >= torch.finfo(torch.bfloat16).tiny          # normal: nothing for a flushing CPU to drop
    assert same_bits(fp8_decode.decode(w.contiguous(), torch.bfloat16)[finite], ref[finite])


def test_straight_bf16_decode_is_torch_conversion_for_every_code():
    """E4M3 -> bf16 bits -> * 2^120: every finite code bit for bit (subnormals, -0.0), in place in the int16 buffer;
    the NaN code reads as +-480 (the loader refuses it), as on the fp16 route."""
    w = all_codes(torch.float8_e4m3fn)
    bits = torch.empty(16, 16, dtype=torch.int16)
    got = fp8_decode.decode_e4m3_bf16_into(w, bits)
    ref = fp8_decode.decode_reference(w, torch.bfloat16)
    finite = torch.isfinite(ref)
    assert got.data_ptr() == bits.data_ptr() and got.dtype == torch.bfloat16
    assert same_bits(torch.where(finite, got, 0), torch.where(finite, ref, 0))
    assert torch.equal(got[~finite].abs().float(), torch.full((2,), 480.0))
    assert got[finite & (ref != 0)].float().abs().min().item() >= torch.finfo(torch.bfloat16).tiny   # all normal


def _decodes_taken(monkeypatch) -> list:
    taken = []
    for name in ("decode_e4m3_bf16_into", "decode_scaled_into", "decode_into"):
        real = getattr(cpu_linear, name)
        monkeypatch.setattr(cpu_linear, name, lambda *a, real=real, name=name: taken.append(name) or real(*a))
    return taken


@pytest.mark.parametrize("backend", BF16_BACKENDS)
def test_bf16_linear_takes_the_straight_decode_unless_subnormals_are_flushed(backend, monkeypatch):
    """Where bf16 arithmetic keeps subnormals, E4M3 weights decode straight to bf16; where the host has turned on
    flush-to-zero (torch.set_flush_denormal), the probe says so and the linear takes the fp16 route, whose
    hardware conversion ignores that mode. Both give the same bits."""
    g = torch.Generator().manual_seed(7)
    w = (torch.randn(64, 48, generator=g) * 0.01).to(torch.float8_e4m3fn)     # mostly E4M3 subnormals
    assert (w.view(torch.uint8) & 0x78).eq(0).float().mean().item() > 0.3
    x = torch.randn(5, 48, generator=g)
    taken = _decodes_taken(monkeypatch)
    assert fp8_decode.subnormals_survive()
    straight = cpu_linear.linear(x, w, backend=backend, gemm_dtype=torch.bfloat16)
    assert set(taken) == {"decode_e4m3_bf16_into"}
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU has no flush-to-zero mode to turn on")
    try:
        assert not fp8_decode.subnormals_survive()
        taken.clear()
        flushed = cpu_linear.linear(x, w, backend=backend, gemm_dtype=torch.bfloat16)
    finally:
        torch.set_flush_denormal(False)
    assert "decode_e4m3_bf16_into" not in taken and "decode_scaled_into" in taken
    assert same_bits(straight, flushed)
    exact = F.linear(x.double(), w.double())
    assert (straight.double() - exact).abs().max().item() < 2e-2 * exact.abs().max().item()


@pytest.mark.parametrize("backend", BF16_BACKENDS)
@pytest.mark.parametrize("rows", [16, 48, 203])
@pytest.mark.parametrize("tokens", [1, 18])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("wdtype", [torch.float8_e4m3fn, torch.float8_e5m2, torch.bfloat16, torch.float32])
def test_blocked_bf16_linear_is_the_whole_weight_bf16_matmul(backend, rows, tokens, bias, wdtype, monkeypatch):
    """x fp32, GEMM bf16: the blocked linear (x * 256 rounded once, weight decoded to bf16 block by block, the result
    and the bias in fp32) against the readable reference (x and the whole weight in bf16, F.linear, then fp32):
    bit for bit with the torch GEMM, to bf16 rounding with oneDNN's."""
    monkeypatch.setattr(cpu_linear, "ROW_MULTIPLE", 16)
    g = torch.Generator().manual_seed(4)
    w = (torch.randn(203, 96, generator=g) * 0.05).to(wdtype)
    b = torch.randn(203, generator=g).to(torch.bfloat16) if bias else None
    x = torch.randn(2, tokens, 96, generator=g) * 3
    got = cpu_linear.linear(x, w, b, block_elements=rows * 96, backend=backend, gemm_dtype=torch.bfloat16)
    ref = cpu_linear.linear_reference(x, w, b, torch.bfloat16)
    assert got.dtype == ref.dtype == torch.float32 and got.shape == (2, tokens, 203)
    if backend == "torch":
        assert same_bits(got, ref)
    else:
        assert (got - ref).abs().max().item() <= 1e-2 * ref.abs().max().item()
    exact = F.linear(x.double(), w.double(), None if b is None else b.double())
    assert (got.double() - exact).abs().max().item() < 2e-2 * exact.abs().max().item()   # bf16's 8-bit mantissa


def test_bf16_gemm_keeps_the_scale_folding_safe_near_the_limit():
    w = torch.full((24, 16), 0.015625).to(torch.float8_e4m3fn)
    x = torch.full((3, 16), 1e37)
    got = cpu_linear.linear(x, w, gemm_dtype=torch.bfloat16)
    ref = cpu_linear.linear_reference(x, w, None, torch.bfloat16)
    assert torch.isfinite(ref).all() and same_bits(got, ref)


def test_stored_linear_passes_its_gemm_dtype():
    w = (torch.randn(300, 128) * 0.1).to(torch.float8_e4m3fn)
    lin = StoredLinear(w, torch.randn(300).to(torch.bfloat16))
    x = torch.randn(1, 20, 128)
    exact = lin(x)
    lin.gemm_dtype = torch.bfloat16
    half = lin(x)
    assert half.dtype == torch.float32 and not same_bits(half, exact)
    assert same_bits(half, cpu_linear.linear(x, w, lin.bias, gemm_dtype=torch.bfloat16))
    lin.cache_upcast(torch.bfloat16, UpcastBudget(1 << 30))           # a budgeted copy in the GEMM's dtype
    assert lin._cached.dtype == torch.bfloat16 and same_bits(lin(x), half)
