"""Alignment and calibration files as a fit writes them (the metadata of alignment.run.run_fit, with random tensors),
for tests that need a fit's provenance without running one; and an unmarked copy of a synthetic checkpoint, which
stands for a real download (the same tensors without the "synthetic" header mark)."""

from __future__ import annotations

import os

import torch

DATE = "2026-12-04T10:11:12Z"


def fit_metadata(encoder_path, *, encoder_hash=None, synthetic=None, date=DATE, prompt_count=1200) -> dict:
    """The keys run_fit writes into both files, for a fit on `encoder_path` (its hash and synthetic mark, unless
    given)."""
    from lib_qwen35.files.checkpoint import encoder_hash as hash_of
    from lib_qwen35.files.checkpoint import is_synthetic_checkpoint

    if synthetic is None:
        synthetic = is_synthetic_checkpoint(encoder_path)
    return {"tool": "lib_qwen35.fit", "encoder_4b_file": os.path.basename(str(encoder_path)),
            "encoder_4b_hash": encoder_hash or hash_of(encoder_path), "encoder_06b_file": "qwen_3_06b_base.safetensors",
            "encoder_06b_hash": "6b7c8d9e0f", "prompt_count": str(prompt_count),
            "train_count": str(prompt_count - prompt_count // 10), "heldout_count": str(prompt_count // 10),
            "corpus_version": "anima-align-corpus-v1", "corpus_id": f"anima-align-corpus-v1:{prompt_count}",
            "pooling": "meanpool-v1", "date": date, "synthetic": "yes" if synthetic else "no"}


def fitted_tensors(seed=0, dim=1024):
    """(alignment, calibration) tensors of one made-up fit: a random orthogonal rotation, means, scale and bias."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    alignment = {"rotation": q.float(), "mean_4b": torch.randn(dim, generator=g) * 0.1,
                 "mean_06b": torch.randn(dim, generator=g) * 0.1}
    calibration = {"scale": 1.0 + 0.1 * torch.rand(dim, generator=g), "bias": 0.05 * torch.randn(dim, generator=g)}
    return alignment, calibration


def write_fitted_pair(rotation_path, calibration_path, encoder_path, *, seed=0, dim=1024, **meta_options):
    """Both files of one fit on `encoder_path`, with the content hashes and the pairing a fit records."""
    from lib_qwen35.model.output_stage import Alignment, Calibration

    a, c = fitted_tensors(seed, dim)
    alignment, calibration = Alignment(**a), Calibration(**c)
    meta = fit_metadata(encoder_path, **meta_options)
    if rotation_path is not None:
        os.makedirs(os.path.dirname(str(rotation_path)) or ".", exist_ok=True)
        alignment.save(rotation_path, {**meta, "kind": "alignment", "content_hash": alignment.content_hash,
                                       "heldout_cosine_before": "0.5012", "heldout_cosine_strength_1.0": "0.9123"})
    if calibration_path is not None:
        os.makedirs(os.path.dirname(str(calibration_path)) or ".", exist_ok=True)
        calibration.save(calibration_path, {**meta, "kind": "calibration", "content_hash": calibration.content_hash,
                                            "alignment_hash": alignment.content_hash,
                                            "heldout_cosine_calibrated": "0.9345"})
    return alignment.content_hash, calibration.content_hash


def write_fitted_alignment(path, encoder_path, *, seed=0, dim=1024, **meta_options) -> str:
    """One fit's alignment file; returns its content hash."""
    return write_fitted_pair(path, None, encoder_path, seed=seed, dim=dim, **meta_options)[0]


def unmarked_copy(source, target):
    """The tensors of a (synthetic) checkpoint saved without its "synthetic" mark: a stand-in for a real download."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as f:
        names = f.keys()
        save_file({k: f.get_tensor(k) for k in names}, str(target), metadata={"format": "pt"})
    return str(target)
