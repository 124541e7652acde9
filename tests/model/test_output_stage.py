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


def test_content_hash_names_the_values_not_the_file(tmp_path):
    """The hash images record for an alignment / calibration: the same tensors give the same hash whatever the
    file name, metadata or storage dtype (when the float32 values are the same); any changed value changes it."""
    from lib_qwen35.model.output_stage import HASH_LENGTH, kind_of

    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))
    al = Alignment(q.float(), torch.randn(8, generator=g), torch.randn(8, generator=g))
    al.save(tmp_path / "a.safetensors", {"date": "2026-01-01"})
    al.save(tmp_path / "b.safetensors", {"date": "2027-02-02", "note": "a refit, same numbers"})
    a, b = Alignment.load(tmp_path / "a.safetensors"), Alignment.load(tmp_path / "b.safetensors")
    assert a.content_hash == b.content_hash == al.content_hash and len(a.content_hash) == HASH_LENGTH
    assert all(c in "0123456789abcdef" for c in a.content_hash)
    as_bf16 = {"rotation": torch.eye(8).to(torch.bfloat16), "mean_4b": torch.zeros(8).to(torch.bfloat16),
               "mean_06b": torch.ones(8).to(torch.bfloat16)}
    save_file(as_bf16, str(tmp_path / "bf16.safetensors"))
    exact = Alignment(torch.eye(8), torch.zeros(8), torch.ones(8))
    assert Alignment.load(tmp_path / "bf16.safetensors").content_hash == exact.content_hash
    for name in ("rotation", "mean_4b", "mean_06b"):          # one value changed, in each tensor
        changed = {k: getattr(al, k).clone() for k in Alignment.KEYS}
        flat = changed[name].flatten().clone()
        flat[3] += 1e-3
        changed[name] = flat.reshape(changed[name].shape)
        assert Alignment(**changed).content_hash != al.content_hash, name
    swapped = Alignment(al.rotation, al.mean_06b, al.mean_4b)   # the same bytes under other names
    assert swapped.content_hash != al.content_hash
    cal = Calibration(torch.ones(8), torch.zeros(8))
    assert cal.content_hash != Calibration(torch.ones(8), torch.full((8,), 1e-6)).content_hash
    assert kind_of(["rotation", "mean_4b", "mean_06b"]) == "alignment" and kind_of({"scale", "bias"}) == "calibration"
    assert kind_of(["pooled"]) is None and kind_of(["scale"]) is None
