"""The CPU's own weight code (ops/fp8_recode.py): every E4M3 code it takes decodes in three integer passes to exactly
w / 2^117 as a normal bf16 or fp32 number, comes back as the same byte, and a linear on it gives the E4M3 route's
bits in both matmul dtypes."""

import pytest
import torch

from lib_qwen35.ops import cpu_gemm, cpu_linear, fp8_decode, fp8_recode

ALL = torch.arange(256, dtype=torch.int16).to(torch.uint8)
TAKEN = ALL[(ALL & 0x7F) <= fp8_recode.MAX_MAGNITUDE_CODE]       # |w| <= 60: 208 codes, both signs
BF16_BACKENDS = ["torch", pytest.param("onednn", marks=pytest.mark.skipif(
    cpu_gemm.onednn_problem(torch.bfloat16) is not None, reason="no oneDNN bf16 GEMM here"))]
FP32_BACKENDS = ["torch", pytest.param("onednn", marks=pytest.mark.skipif(
    cpu_gemm.onednn_problem(torch.float32) is not None, reason="no oneDNN fp32 GEMM here"))]
# (matmul dtype, GEMM backend): every route that decodes the code
GEMMS = ([pytest.param(torch.bfloat16, b, id=f"bf16-{getattr(b, 'values', [b])[0]}") for b in BF16_BACKENDS]
         + [pytest.param(torch.float32, b, id=f"fp32-{getattr(b, 'values', [b])[0]}") for b in FP32_BACKENDS])


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(torch.int16), b.view(torch.int16))


@pytest.mark.parametrize("gemm_dtype, mantissa_bits", [(torch.bfloat16, 7), (torch.float32, 23)])
def test_every_code_taken_decodes_to_w_over_2_117_as_a_normal_number(gemm_dtype, mantissa_bits):
    w = TAKEN.clone().view(torch.float8_e4m3fn).view(1, -1)
    value = w.float()
    u = fp8_recode.recode_(w.clone())
    bits = torch.empty(u.shape, dtype=fp8_recode.bits_dtype(gemm_dtype))
    got = fp8_recode.decode_into(u, bits)
    assert got.data_ptr() == bits.data_ptr() and got.dtype == gemm_dtype
    assert torch.equal(got.float() * 2.0 ** 117, value)                              # exact, the sign of 0 too
    assert torch.equal(torch.signbit(got.float()), torch.signbit(value))
    exponent_field = (bits.long() >> mantissa_bits) & 0xFF
    assert bool((exponent_field[value != 0] >= 1).all())                            # no subnormal left
    assert (value[value != 0].abs().min().item(), value.abs().max().item()) == (2.0 ** -9, 60.0)


def test_the_code_is_e4m3_of_8w_and_restores_byte_for_byte():
    u = fp8_recode.recode_(TAKEN.clone().view(torch.float8_e4m3fn))
    small = TAKEN.view(torch.float8_e4m3fn).float().abs() <= 56                     # 8w still fits E4M3FN
    assert torch.equal(u[small].view(torch.float8_e4m3fn).float(), 8 * TAKEN[small].view(torch.float8_e4m3fn).float())
    assert len(set(u.tolist())) == TAKEN.numel()                                    # one code per weight value
    back = fp8_recode.restore_(u)
    assert back.dtype == torch.float8_e4m3fn and torch.equal(back.view(torch.uint8), TAKEN)


def test_recoding_is_in_place_and_restored_leaves_its_input_alone():
    w = TAKEN.repeat(7)[:-1].clone().view(torch.float8_e4m3fn)                      # an odd length
    ptr, original = w.data_ptr(), w.view(torch.uint8).clone()
    u = fp8_recode.recode_(w)
    assert u.dtype == fp8_recode.DTYPE and u.data_ptr() == ptr
    coded = u.clone()
    copy = fp8_recode.restored(u)
    assert torch.equal(u, coded) and copy.data_ptr() != ptr                         # the input is not touched
    assert torch.equal(copy.view(torch.uint8), original)


