"""The DeltaNet's causal depthwise convolution: the channels-last kernel against the F.conv1d reference, and the
maths itself written out per tap."""

import pytest
import torch
import torch.nn.functional as F

from lib_qwen35.ops.causal_conv import causal_conv, causal_conv_reference


def _inputs(B, T, C, seed=0, stride_pad=3):
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(B, T, C + stride_pad, generator=g)      # a slice of a wider projection, as in the model
    return proj[..., :C], torch.randn(C, 1, 4, generator=g) * 0.5


@pytest.mark.parametrize("B, T, C", [(1, 1, 8), (1, 3, 16), (2, 5, 16), (3, 77, 64), (1, 300, 96), (32, 17, 32)])
def test_channels_last_kernel_is_the_reference_bit_for_bit(B, T, C):
    x, w = _inputs(B, T, C, seed=T)
    got, want = causal_conv(x, w), causal_conv_reference(x, w)
    assert got.shape == (B, T, C) and got.is_contiguous()
    assert torch.equal(got, want)


def test_the_maths_per_tap():
    """y[t] = silu(sum_j w[j] x[t - 3 + j]), x = 0 before the first token: written out, in float64."""
    x, w = _inputs(2, 9, 5, seed=1)
    xd, wd = x.double(), w.double()[:, 0, :]                      # [C, 4]
    want = torch.zeros(2, 9, 5, dtype=torch.float64)
    for t in range(9):
        for j in range(4):
            if t - 3 + j >= 0:
                want[:, t] += wd[:, j] * xd[:, t - 3 + j]
    assert (causal_conv(x, w).double() - F.silu(want)).abs().max().item() < 1e-6


def test_is_causal_and_leaves_its_input_alone():
    x, w = _inputs(1, 40, 16, seed=2)
    before = x.clone()
    base = causal_conv(x, w)
    assert torch.equal(x, before)
    moved = x.clone()
    moved[:, 30:] += 1.0                                           # the future only
    out = causal_conv(moved, w)
    assert torch.equal(out[:, :30], base[:, :30]) and not torch.equal(out[:, 30:], base[:, 30:])


def test_bf16_input_gives_bf16_close_to_fp32():
    x, w = _inputs(1, 50, 32, seed=4)
    got = causal_conv(x.bfloat16(), w)
    assert got.dtype == torch.bfloat16
    assert (got.float() - causal_conv(x, w)).abs().max().item() < 0.05
