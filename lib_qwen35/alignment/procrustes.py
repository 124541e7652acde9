"""The fit itself, pure tensor maths in float64: the rotation and means (orthogonal Procrustes) and the per-dimension
calibration, from pooled 4B / 0.6B pairs.

       rotation  R = U V^T with U S V^T = svd(Yc^T Xc)   (orthogonal Procrustes; Xc, Yc centred 4B / 0.6B)
       means     mean_4b, mean_06b
       calibration, fitted on the training embeddings *as they enter the calibration stage* (i.e. after
       alignment at strength 1.0, the order the output stage applies them):
                 scale = std_06b / std_in,  bias = mean_06b - scale * mean_in        (per dimension)
"""

from __future__ import annotations

import math

import torch

from ..errors import FitInputError, NonFiniteOutputError


def check_pairs(x: torch.Tensor, y: torch.Tensor, allow_underdetermined: bool = False) -> None:
    """Raise FitInputError / NonFiniteOutputError with a specific message if (x, y) cannot be fitted."""
    if x.ndim != 2 or y.ndim != 2:
        raise FitInputError(f"expected two [N, D] matrices, got {list(x.shape)} and {list(y.shape)}.")
    if x.shape[0] != y.shape[0]:
        raise FitInputError(f"the 4B side has {x.shape[0]} prompts but the 0.6B side has {y.shape[0]}.")
    if x.shape[1] != y.shape[1]:
        raise FitInputError(f"embedding sizes differ: the 4B encoder outputs {x.shape[1]} dims and the 0.6B "
                            f"encoder {y.shape[1]}; an alignment maps between equal sizes (1024 for Anima). "
                            f"Check that the 4B file has the Anima projection head and the 0.6B file is Qwen3-0.6B.")
    for name, t in (("4B", x), ("0.6B", y)):
        bad = (~torch.isfinite(t)).any(dim=1).nonzero().flatten().tolist()
        if bad:
            raise NonFiniteOutputError(f"{len(bad)} {name} embeddings contain NaN/Inf (prompts {bad[:5]}); "
                                       f"encode in bf16/fp32, or remove those prompts.")
    n, d = x.shape
    if n < 2:
        raise FitInputError(f"need at least 2 training prompts, got {n}.")
    if n <= d and not allow_underdetermined:
        raise FitInputError(
            f"too few prompts for the dimension: {n} training prompts for {d}-dim embeddings; the rotation is "
            f"only determined with more than {d} (use the built-in corpus of 41,277, or at least "
            f"{math.ceil((d + 1) / 0.9)} prompts with the 10% held out). allow_underdetermined=True "
            f"(--allow-underdetermined) fits anyway; the rotation is then arbitrary outside the training span.")


def procrustes(x: torch.Tensor, y: torch.Tensor, allow_underdetermined: bool = False):
    """Orthogonal R [D, D] and means minimising sum ||R (x_i - mean_x) - (y_i - mean_y)||^2.
    x: 4B [N, D], y: 0.6B [N, D]. Returns (R, mean_x, mean_y) in float64."""
    check_pairs(x, y, allow_underdetermined)
    x, y = x.double(), y.double()
    mx, my = x.mean(0), y.mean(0)
    cross = (y - my).T @ (x - mx)                   # [D, D] = sum_i yc_i xc_i^T
    u, _, vt = torch.linalg.svd(cross)
    return u @ vt, mx, my


def fit_calibration(x_in: torch.Tensor, y: torch.Tensor, eps: float = 1e-12):
    """Per-dimension affine mapping the distribution of x_in onto y's: scale = std_y / std_in,
    bias = mean_y - scale * mean_in (float64). Dimensions with no spread in x_in keep scale 1."""
    x_in, y = x_in.double(), y.double()
    s_in, s_y = x_in.std(0, unbiased=False), y.std(0, unbiased=False)
    scale = torch.where(s_in > eps, s_y / s_in.clamp_min(eps), torch.ones_like(s_in))
    bias = y.mean(0) - scale * x_in.mean(0)
    return scale, bias


def apply_alignment(x, rotation, mean_4b, mean_06b, strength: float = 1.0):
    """The output stage's formula (x [..., D]): R (x - mean_4b) + (1 - a) mean_4b + a mean_06b."""
    return (x - mean_4b) @ rotation.T + (1.0 - strength) * mean_4b + strength * mean_06b