def test_unaligned_tensors_take_the_byte_table_with_the_same_result():
    storage = torch.cat([torch.zeros(1, dtype=torch.uint8), TAKEN.repeat(3)])
    w = storage[1:].view(torch.float8_e4m3fn)                                       # odd storage offset
    assert w.storage_offset() % 2 == 1
    expected = fp8_recode.recode_(TAKEN.repeat(3).clone().view(torch.float8_e4m3fn))
    assert torch.equal(fp8_recode.recode_(w), expected)
    assert storage[0].item() == 0                                                   # nothing outside w written


@pytest.mark.parametrize("code", [0x68, 0x7E, 0x7F, 0xE8, 0xFE])
def test_weights_beyond_60_or_nan_keep_e4m3(code):
    w = torch.cat([TAKEN, torch.tensor([code], dtype=torch.uint8)]).view(torch.float8_e4m3fn)
    assert not fp8_recode.recodable(w)
    with pytest.raises(ValueError, match="recodable"):
        fp8_recode.recode_(w.clone())
    kept = w.clone()
    assert fp8_recode.try_recode_(kept) is None and torch.equal(kept.view(torch.uint8), w.view(torch.uint8))
    assert fp8_recode.recodable(TAKEN.view(torch.float8_e4m3fn))


def test_only_contiguous_cpu_e4m3_is_recodable():
    w = TAKEN[:200].clone().view(torch.float8_e4m3fn).view(20, 10)
    assert fp8_recode.recodable(w)
    assert not fp8_recode.recodable(w.t())                                          # not contiguous
    assert not fp8_recode.recodable(w.view(torch.uint8))
    assert not fp8_recode.recodable(w.float().to(torch.float8_e5m2))
    assert not fp8_recode.recodable(w[:0])


@pytest.mark.parametrize("largest, a", [(0.0, 117), (1.0, 117), (1023.0, 117), (1024.0, 116), (3.0e4, 112),
                                        (float("inf"), 117), (float("nan"), 117)])
def test_x_scales_keep_x_below_2_127(largest, a):
    x = torch.tensor([[0.5, -largest]])
    x_factor, y_factor = fp8_recode.x_scales(x)
    assert (x_factor, y_factor) == (2.0 ** a, 2.0 ** (117 - a))
    if largest == largest and largest < float("inf"):
        assert torch.isfinite((x * x_factor).to(torch.bfloat16)).all()


def _weight(rows: int, K: int, seed: int) -> torch.Tensor:
    """Random bytes over every code the recode takes: subnormals, zeros of both signs, the largest values."""
    g = torch.Generator().manual_seed(seed)
    return TAKEN[torch.randint(0, TAKEN.numel(), (rows, K), generator=g)].view(torch.float8_e4m3fn)


@pytest.mark.parametrize("gemm_dtype, backend", GEMMS)
@pytest.mark.parametrize("scale", [1.0, 3000.0, 1e6])         # a = 117, 112, 98
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("x_dtype", [torch.float32, torch.bfloat16])
def test_a_linear_on_the_code_is_the_e4m3_route_bit_for_bit(gemm_dtype, backend, scale, bias, x_dtype):
    w = _weight(203, 96, 1)
    g = torch.Generator().manual_seed(2)
    x = (torch.randn(2, 9, 96, generator=g) * scale / 4).to(x_dtype)
    b = torch.randn(203, generator=g) if bias else None
    e4m3 = cpu_linear.linear(x, w, b, backend=backend, gemm_dtype=gemm_dtype, block_elements=128 * 96)
    coded = cpu_linear.linear(x, fp8_recode.recode_(w.clone()), b, backend=backend, gemm_dtype=gemm_dtype,
                              block_elements=128 * 96)
    assert same_bits(coded, e4m3) if x_dtype == torch.bfloat16 else torch.equal(coded, e4m3)
    if gemm_dtype == torch.float32 and x_dtype == torch.float32:    # fp32: within rounding of the naive path
        naive = cpu_linear.linear_reference(x, w, b)
        assert (coded - naive).abs().max() <= 1e-5 * naive.abs().max()


