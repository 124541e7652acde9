"""What happens to the encoder's [T, 1024] output before Anima's LLM adapter sees it.

    alignment    x' = R (x - mean_4b) + (1 - a) mean_4b + a mean_06b     (a = strength in [0, 1])
    calibration  x' = scale * x + bias                                    (per dimension)
    output_scale x' = s * x
applied in that order, each optional. File formats (as published for the prior ComfyUI node):
`rotation_matrix.safetensors` {rotation [D,D], mean_4b [D], mean_06b [D]} and
`calibration_params.safetensors` {scale [D], bias [D]}.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from dataclasses import dataclass

import torch

from ..errors import OutputStageFileError, OutputStageOverflowError
from ..files import safe_io
from ..files.checkpoint import load_tensors, read_file_header, written_by_us

ORTHOGONALITY_TOL = 1e-3   # max |R R^T - I|; a fitted rotation in fp32 is ~1e-6
MAX_DIM = 16384            # Anima's is 1024; a [16384, 16384] rotation is already 1 GiB in fp32
_FLOAT32_MAX = torch.finfo(torch.float32).max
HASH_LENGTH = 10           # as the encoder's short hash and the WebUIs' "Model hash"


def kind_of(tensor_names) -> str | None:
    """"alignment" (it has a rotation), "calibration" (scale and bias) or None: what a file's tensor names say it
    is, before any tensor is read."""
    names = set(tensor_names)
    if "rotation" in names:
        return "alignment"
    if {"scale", "bias"} <= names:
        return "calibration"
    return None


def content_hash(tensors: dict, keys: tuple[str, ...]) -> str:
    """HASH_LENGTH hex digits naming what an output-stage file applies: SHA-256 over each tensor of `keys`, in that
    order, as `name:shape;` and its float32 little-endian bytes. The file name, the metadata (a refit's date, say)
    and a storage dtype that gives the same float32 values leave it unchanged; any value the output stage uses
    changes it. Images record it in their infotext, the fit writes it, `inspect` prints it."""
    h = hashlib.sha256()
    for key in keys:
        t = tensors[key].detach().to("cpu", torch.float32).contiguous()
        h.update(f"{key}:{','.join(str(d) for d in t.shape)};".encode())
        h.update(t.numpy().astype("<f4", copy=False).tobytes())
    return h.hexdigest()[:HASH_LENGTH]


def _load(path, keys: tuple[str, ...], kind: str, shapes) -> tuple[dict, dict]:
    """Tensors `keys` (float32, owned) and the metadata of an output-stage file. `shapes(header_shapes)`
    checks the shapes from the header before any tensor is read, and returns an error text or None."""
    path = os.fspath(path)
    fix = (f"Expected a .safetensors {kind} file with tensors {list(keys)} (refit it with "
           f"`python -m lib_qwen35 fit`, or pick another).")
    header = read_file_header(path, f"{kind} file", OutputStageFileError, fix)
    names = header.tensors
    missing = [k for k in keys if k not in names]
    if missing:
        raise OutputStageFileError(f"{path}: not {safe_io.with_article(kind)} file: missing {missing} "
                                   f"(found {sorted(names)[:6]}); expected tensors {list(keys)}.")
    problem = shapes({k: names[k].shape for k in keys})
    if problem:
        raise OutputStageFileError(f"{path}: {problem}")
    raw = load_tensors(names, keys, "cpu", f"{kind} file", OutputStageFileError)
    tensors = {}
    for k in keys:
        try:
            tensors[k] = raw[k].to(torch.float32, copy=True)
        except (RuntimeError, TypeError):
            raise OutputStageFileError(f"{path}: tensor {k!r} is stored as {names[k].dtype}, not a number type; "
                                       f"{fix}") from None
        if not torch.isfinite(tensors[k]).all():
            raise OutputStageFileError(f"{path}: tensor {k!r} contains NaN or Inf; the {kind} file is corrupt.")
    return tensors, header.metadata


def _vector_problem(name, shape, dim):
    return None if tuple(shape) == (dim,) else f"{name!r} has shape {list(shape)}, expected [{dim}]."


def _dim_problem(name, d):
    if not 1 <= d <= MAX_DIM:
        return f"{name!r} has size {d}; an embedding size is 1 to {MAX_DIM} (Anima's is 1024)."
    return None


def _save(path, tensors: dict, metadata: dict | None, kind: str) -> None:
    """Write our own output-stage file: never over an existing file we did not write; atomically."""
    from safetensors.torch import save_file

    path = safe_io.check_output(path, f"{kind} file", ours=written_by_us, error=OutputStageFileError)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta.setdefault(safe_io.MARK_KEY, safe_io.MARK_VALUE)
    with safe_io.atomic_output(path) as tmp:
        save_file({k: v.float().contiguous() for k, v in tensors.items()}, tmp, metadata=meta)


@dataclass
class Alignment:
    rotation: torch.Tensor    # [D, D], orthogonal; applied as R @ x
    mean_4b: torch.Tensor     # [D]
    mean_06b: torch.Tensor    # [D]
    metadata: dict | None = None
    path: str | None = None   # the file it was loaded from (named in error messages)

    KEYS = ("rotation", "mean_4b", "mean_06b")

    @functools.cached_property
    def content_hash(self) -> str:
        return content_hash({"rotation": self.rotation, "mean_4b": self.mean_4b, "mean_06b": self.mean_06b},
                            self.KEYS)

    @staticmethod
    def _shapes(shapes) -> str | None:
        r = shapes["rotation"]
        if len(r) != 2 or r[0] != r[1]:
            return f"'rotation' has shape {list(r)}, expected a square [D, D]."
        return (_dim_problem("rotation", r[0]) or _vector_problem("mean_4b", shapes["mean_4b"], r[0])
                or _vector_problem("mean_06b", shapes["mean_06b"], r[0]))

    @classmethod
    def load(cls, path) -> "Alignment":
        t, meta = _load(path, cls.KEYS, "alignment", cls._shapes)
        R = t["rotation"]
        d = R.shape[0]
        err = (R.double() @ R.double().T - torch.eye(d, dtype=torch.float64)).abs().max().item()
        if err > ORTHOGONALITY_TOL:
            raise OutputStageFileError(f"{path}: 'rotation' is not orthogonal (max |R R^T - I| = {err:.3g} > "
                                       f"{ORTHOGONALITY_TOL}); refit the alignment.")
        return cls(R, t["mean_4b"], t["mean_06b"], meta, os.fspath(path))

    def save(self, path, metadata: dict | None = None) -> None:
        _save(path, {"rotation": self.rotation, "mean_4b": self.mean_4b, "mean_06b": self.mean_06b}, metadata,
              "alignment")

    def apply(self, x: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        R, m4, m6 = (t.to(x.device, torch.float32) for t in (self.rotation, self.mean_4b, self.mean_06b))
        x = x.float()
        return torch.einsum("ij,...j->...i", R, x - m4) + (1.0 - strength) * m4 + strength * m6


@dataclass
class Calibration:
    scale: torch.Tensor   # [D]
    bias: torch.Tensor    # [D]
    metadata: dict | None = None
    path: str | None = None   # the file it was loaded from (named in error messages)

    KEYS = ("scale", "bias")

    @functools.cached_property
    def content_hash(self) -> str:
        return content_hash({"scale": self.scale, "bias": self.bias}, self.KEYS)

    @staticmethod
    def _shapes(shapes) -> str | None:
        s = shapes["scale"]
        if len(s) != 1:
            return f"'scale' has shape {list(s)}, expected [D]."
        return _dim_problem("scale", s[0]) or _vector_problem("bias", shapes["bias"], s[0])

    @classmethod
    def load(cls, path) -> "Calibration":
        t, meta = _load(path, cls.KEYS, "calibration", cls._shapes)
        return cls(t["scale"], t["bias"], meta, os.fspath(path))

    def save(self, path, metadata: dict | None = None) -> None:
        _save(path, {"scale": self.scale, "bias": self.bias}, metadata, "calibration")

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

    def _steps(self):
        """(name, function) in the order they are applied."""
        if self.alignment is not None:
            yield "alignment", lambda x: self.alignment.apply(x, self.strength)
        if self.calibration is not None:
            yield "calibration", self.calibration.apply
        if self.output_scale != 1.0:
            yield "output_scale", lambda x: x * self.output_scale

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., D] -> [..., D] float32. The result is checked to be finite: an overflow (e.g. a huge scale)
        is an OutputStageOverflowError naming the step, never a silent Inf/NaN."""
        d = x.shape[-1]
        for part, n in ((self.alignment, "alignment"), (self.calibration, "calibration")):
            if part is not None:
                pd = part.mean_4b.shape[0] if n == "alignment" else part.scale.shape[0]
                if pd != d:
                    raise OutputStageFileError(f"{n} file is for {pd}-dim embeddings but the encoder outputs {d}.")
        y = x.float()
        for _, step in self._steps():
            y = step(y)
        if not bool(torch.isfinite(y).all()):      # the one check; the search below runs only on failure
            raise self._overflow(x.float())
        return y

    def _overflow(self, x: torch.Tensor) -> OutputStageOverflowError:
        """Which step turned finite values into NaN/Inf (re-run step by step, on the error path only)."""
        if not bool(torch.isfinite(x).all()):
            return OutputStageOverflowError(
                "the encoder output is already NaN/Inf before the output stage. Fix: use bf16 or fp32 compute "
                "instead of fp16, or check the weights file.", "input")
        for name, step in self._steps():
            y = step(x)
            if not bool(torch.isfinite(y).all()):
                return OutputStageOverflowError(self._overflow_text(name, x), name)
            x = y
        return OutputStageOverflowError("the output stage produced NaN/Inf.", "output_stage")  # pragma: no cover

    def _overflow_text(self, name: str, x: torch.Tensor) -> str:
        biggest = x.abs().max().item()
        if name == "output_scale":
            return (f"output scale {self.output_scale:g} makes the embeddings overflow float32 (largest value "
                    f"{biggest:.3g} before scaling). Fix: use an output scale below "
                    f"{_FLOAT32_MAX / max(biggest, 1e-30):.3g} (1.0 = unchanged).")
        part = self.alignment if name == "alignment" else self.calibration
        where = f" {part.path}" if part.path else ""
        tensors = ("rotation", "mean_4b", "mean_06b") if name == "alignment" else ("scale", "bias")
        largest = ", ".join(f"max |{t}| = {getattr(part, t).abs().max().item():.3g}" for t in tensors)
        return (f"the {name} file{where} makes the embeddings overflow float32 ({largest}); its values are far "
                f"outside what a fit produces. Fix: refit it with `python -m lib_qwen35 fit`, pick another file, "
                f"or turn the {name} off.")
