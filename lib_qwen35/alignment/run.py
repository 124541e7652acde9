"""A whole fit: embed, fit, evaluate, write the files the output stage reads and the report.

Pipeline (`run_fit`):
  prompts (built-in corpus or a user file) -> both encoders in right-padded batches -> mean-pool each prompt
  -> pooled [N, D] per encoder, cached on disk in chunks, resumable (chunk_cache.py)
  -> deterministic 10% held-out split (split.py)
  -> fit on the training split: rotation and means (orthogonal Procrustes), then the calibration on the
     embeddings as they enter the calibration stage (procrustes.py)
  -> `rotation_matrix.safetensors` {rotation, mean_4b, mean_06b}, `calibration_params.safetensors` {scale, bias}
  -> report (JSON + Markdown): per category and overall, mean and min cosine on the held-out split between
     the pooled 0.6B embedding and the pooled 4B embedding: before alignment, rotation only (strength 0),
     strength 0.5, strength 1.0, strength 1.0 + calibration (report.py).
The output stage is affine per token, so pooling before or after it gives the same pooled vector.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import torch

from ..errors import FitCancelled, FitInputError, NonFiniteOutputError, Qwen35Error
from ..files import safe_io
from ..files.checkpoint import checkpoint_files, is_synthetic_checkpoint, written_by_us
from ..model.output_stage import Alignment, Calibration, content_hash
from .chunk_cache import POOLING_VERSION, cached_prompt_count, embed_prompts, texts_sha256
from .corpus import CORPUS_VERSION, Prompt, check_count, load_prompts
from .procrustes import apply_alignment, check_pairs, fit_calibration, procrustes
from .report import (
    REPORT_JSON,
    REPORT_MD,
    cosine_columns,
    is_our_report_json,
    is_our_report_md,
    report_markdown,
    summarise,
)
from .split import heldout_mask

ROTATION_FILE = "rotation_matrix.safetensors"
CALIBRATION_FILE = "calibration_params.safetensors"


@dataclass
class FitProgress:
    stage: str            # "embed 4B" | "embed 0.6B" | "fit" | "done"
    done: int             # prompts embedded so far (both encoders together)
    total: int            # 2 * number of prompts
    elapsed_s: float
    # The running stage's remaining time at its own rate (the two encoders' speeds differ a lot, so an
    # average over both stages misleads); None until this stage has computed a batch.
    eta_s: float | None
    rate: float | None = None        # prompt encodings per second computed in this stage (cache hits excluded)
    next_stage: str | None = None    # a stage still to come, whose rate is not known yet (not in eta_s)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def message(self) -> str:
        eta = ""
        if self.eta_s is not None:
            eta = f", ETA {format_seconds(self.eta_s)}"
            if self.next_stage:
                eta += f" for this stage, then {self.next_stage}"
        return f"{self.stage}: {self.done}/{self.total} prompt encodings{eta}"


@dataclass
class FitResult:
    out_dir: str
    rotation_path: str
    calibration_path: str
    report_json: str
    report_md: str
    report: dict
    metadata: dict = field(default_factory=dict)


def format_seconds(s: float) -> str:
    s = round(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def fit_from_embeddings(x: torch.Tensor, y: torch.Tensor, categories: list[str], heldout: torch.Tensor,
                        allow_underdetermined: bool = False) -> tuple[dict, dict, dict]:
    """(alignment tensors, calibration tensors, report) from pooled pairs; fits on ~heldout, reports on
    heldout (and on the training rows, for contrast)."""
    if len(categories) != x.shape[0] or heldout.shape[0] != x.shape[0]:
        raise FitInputError("categories / held-out mask do not match the number of prompts.")
    train = ~heldout
    check_pairs(x, y, allow_underdetermined)    # whole set first: sizes and NaN with global prompt indices
    if int(heldout.sum()) == 0:
        raise FitInputError("the held-out split is empty; use at least 10 prompts.")
    r, m4, m6 = procrustes(x[train], y[train], allow_underdetermined)
    aligned_train = apply_alignment(x[train].double(), r, m4, m6, 1.0)
    scale, bias = fit_calibration(aligned_train, y[train])
    hidx = heldout.nonzero().flatten().tolist()
    tidx = train.nonzero().flatten().tolist()
    cos_h = cosine_columns(x[hidx], y[hidx], r, m4, m6, scale, bias)
    cos_t = cosine_columns(x[tidx], y[tidx], r, m4, m6, scale, bias)
    report = {
        "heldout": summarise(cos_h, [categories[i] for i in hidx]),
        "train": summarise(cos_t, [categories[i] for i in tidx])["overall"],
        "counts": {"prompts": x.shape[0], "train": len(tidx), "heldout": len(hidx), "dim": x.shape[1]},
        "underdetermined": len(tidx) <= x.shape[1],
    }
    alignment = {"rotation": r.float(), "mean_4b": m4.float(), "mean_06b": m6.float()}
    calibration = {"scale": scale.float(), "bias": bias.float()}
    return alignment, calibration, report


def _describe(encoder, path_attr="path") -> tuple[str, str]:
    path = getattr(encoder, path_attr, None)
    h = getattr(encoder, "short_hash", None)
    return (os.path.basename(path) if path else type(encoder).__name__), (str(h) if h else "unknown")


def _reads_synthetic_weights(encoder) -> bool:
    """Whether the encoder was loaded from a lib_qwen35.synthetic checkpoint (random weights): a fit on it is a demo,
    whoever started it, and the WebUI refuses it with a real encoder."""
    path = getattr(encoder, "path", None)
    return isinstance(path, str) and is_synthetic_checkpoint(path)


def run_fit(encoder_4b, encoder_06b, out_dir: str, *, prompts: list[Prompt] | None = None,
            prompt_file: str | None = None, limit: int | None = None, corpus_id: str | None = None,
            batch_size: int = 32, chunk_size: int = 512, holdout: float = 0.1, cache_dir: str | None = None,
            progress=None, cancel=None, allow_underdetermined: bool = False, synthetic: bool = False,
            extra_metadata: dict | None = None) -> FitResult:
    """Embed, fit, write the two files and the report into `out_dir`; returns a FitResult.

    progress: callable(FitProgress) called after every batch (UI progress bars); cancel: threading.Event
    or a callable returning True to stop (raises FitCancelled; a later call with the same out_dir/cache_dir
    resumes from the cached chunks). cache_dir defaults to out_dir/embedding_cache.
    """
    # Arguments and outputs are checked first: a problem would otherwise only show after hours of embedding.
    outputs = check_request(out_dir, holdout=holdout, batch_size=batch_size, chunk_size=chunk_size, limit=limit,
                            inputs=_input_files(encoder_4b, encoder_06b, prompt_file))
    if prompts is None:
        prompts, corpus_id = load_prompts(prompt_file, limit)
    elif limit:
        prompts = prompts[:limit]
    corpus_id = corpus_id or f"custom:{texts_sha256(prompts)[:12]}"
    seen, unique = set(), []
    for p in prompts:               # a duplicate could sit on both sides of the split
        if p.text not in seen:
            seen.add(p.text)
            unique.append(p)
    prompts = unique
    cache_dir = cache_dir or os.path.join(out_dir, "embedding_cache")
    heldout = heldout_mask(prompts, holdout)
    n_train = len(prompts) - int(heldout.sum())

    # fail fast on sizes, before a long run
    probe = [encoder_4b.encode_batch([encoder_4b.tokenize("1girl, solo")])[0],
             encoder_06b.encode_batch([encoder_06b.tokenize("1girl, solo")])[0]]
    d4, d6 = probe[0].shape[-1], probe[1].shape[-1]
    check_pairs(torch.zeros(n_train, d4), torch.zeros(n_train, d6), allow_underdetermined)

    total, done, computed = 2 * len(prompts), 0, 0
    t0 = time.perf_counter()
    stage = {}

    def begin(name, next_stage):
        stage.update(name=name, next=next_stage, left=len(prompts), computed=0, busy_s=0.0,
                     last=time.perf_counter())

    def tick(n, cached):
        nonlocal done, computed
        now = time.perf_counter()
        done += n
        stage["left"] -= n
        if not cached:           # the stage's own rate: only its computed batches and their time
            computed += n
            stage["computed"] += n
            stage["busy_s"] += now - stage["last"]
        stage["last"] = now
        if progress:
            rate = stage["computed"] / stage["busy_s"] if stage["computed"] and stage["busy_s"] > 0 else None
            eta = stage["left"] / rate if rate else None
            progress(FitProgress(stage["name"], done, total, now - t0, eta, rate, stage["next"]))

    roles = (("4b", encoder_4b), ("06b", encoder_06b))
    embeddings = []
    for (role, encoder), name, next_stage in zip(roles, ("embed 4B", "embed 0.6B"), ("embed 0.6B", None)):
        begin(name, next_stage)
        try:
            embeddings.append(embed_prompts(encoder, prompts, role=role, cache_dir=cache_dir, batch_size=batch_size,
                                            chunk_size=chunk_size, on_batch=tick, cancel=cancel))
        except FitCancelled:
            raise _cancelled(name, roles, prompts, cache_dir, chunk_size) from None
    x, y = embeddings
    embed_s = time.perf_counter() - t0
    if progress:
        progress(FitProgress("fit", done, total, embed_s, 0.0))
    alignment, calibration, report = fit_from_embeddings(x, y, [p.category for p in prompts], heldout,
                                                         allow_underdetermined)
    synthetic = synthetic or _reads_synthetic_weights(encoder_4b)
    f4, h4 = _describe(encoder_4b)
    f6, h6 = _describe(encoder_06b)
    version = corpus_id.split(":")[0] if corpus_id.startswith(CORPUS_VERSION) else "user"
    meta = {"tool": "lib_qwen35.fit", "encoder_4b_file": f4, "encoder_4b_hash": h4, "encoder_06b_file": f6,
            "encoder_06b_hash": h6, "prompt_count": len(prompts), "train_count": report["counts"]["train"],
            "heldout_count": report["counts"]["heldout"], "corpus_version": version, "corpus_id": corpus_id,
            "pooling": POOLING_VERSION, "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "synthetic": "yes" if synthetic else "no"}
    meta.update(extra_metadata or {})
    overall = report["heldout"]["overall"]
    rot_path, cal_path = outputs[ROTATION_FILE], outputs[CALIBRATION_FILE]
    _check_fitted_finite(alignment, calibration)
    # What images made with the files record, and how a calibration names the alignment it was fitted after.
    hashes = {"alignment_hash": content_hash(alignment, Alignment.KEYS),
              "calibration_hash": content_hash(calibration, Calibration.KEYS)}
    _save(rot_path, alignment, {**meta, "kind": "alignment", "content_hash": hashes["alignment_hash"],
                                "heldout_cosine_before": overall["before"]["mean"],
                                "heldout_cosine_strength_1.0": overall["strength_1.0"]["mean"]})
    _save(cal_path, calibration, {**meta, "kind": "calibration", "content_hash": hashes["calibration_hash"],
                                  "alignment_hash": hashes["alignment_hash"],
                                  "fitted_on": "4B embeddings after alignment at strength 1.0",
                                  "heldout_cosine_calibrated": overall["calibrated"]["mean"]})
    report["meta"] = {**meta, **hashes, "synthetic": synthetic, "embed_seconds": round(embed_s, 2),
                      # one encoding = one prompt through one encoder; cached chunks are not counted
                      "encodings_computed": computed, "encodings_from_cache": total - computed,
                      "encodings_per_second": round(computed / embed_s, 2) if computed and embed_s > 0 else None}
    json_path, md_path = outputs[REPORT_JSON], outputs[REPORT_MD]
    safe_io.write_text_atomic(json_path, json.dumps(report, indent=2))
    safe_io.write_text_atomic(md_path, report_markdown(report))
    if progress:
        progress(FitProgress("done", total, total, time.perf_counter() - t0, 0.0))
    return FitResult(out_dir, rot_path, cal_path, json_path, md_path, report, meta)


def _cancelled(stage: str, roles, prompts, cache_dir, chunk_size) -> FitCancelled:
    """FitCancelled whose text counts what is really on disk for both encoders (a resume reuses it)."""
    cached = {role: cached_prompt_count(e, prompts, role=role, cache_dir=cache_dir, chunk_size=chunk_size)
              for role, e in roles}
    error = FitCancelled(f"fit cancelled in the '{stage}' stage. Cached on disk and reused when you run it again: "
                         f"4B {cached['4b']}/{len(prompts)} prompts, 0.6B {cached['06b']}/{len(prompts)} prompts.")
    error.cached, error.prompt_count = cached, len(prompts)
    return error


def _save(path: str, tensors: dict, metadata: dict) -> None:
    from safetensors.torch import save_file

    with safe_io.atomic_output(path) as tmp:
        save_file({k: v.float().contiguous() for k, v in tensors.items()}, tmp,
                  metadata={str(k): str(v) for k, v in metadata.items()})


def _check_fitted_finite(alignment: dict, calibration: dict) -> None:
    """The fit is float64; its float32 files must not overflow (e.g. a scale from a near-constant dimension)."""
    for kind, tensors in (("alignment", alignment), ("calibration", calibration)):
        for name, t in tensors.items():
            if not torch.isfinite(t.float()).all():
                raise NonFiniteOutputError(
                    f"the fitted {kind} tensor {name!r} does not fit in float32 (NaN/Inf); the embeddings are "
                    f"degenerate (e.g. a dimension that hardly varies). Check both encoders, or use more prompts.")


def check_request(out_dir: str, *, holdout: float = 0.1, batch_size: int = 32, chunk_size: int = 512,
                  limit: int | None = None, inputs=()) -> dict[str, str]:
    """Everything about a fit that can be checked before any encoder is loaded: the numbers, and that every
    output in `out_dir` may be written (none is an input (label, path) nor a file of someone else's).
    Returns {file name: path}; creates `out_dir`."""
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0.0 < holdout < 1.0:
        raise FitInputError(f"holdout must be a fraction between 0 and 1 (exclusive), got {holdout!r}")
    for name, value in (("batch size", batch_size), ("chunk size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FitInputError(f"{name} must be an integer >= 1, got {value!r}")
    if limit is not None:
        check_count(limit)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise FitInputError(f"output folder {out_dir} exists and is not a folder; pick another --out")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise FitInputError(f"cannot create the output folder {out_dir}: {e.strerror or e}; "
                            "pick another --out") from None
    return {name: safe_io.check_output(os.path.join(out_dir, name), what, inputs=inputs, ours=ours,
                                       error=FitInputError) for name, what, ours in _outputs()}


def _outputs():
    """(file name, what, predicate: is an existing file one of ours) of everything run_fit writes."""
    return ((ROTATION_FILE, "alignment file", written_by_us), (CALIBRATION_FILE, "calibration file", written_by_us),
            (REPORT_JSON, "report JSON file", is_our_report_json), (REPORT_MD, "report", is_our_report_md))


def _input_files(encoder_4b, encoder_06b, prompt_file) -> list[tuple[str, str]]:
    """(label, path) of the files the fit reads: it may write over none of them."""
    out = [("prompt file", prompt_file)] if prompt_file else []
    for label, enc in (("4B weights file", encoder_4b), ("0.6B weights file", encoder_06b)):
        path = getattr(enc, "path", None)
        if isinstance(path, str):
            try:
                out += [(label, f) for f in checkpoint_files(path)]
            except Qwen35Error:
                out.append((label, path))
    return out