@pytest.mark.parametrize("gemm_dtype, backend", GEMMS)
def test_the_code_needs_no_subnormals_so_flush_to_zero_changes_nothing(gemm_dtype, backend):
    w = _weight(64, 48, 3)
    x = torch.randn(5, 48, generator=torch.Generator().manual_seed(4))
    u = fp8_recode.recode_(w.clone())
    kept = cpu_linear.linear(x, u, backend=backend, gemm_dtype=gemm_dtype)
    if not torch.set_flush_denormal(True):       # returns whether the CPU supports it, not the previous mode
        pytest.skip("this CPU has no flush-to-zero mode to turn on")
    try:
        flushed = cpu_linear.linear(x, u, backend=backend, gemm_dtype=gemm_dtype)
    finally:
        torch.set_flush_denormal(False)          # torch's default; leaving it on would change every later test
    assert torch.equal(kept, flushed)
    assert torch.equal(kept, cpu_linear.linear(x, w, backend=backend, gemm_dtype=gemm_dtype))


def test_e4m3_placed_straight_in_fp32_bits_would_lose_its_subnormals_to_flush_to_zero():
    """Why fp32 matmuls take the code rather than E4M3's bytes placed in fp32 bits (value / 2^120): the subnormal
    weights become fp32 subnormals, which flush-to-zero reads as 0."""
    subnormals = torch.tensor([[0x01, 0x07, 0x81]], dtype=torch.uint8)             # 2^-9, 7 * 2^-9, -2^-9
    placed = fp8_recode.decode_into(subnormals, torch.empty(1, 3, dtype=torch.int32))
    assert torch.equal(placed * 2.0 ** 120, subnormals.view(torch.float8_e4m3fn).float())   # exact without FTZ
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU has no flush-to-zero mode to turn on")
    try:
        flushed = placed * 2.0 ** 120
    finally:
        torch.set_flush_denormal(False)
    assert bool((flushed == 0).all())
    coded = fp8_recode.recode_(subnormals.clone().view(torch.float8_e4m3fn))
    assert bool((fp8_recode.decode_into(coded, torch.empty(1, 3, dtype=torch.int32)).abs()
                 >= torch.finfo(torch.float32).tiny).all())                         # the code: all normal


def test_fp16_on_the_code_takes_the_reference_on_the_restored_weight():
    gemm_dtype = torch.float16
    w = _weight(40, 32, 5)
    x = torch.randn(3, 32, generator=torch.Generator().manual_seed(6)).to(gemm_dtype)
    u = fp8_recode.recode_(w.clone())
    coded = u.clone()
    got = cpu_linear.linear(x, u, gemm_dtype=gemm_dtype)
    assert torch.equal(got, cpu_linear.linear_reference(x, w, None, gemm_dtype))
    assert torch.equal(u, coded)                                                   # the weight is not restored
    assert torch.equal(fp8_decode.decode_reference(u, torch.float32), w.float())
    assert torch.equal(fp8_decode.decode(u, torch.bfloat16), w.to(torch.bfloat16))


def test_many_blocks_shared_among_threads_give_the_single_thread_result(monkeypatch):
    w = _weight(97, 51, 8)                                                          # 4947 bytes, odd
    expected = fp8_recode.recode_(w.clone())
    monkeypatch.setattr(fp8_recode, "_BLOCK", 64)                                   # ~39 blocks of 64 pairs
    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, threads))                                          # at least two workers
    try:
        coded = fp8_recode.recode_(w.clone())
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(coded, expected)
    assert torch.equal(fp8_recode.restore_(coded).view(torch.uint8), w.view(torch.uint8))


@pytest.mark.parametrize("made_in_inference_mode", [False, True])
@pytest.mark.parametrize("called_in_inference_mode", [False, True])
def test_recoding_works_whatever_the_grad_modes_of_the_weight_and_the_caller(monkeypatch, made_in_inference_mode,
                                                                            called_in_inference_mode):
    """A WebUI may load under torch.inference_mode and move or recode outside it (or the reverse); worker threads
    do not inherit the caller's mode."""
    monkeypatch.setattr(fp8_recode, "_BLOCK", 64)                                   # several workers
    with torch.inference_mode(made_in_inference_mode):
        w = _weight(33, 31, 9).clone()                                              # odd: the last byte too
    expected = fp8_recode.recode_(_weight(33, 31, 9).clone())
    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, threads))
    try:
        with torch.inference_mode(called_in_inference_mode):
            coded = fp8_recode.recode_(w)
            assert torch.equal(coded, expected)
            assert torch.equal(fp8_recode.restore_(coded).view(torch.uint8), _weight(33, 31, 9).view(torch.uint8))
    finally:
        torch.set_num_threads(threads)
