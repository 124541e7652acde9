"""Alignment -> calibration -> scale, against hand-computed values, and the file checks."""

import math

import pytest
import torch
from safetensors.torch import save_file

from lib_qwen35 import Alignment, Calibration, OutputStage, OutputStageFileError


def _rot2(theta):
    c, s = math.cos(theta), math.sin(theta)
    return torch.tensor([[c, -s], [s, c]])


def test_formulas_by_hand():
    R = _rot2(math.pi / 2)                         # (x, y) -> (-y, x)
    al = Alignment(R, mean_4b=torch.tensor([1.0, 0.0]), mean_06b=torch.tensor([0.0, 10.0]))
    cal = Calibration(scale=torch.tensor([2.0, 0.5]), bias=torch.tensor([1.0, -1.0]))
    x = torch.tensor([[3.0, 4.0]])
    # alignment, a = 0.5: R (x - m4) = R (2, 4) = (-4, 2); + 0.5 m4 + 0.5 m6 = (-4 + 0.5, 2 + 5) = (-3.5, 7)
    assert torch.allclose(al.apply(x, 0.5), torch.tensor([[-3.5, 7.0]]))
    # a = 1: (-4, 2) + (0, 10) = (-4, 12); a = 0: (-4, 2) + (1, 0) = (-3, 2)
    assert torch.allclose(al.apply(x, 1.0), torch.tensor([[-4.0, 12.0]]))
    assert torch.allclose(al.apply(x, 0.0), torch.tensor([[-3.0, 2.0]]))
    # calibration: (2*3 + 1, 0.5*4 - 1) = (7, 1)
    assert torch.allclose(cal.apply(x), torch.tensor([[7.0, 1.0]]))
    # order: alignment, calibration, scale: (-3.5, 7) -> (-6, 2.5) -> * 3 = (-18, 7.5)
    stage = OutputStage(alignment=al, strength=0.5, calibration=cal, output_scale=3.0)
    assert torch.allclose(stage.apply(x), torch.tensor([[-18.0, 7.5]]))


def test_identity_stage_returns_input():
    x = torch.randn(5, 8)
    assert OutputStage().is_identity and torch.equal(OutputStage().apply(x), x)


def test_round_trip_files(tmp_path):
    d = 16
    q, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64))
    al = Alignment(q.float(), torch.randn(d), torch.randn(d))
    al.save(tmp_path / "rotation_matrix.safetensors", {"prompts": 10})
    back = Alignment.load(tmp_path / "rotation_matrix.safetensors")
    assert torch.equal(back.rotation, al.rotation) and back.metadata["prompts"] == "10"
    cal = Calibration(torch.rand(d) + 0.5, torch.randn(d))
    cal.save(tmp_path / "calibration_params.safetensors")
    assert torch.equal(Calibration.load(tmp_path / "calibration_params.safetensors").bias, cal.bias)


@pytest.mark.parametrize("tensors, message", [
    ({"rotation": torch.eye(4), "mean_4b": torch.zeros(4)}, "missing"),
    ({"rotation": torch.eye(4), "mean_4b": torch.zeros(3), "mean_06b": torch.zeros(4)}, r"mean_4b.*expected \[4\]"),
    ({"rotation": torch.ones(4, 3), "mean_4b": torch.zeros(4), "mean_06b": torch.zeros(4)}, "square"),
    ({"rotation": 2 * torch.eye(4), "mean_4b": torch.zeros(4), "mean_06b": torch.zeros(4)}, "not orthogonal"),
    ({"rotation": torch.eye(4), "mean_4b": torch.tensor([0, float("nan"), 0, 0]), "mean_06b": torch.zeros(4)},
     "NaN or Inf"),
])
def test_bad_alignment_files(tmp_path, tensors, message):
    save_file(tensors, tmp_path / "a.safetensors")
    with pytest.raises(OutputStageFileError, match=message):
        Alignment.load(tmp_path / "a.safetensors")


def test_bad_calibration_files(tmp_path):
    save_file({"scale": torch.ones(4), "bias": torch.zeros(5)}, tmp_path / "c.safetensors")
    with pytest.raises(OutputStageFileError, match=r"bias.*expected \[4\]"):
        Calibration.load(tmp_path / "c.safetensors")
    (tmp_path / "x.safetensors").write_bytes(b"not a file")
    with pytest.raises(OutputStageFileError, match="not a safetensors file.*calibration file with tensors"):
        Calibration.load(tmp_path / "x.safetensors")
    with pytest.raises(OutputStageFileError, match="not found"):
        Calibration.load(tmp_path / "missing.safetensors")


def test_dimension_mismatch_with_encoder_output():
    stage = OutputStage(calibration=Calibration(torch.ones(4), torch.zeros(4)))
    with pytest.raises(OutputStageFileError, match="4-dim embeddings but the encoder outputs 1024"):
        stage.apply(torch.zeros(3, 1024))


def test_invalid_settings():
    with pytest.raises(ValueError, match="strength"):
        OutputStage(strength=1.5)
    with pytest.raises(ValueError, match="finite"):
        OutputStage(output_scale=float("inf"))


def test_numbers_are_converted_or_rejected():
    assert OutputStage(strength="0.5", output_scale="2").output_scale == 2.0
    with pytest.raises(ValueError, match="must be a number"):
        OutputStage(output_scale=None)
    with pytest.raises(ValueError, match=">= 0"):
        OutputStage(output_scale=-1)
