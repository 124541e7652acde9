"""What happens to the encoder's [T, 1024] output before Anima's LLM adapter sees it.

    alignment    x' = R (x - mean_4b) + (1 - a) mean_4b + a mean_06b     (a = strength in [0, 1])
    calibration  x' = scale * x + bias                                    (per dimension)
    output_scale x' = s * x
applied in that order, each optional. File formats (as published for the prior ComfyUI node):
`rotation_matrix.safetensors` {rotation [D,D], mean_4b [D], mean_06b [D]} and
`calibration_params.safetensors` {scale [D], bias [D]}.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from .errors import OutputStageFileError

ORTHOGONALITY_TOL = 1e-3   # max |R R^T - I|; a fitted rotation in fp32 is ~1e-6


def _load(path: str, keys: tuple[str, ...], kind: str) -> tuple[dict, dict]:
    from safetensors import safe_open

    path = os.fspath(path)
    if not os.path.exists(path):
        raise OutputStageFileError(f"{kind} file not found: {path}")
    try:
        with safe_open(path, framework="pt") as f:
            names = set(f.keys())
            missing = [k for k in keys if k not in names]
            if missing:
                raise OutputStageFileError(f"{path}: not a {kind} file: missing {missing} (found {sorted(names)[:6]}); "
                                           f"expected tensors {list(keys)}.")
            tensors = {k: f.get_tensor(k).float() for k in keys}
            meta = f.metadata() or {}
    except OutputStageFileError:
        raise
    except Exception as e:
        raise OutputStageFileError(f"{path}: cannot read {kind} file ({e}); expected a .safetensors file with "
                                   f"tensors {list(keys)}.") from e
    for k, t in tensors.items():
        if not torch.isfinite(t).all():
            raise OutputStageFileError(f"{path}: tensor {k!r} contains NaN or Inf; the {kind} file is corrupt.")
    return tensors, meta


def _check_vector(path, name, t, dim):
    if t.shape != (dim,):
        raise OutputStageFileError(f"{path}: {name!r} has shape {list(t.shape)}, expected [{dim}].")


def _save(path: str, tensors: dict, metadata: dict | None) -> None:
    from safetensors.torch import save_file

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file({k: v.float().contiguous() for k, v in tensors.items()}, os.fspath(path),
              metadata={str(k): str(v) for k, v in (metadata or {}).items()})


@dataclass
class Alignment:
    rotation: torch.Tensor    # [D, D], orthogonal; applied as R @ x
    mean_4b: torch.Tensor     # [D]
    mean_06b: torch.Tensor    # [D]
    metadata: dict | None = None

    KEYS = ("rotation", "mean_4b", "mean_06b")

    @classmethod
    def load(cls, path) -> "Alignment":
        t, meta = _load(path, cls.KEYS, "alignment")
        R = t["rotation"]
        if R.ndim != 2 or R.shape[0] != R.shape[1]:
            raise OutputStageFileError(f"{path}: 'rotation' has shape {list(R.shape)}, expected a square [D, D].")
        d = R.shape[0]
        _check_vector(path, "mean_4b", t["mean_4b"], d)
        _check_vector(path, "mean_06b", t["mean_06b"], d)
        err = (R.double() @ R.double().T - torch.eye(d, dtype=torch.float64)).abs().max().item()
        if err > ORTHOGONALITY_TOL:
            raise OutputStageFileError(f"{path}: 'rotation' is not orthogonal (max |R R^T - I| = {err:.3g} > "
                                       f"{ORTHOGONALITY_TOL}); refit the alignment.")
        return cls(R, t["mean_4b"], t["mean_06b"], meta)

    def save(self, path, metadata: dict | None = None) -> None:
        _save(path, {"rotation": self.rotation, "mean_4b": self.mean_4b, "mean_06b": self.mean_06b}, metadata)

    def apply(self, x: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        R, m4, m6 = (t.to(x.device, torch.float32) for t in (self.rotation, self.mean_4b, self.mean_06b))
        x = x.float()
        return torch.einsum("ij,...j->...i", R, x - m4) + (1.0 - strength) * m4 + strength * m6


@dataclass
class Calibration:
    scale: torch.Tensor   # [D]
    bias: torch.Tensor    # [D]
    metadata: dict | None = None

    KEYS = ("scale", "bias")

    @classmethod
    def load(cls, path) -> "Calibration":
        t, meta = _load(path, cls.KEYS, "calibration")
        if t["scale"].ndim != 1:
            raise OutputStageFileError(f"{path}: 'scale' has shape {list(t['scale'].shape)}, expected [D].")
        _check_vector(path, "bias", t["bias"], t["scale"].shape[0])
        return cls(t["scale"], t["bias"], meta)

    def save(self, path, metadata: dict | None = None) -> None:
        _save(path, {"scale": self.scale, "bias": self.bias}, metadata)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() * self.scale.to(x.device, torch.float32) + self.bias.to(x.device, torch.float32)


@dataclass
class OutputStage:
    alignment: Alignment | None = None
    strength: float = 1.0
    calibration: Calibration | None = None
    output_scale: float = 1.0

    def __post_init__(self):
        for name in ("strength", "output_scale"):
            value = getattr(self, name)
            try:
                setattr(self, name, float(value))
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a number, got {value!r}") from None
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"alignment strength must be in [0, 1], got {self.strength}")
        if not (math.isfinite(self.output_scale) and self.output_scale >= 0):
            raise ValueError(f"output scale must be a finite number >= 0, got {self.output_scale}")

    @property
    def is_identity(self) -> bool:
        return self.alignment is None and self.calibration is None and self.output_scale == 1.0

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., D] -> [..., D] float32."""
        d = x.shape[-1]
        for part, n in ((self.alignment, "alignment"), (self.calibration, "calibration")):
            if part is not None:
                pd = part.mean_4b.shape[0] if n == "alignment" else part.scale.shape[0]
                if pd != d:
                    raise OutputStageFileError(f"{n} file is for {pd}-dim embeddings but the encoder outputs {d}.")
        x = x.float()
        if self.alignment is not None:
            x = self.alignment.apply(x, self.strength)
        if self.calibration is not None:
            x = self.calibration.apply(x)
        return x * self.output_scale if self.output_scale != 1.0 else x
