"""The DeltaNet's short causal convolution: depthwise over time, kernel K (4), zero history, then SiLU.

    x [B, T, C], w [C, 1, K]  ->  y[b, t, c] = silu( sum_j w[c, 0, j] * x[b, t - (K-1) + j, c] )   (x = 0 before t = 0)

Reference (`causal_conv_reference`): F.conv1d on the left-padded, channels-first transpose, as transformers does
without its CUDA kernel; its result is a transposed view, which the split into q, k, v then copies again.
Fast (`causal_conv`): the same depthwise convolution as a 2-D one over [B, C, 1, T] in channels-last memory, which
is the [B, T, C] layout the projections produce: oneDNN's depthwise kernel reads and writes it as it is, so
nothing is transposed (on the CPU at 300 tokens, with the copies the split then needs: 6-9 ms a layer against
10-14). torch runs conv1d as a 2-D convolution itself, so on the CPU the two agree bit for bit
(tests/ops/test_causal_conv.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def causal_conv_reference(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x [B, T, C], w [C, 1, K] -> silu(conv) [B, T, C] (a transposed view)."""
    w = w.to(x.dtype)
    y = F.conv1d(F.pad(x.transpose(1, 2), (w.shape[-1] - 1, 0)), w, groups=x.shape[-1])
    return F.silu(y).transpose(1, 2)


def causal_conv(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x [B, T, C] (any strides), w [C, 1, K] -> silu(conv) [B, T, C], contiguous."""
    w = w.to(x.dtype)
    cl = x.contiguous().permute(0, 2, 1).unsqueeze(2)              # [B, C, 1, T], channels-last: no copy
    y = F.conv2d(F.pad(cl, (w.shape[-1] - 1, 0)), w.unsqueeze(2), groups=x.shape[-1])   # [B, C, 1, T]
    return F.silu(y.squeeze(2).permute(0, 2, 1), inplace=True)     # [B, T, C], contiguous
