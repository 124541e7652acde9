"""The fit's maths recovers known answers (rotation, means, calibration), matches the output stage's formula,
and names inputs it cannot fit."""


import pytest
import torch

from fake_encoders import random_orthogonal, rotated_pairs

from lib_qwen35.alignment.procrustes import apply_alignment, fit_calibration, procrustes
from lib_qwen35.errors import FitInputError, NonFiniteOutputError
from lib_qwen35.model.output_stage import Alignment


# --- the math ---------------------------------------------------------------------------------------------
def test_procrustes_recovers_known_rotation_and_means():
    x, y, r_true, shift = rotated_pairs()
    r, mx, my = procrustes(x, y)
    assert (r - r_true).abs().max().item() < 1e-4
    assert (r @ r.T - torch.eye(24, dtype=torch.float64)).abs().max().item() < 1e-10
    assert (mx - x.mean(0)).abs().max().item() < 1e-12
    assert (my - shift).abs().max().item() < 1e-3      # noise 1e-3 / sqrt(3000) per dim, plus rounding


def test_calibration_recovers_known_affine():
    g = torch.Generator().manual_seed(1)
    x = 2 + 3 * torch.randn(20000, 16, generator=g, dtype=torch.float64)
    scale_true = torch.linspace(0.2, 4.0, 16, dtype=torch.float64)
    bias_true = torch.linspace(-3, 3, 16, dtype=torch.float64)
    y = x * scale_true + bias_true + 1e-3 * torch.randn(20000, 16, generator=g, dtype=torch.float64)
    scale, bias = fit_calibration(x, y)
    assert (scale - scale_true).abs().max().item() < 1e-4
    assert (bias - bias_true).abs().max().item() < 1e-3


def test_calibration_keeps_flat_dimensions_finite():
    x = torch.randn(100, 4, dtype=torch.float64)
    x[:, 2] = 1.0
    scale, bias = fit_calibration(x, torch.randn(100, 4, dtype=torch.float64))
    assert torch.isfinite(scale).all() and scale[2] == 1.0


def test_formula_matches_output_stage():
    g = torch.Generator().manual_seed(2)
    d = 8
    r = random_orthogonal(d, g).float()
    m4, m6, x = torch.randn(d, generator=g), torch.randn(d, generator=g), torch.randn(5, 3, d, generator=g)
    stage = Alignment(r, m4, m6)
    for a in (0.0, 0.5, 1.0):
        assert torch.allclose(stage.apply(x, a), apply_alignment(x, r, m4, m6, a), atol=1e-5)


# --- bad inputs ---------------------------------------------------------------------------------------------
def test_mismatched_sizes():
    with pytest.raises(FitInputError, match="embedding sizes differ.*4B encoder outputs 32.*0.6B encoder 16"):
        procrustes(torch.randn(100, 32), torch.randn(100, 16))
    with pytest.raises(FitInputError, match="100 prompts but the 0.6B side has 90"):
        procrustes(torch.randn(100, 8), torch.randn(90, 8))


def test_too_few_prompts_for_dimension():
    x, y = torch.randn(40, 64), torch.randn(40, 64)
    with pytest.raises(FitInputError, match="too few prompts for the dimension: 40 training prompts for 64-dim"):
        procrustes(x, y)
    r, _, _ = procrustes(x, y, allow_underdetermined=True)       # explicit opt-in still gives an orthogonal R
    assert (r @ r.T - torch.eye(64, dtype=torch.float64)).abs().max().item() < 1e-10


def test_non_finite_embeddings_named():
    x, y = torch.randn(50, 4), torch.randn(50, 4)
    y[17, 2] = float("nan")
    with pytest.raises(NonFiniteOutputError, match=r"1 0.6B embeddings contain NaN/Inf \(prompts \[17\]\)"):
        procrustes(x, y)
