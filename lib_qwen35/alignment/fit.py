"""Fit and evaluate the 4B -> 0.6B output-space alignment (the files the output stage reads).

Pipeline (`run_fit`):
  prompts (built-in corpus or a user file) -> both encoders in right-padded batches -> mean-pool each prompt
  -> pooled [N, D] per encoder, cached on disk in chunks (resumable) -> deterministic 10% held-out split
  -> fit on the training split:
       rotation  R = U V^T with U S V^T = svd(Yc^T Xc)   (orthogonal Procrustes; Xc, Yc centred 4B / 0.6B)
       means     mean_4b, mean_06b
       calibration, fitted on the training embeddings *as they enter the calibration stage* (i.e. after
       alignment at strength 1.0, the order the output stage applies them):
                 scale = std_06b / std_in,  bias = mean_06b - scale * mean_in        (per dimension)
  -> `rotation_matrix.safetensors` {rotation, mean_4b, mean_06b}, `calibration_params.safetensors` {scale, bias}
  -> report (JSON + Markdown): per category and overall, mean and min cosine on the held-out split between
     the pooled 0.6B embedding and the pooled 4B embedding: before alignment, rotation only (strength 0),
     strength 0.5, strength 1.0, strength 1.0 + calibration.
The output stage is affine per token, so pooling before or after it gives the same pooled vector.

Encoders are duck-typed: anything with `tokenize(text) -> ids` and `encode_batch(list of ids) -> list of
[T_i, D] tensors` works (the 4B `Encoder`, `qwen3.Qwen3Encoder`, or a wrapper around Forge's loaded stock
encoder). An `identity` string attribute enables the disk cache (without it, nothing is cached).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import torch

from ..errors import NonFiniteOutputError, PromptError, Qwen35Error
from ..files import safe_io
from .corpus import CORPUS_VERSION, Prompt, check_count, load_prompts

POOLING_VERSION = "meanpool-v1"      # bump if pooling changes: it is part of the cache key
ROTATION_FILE = "rotation_matrix.safetensors"
CALIBRATION_FILE = "calibration_params.safetensors"
REPORT_JSON = "alignment_report.json"
REPORT_MD = "alignment_report.md"
COLUMNS = (  # (key, heading) of the report's cosine columns
    ("before", "before alignment"),
    ("rotation", "rotation only (strength 0)"),
    ("strength_0.5", "strength 0.5"),
    ("strength_1.0", "strength 1.0"),
    ("calibrated", "strength 1.0 + calibration"),
)


class FitCancelled(Qwen35Error):
    """The fit was cancelled (cancel flag set); the embedding chunks done so far are kept for a resume."""


class FitInputError(Qwen35Error):
    """The embeddings cannot be fitted (sizes disagree, too few prompts for the dimension, ...)."""


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
            eta = f", ETA {_fmt_s(self.eta_s)}" + (f" for this stage, then {self.next_stage}" if self.next_stage else "")
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


# ---------------------------------------------------------------------------------------------------------
# Split
# ---------------------------------------------------------------------------------------------------------
def heldout_mask(prompts: list[Prompt], fraction: float = 0.1) -> torch.Tensor:
    """Bool[N]: the ceil(fraction * N) prompts whose SHA-256 of the text is smallest. Deterministic and
    independent of the order of the prompts and of the machine."""
    n = len(prompts)
    k = min(n, max(1, math.ceil(fraction * n))) if fraction > 0 else 0
    keys = sorted(range(n), key=lambda i: (hashlib.sha256(prompts[i].text.encode("utf-8")).digest(), i))
    mask = torch.zeros(n, dtype=torch.bool)
    mask[keys[:k]] = True
    return mask


# ---------------------------------------------------------------------------------------------------------
# Embedding with a resumable on-disk cache
# ---------------------------------------------------------------------------------------------------------
def encoder_cache_key(encoder) -> str | None:
    """What makes two runs' embeddings interchangeable: weights identity, compute dtype, device type."""
    ident = getattr(encoder, "identity", None)
    if not ident:
        return None
    dev = getattr(encoder, "device", "cpu")
    dev_type = dev.type if isinstance(dev, torch.device) else str(dev).split(":")[0]
    raw = f"{ident}|{getattr(encoder, 'dtype', '')}|{dev_type}|{POOLING_VERSION}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _chunk_sha(prompts: list[Prompt]) -> str:
    h = hashlib.sha256()
    for p in prompts:
        h.update(p.text.encode("utf-8") + b"\n")
    return h.hexdigest()


def _is_cancelled(cancel) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


def _encode(encoder, batch: list[list[int]]) -> list[torch.Tensor]:
    """encoder.encode_batch, bypassing an interactive per-prompt cache and internal re-batching where the
    encoder offers options for that (a 41K-prompt fit would only churn the cache)."""
    try:
        params = inspect.signature(encoder.encode_batch).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs = {}
    if "use_cache" in params:
        kwargs["use_cache"] = False
    if "max_batch" in params:
        kwargs["max_batch"] = max(len(batch), 1)
    return encoder.encode_batch(batch, **kwargs)


def _read_chunk(path: str, sha: str, n: int) -> torch.Tensor | None:
    """The chunk's pooled [n, D] if the file is intact and was made from the same prompts, else None."""
    from ..files.checkpoint import load_tensors, read_file_header

    try:
        header = read_file_header(path, "embedding cache chunk", Qwen35Error)
        info = header.tensors.get("pooled")
        if header.metadata.get("prompts_sha256") != sha or info is None or info.dtype != "F32" \
                or len(info.shape) != 2 or info.shape[0] != n:
            return None
        return load_tensors(header.tensors, ["pooled"], "cpu", "embedding cache chunk", Qwen35Error)["pooled"]
    except Qwen35Error:     # not a regular file, truncated, corrupt: recompute it
        return None


def _write_chunk(path: str, pooled: torch.Tensor, sha: str) -> None:
    from safetensors.torch import save_file

    # The chunk folder <role>-<encoder key> is the cache's own: a regular file under a chunk name there is
    # a chunk (perhaps truncated by a kill) and may be replaced; a FIFO or a folder is refused.
    safe_io.check_output(path, "embedding cache chunk", ours=lambda _: True, error=FitInputError)
    with safe_io.atomic_output(path) as tmp:   # a kill never leaves a half-written chunk under the real name
        save_file({"pooled": pooled.contiguous()}, tmp, metadata={"prompts_sha256": sha, "pooling": POOLING_VERSION,
                                                                   safe_io.MARK_KEY: safe_io.MARK_VALUE + " fit"})


def cached_prompt_count(encoder, prompts: list[Prompt], *, role: str, cache_dir: str | None,
                        chunk_size: int = 512) -> int:
    """How many of `prompts` have an intact chunk on disk for this encoder (what a resume reuses)."""
    key = encoder_cache_key(encoder) if cache_dir else None
    if not key:
        return 0
    from safetensors import safe_open

    folder, count = os.path.join(cache_dir, f"{role}-{key}"), 0
    for c0 in range(0, len(prompts), chunk_size):
        chunk = prompts[c0: c0 + chunk_size]
        path = os.path.join(folder, f"chunk-{c0 // chunk_size:05d}.safetensors")
        try:
            with safe_open(path, framework="pt") as f:   # header only: no tensor is read
                ok = ((f.metadata() or {}).get("prompts_sha256") == _chunk_sha(chunk)
                      and f.get_slice("pooled").get_shape()[0] == len(chunk))
        except Exception:
            ok = False
        count += len(chunk) if ok else 0
    return count


def embed_prompts(encoder, prompts: list[Prompt], *, role: str, cache_dir: str | None = None,
                  batch_size: int = 32, chunk_size: int = 512, on_batch=None, cancel=None) -> torch.Tensor:
    """Mean-pooled embeddings [N, D] float32 (CPU) of `prompts` through `encoder`.

    Prompts are processed in fixed chunks of `chunk_size` (by position); within a chunk they are sorted by
    token count and encoded `batch_size` at a time (less padding). A finished chunk is written to
    `cache_dir/<role>-<encoder key>/chunk-XXXXX.safetensors` and reused by later runs, so a cancelled or
    killed run resumes where it stopped and gives bit-identical results (the chunks' batches are the same).
    `on_batch(n_prompts_done_now, cached: bool)` reports progress; `cancel` (threading.Event or callable)
    is checked between batches and raises FitCancelled.
    """
    key = encoder_cache_key(encoder) if cache_dir else None
    folder = os.path.join(cache_dir, f"{role}-{key}") if key else None
    if folder:
        os.makedirs(folder, exist_ok=True)
    parts = []
    for c0 in range(0, len(prompts), chunk_size):
        chunk = prompts[c0: c0 + chunk_size]
        sha = _chunk_sha(chunk)
        path = os.path.join(folder, f"chunk-{c0 // chunk_size:05d}.safetensors") if folder else None
        cached = _read_chunk(path, sha, len(chunk)) if path and os.path.lexists(path) else None
        if cached is not None:
            parts.append(cached)
            if on_batch:
                on_batch(len(chunk), True)
            continue
        ids = []
        for p in chunk:
            try:
                ids.append(list(encoder.tokenize(p.text)))
            except Qwen35Error:
                raise
            except Exception as e:
                raise PromptError(f"{role} encoder could not tokenize prompt {p.text[:80]!r}: {e}") from e
        order = sorted(range(len(chunk)), key=lambda i: (len(ids[i]), i))
        pooled: list = [None] * len(chunk)
        for b0 in range(0, len(order), batch_size):
            if _is_cancelled(cancel):
                raise FitCancelled(f"fit cancelled while embedding with the {role} encoder; "
                                   f"{c0} prompts are cached and will be reused when you run it again.")
            group = order[b0: b0 + batch_size]
            outs = _encode(encoder, [ids[i] for i in group])
            for i, out in zip(group, outs):
                if out.ndim != 2 or out.shape[0] != len(ids[i]):
                    raise FitInputError(f"{role} encoder returned shape {list(out.shape)} for a "
                                        f"{len(ids[i])}-token prompt; expected [T, D].")
                v = out.float().mean(dim=0).cpu()
                if not torch.isfinite(v).all():
                    raise NonFiniteOutputError(
                        f"the {role} encoder produced NaN/Inf for prompt {c0 + i} ({chunk[i].text[:80]!r}); "
                        f"use bf16 or fp32 instead of fp16, or check the weights file.")
                pooled[i] = v
            if on_batch:
                on_batch(len(group), False)
        dims = {v.shape[0] for v in pooled}
        if len(dims) != 1:
            raise FitInputError(f"{role} encoder returned embeddings of different widths {sorted(dims)}.")
        chunk_t = torch.stack(pooled)                               # [n, D]
        if path:
            _write_chunk(path, chunk_t, sha)
        parts.append(chunk_t)
    return torch.cat(parts) if parts else torch.zeros(0, 0)


# ---------------------------------------------------------------------------------------------------------
# The fit itself (pure tensor math, float64)
# ---------------------------------------------------------------------------------------------------------
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


def cosine_columns(x, y, rotation, mean_4b, mean_06b, scale, bias) -> dict[str, torch.Tensor]:
    """Cosine per prompt [N] for every report column (float64)."""
    x, y = x.double(), y.double()
    a = {s: apply_alignment(x, rotation, mean_4b, mean_06b, s) for s in (0.0, 0.5, 1.0)}
    cols = {"before": x, "rotation": a[0.0], "strength_0.5": a[0.5], "strength_1.0": a[1.0],
            "calibrated": a[1.0] * scale + bias}
    return {k: torch.nn.functional.cosine_similarity(v, y, dim=1) for k, v in cols.items()}


def summarise(cos: dict[str, torch.Tensor], categories: list[str]) -> dict:
    """{"overall": {col: {mean, min}, "n": N}, "categories": {cat: {...}}} over the given rows."""
    def block(idx):
        out = {"n": len(idx)}
        for k, _ in COLUMNS:
            v = cos[k][idx]
            out[k] = {"mean": round(v.mean().item(), 6), "min": round(v.min().item(), 6)}
        return out

    cats = sorted(set(categories), key=lambda c: (c not in _CAT_ORDER, _CAT_ORDER.get(c, 0), c))
    return {"overall": block(list(range(len(categories)))),
            "categories": {c: block([i for i, k in enumerate(categories) if k == c]) for c in cats}}


_CAT_ORDER = {c: i for i, c in enumerate(("spatial", "pose", "composition", "character", "environment", "meta",
                                          "multi"))}


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


# ---------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------
def report_markdown(report: dict) -> str:
    meta = report.get("meta", {})
    heads = [h for _, h in COLUMNS]
    lines = []
    if meta.get("synthetic"):
        lines.append("**SYNTHETIC DEMO: random weights, not the real encoders. These numbers say nothing "
                     "about real alignment quality.**\n")
    lines.append(f"Alignment report: cosine between pooled 4B and pooled 0.6B embeddings on the held-out "
                 f"split ({report['counts']['heldout']} of {report['counts']['prompts']} prompts; "
                 f"fitted on {report['counts']['train']}). Each cell: mean / min.\n")
    if meta:
        lines.append(f"Corpus `{meta.get('corpus_id')}`, 4B `{meta.get('encoder_4b_file')}` "
                     f"({meta.get('encoder_4b_hash')}), 0.6B `{meta.get('encoder_06b_file')}` "
                     f"({meta.get('encoder_06b_hash')}), {meta.get('date')}.\n")
    if report.get("underdetermined"):
        lines.append("Warning: fewer training prompts than dimensions; the rotation is underdetermined.\n")
    lines.append("| category | n | " + " | ".join(heads) + " |")
    lines.append("|---|---:|" + "---:|" * len(heads))
    rows = list(report["heldout"]["categories"].items()) + [("**overall**", report["heldout"]["overall"])]
    for name, b in rows:
        cells = [f"{b[k]['mean']:.4f} / {b[k]['min']:.4f}" for k, _ in COLUMNS]
        lines.append(f"| {name} | {b['n']} | " + " | ".join(cells) + " |")
    t = report["train"]
    lines.append("")
    lines.append("Training split, for contrast (mean / min): " + ", ".join(
        f"{h} {t[k]['mean']:.4f} / {t[k]['min']:.4f}" for k, h in COLUMNS) + ".")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------------------
def _describe(encoder, path_attr="path") -> tuple[str, str]:
    path = getattr(encoder, path_attr, None)
    h = getattr(encoder, "short_hash", None)
    return (os.path.basename(path) if path else type(encoder).__name__), (str(h) if h else "unknown")


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
    corpus_id = corpus_id or f"custom:{_chunk_sha(prompts)[:12]}"
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
    _save(rot_path, alignment, {**meta, "kind": "alignment",
                                "heldout_cosine_before": overall["before"]["mean"],
                                "heldout_cosine_strength_1.0": overall["strength_1.0"]["mean"]})
    _save(cal_path, calibration, {**meta, "kind": "calibration",
                                  "fitted_on": "4B embeddings after alignment at strength 1.0",
                                  "heldout_cosine_calibrated": overall["calibrated"]["mean"]})
    report["meta"] = {**meta, "synthetic": synthetic, "embed_seconds": round(embed_s, 2),
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


def _is_our_report_json(path) -> bool:
    data = json.loads(safe_io.read_text(path, "report", 64 << 20, Qwen35Error))
    return isinstance(data, dict) and isinstance(data.get("meta"), dict) and data["meta"].get("tool") == "lib_qwen35.fit"


def _is_our_report_md(path) -> bool:
    first = safe_io.read_text(path, "report", 64 << 20, Qwen35Error).split("\n", 1)[0]
    return first.startswith(("Alignment report:", "**SYNTHETIC DEMO"))


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
        raise FitInputError(f"cannot create the output folder {out_dir}: {e.strerror or e}; pick another --out") from None
    return {name: safe_io.check_output(os.path.join(out_dir, name), what, inputs=inputs, ours=ours,
                                       error=FitInputError) for name, what, ours in _outputs()}


def _outputs():
    """(file name, what, predicate: is an existing file one of ours) of everything run_fit writes."""
    from ..files.checkpoint import written_by_us

    return ((ROTATION_FILE, "alignment file", written_by_us), (CALIBRATION_FILE, "calibration file", written_by_us),
            (REPORT_JSON, "report JSON file", _is_our_report_json), (REPORT_MD, "report", _is_our_report_md))


def _input_files(encoder_4b, encoder_06b, prompt_file) -> list[tuple[str, str]]:
    """(label, path) of the files the fit reads: it may write over none of them."""
    from ..files.checkpoint import checkpoint_files

    out = [("prompt file", prompt_file)] if prompt_file else []
    for label, enc in (("4B weights file", encoder_4b), ("0.6B weights file", encoder_06b)):
        path = getattr(enc, "path", None)
        if isinstance(path, str):
            try:
                out += [(label, f) for f in checkpoint_files(path)]
            except Qwen35Error:
                out.append((label, path))
    return out


# ---------------------------------------------------------------------------------------------------------
# "Compare with stock": what a setting does to one prompt, before generating
# ---------------------------------------------------------------------------------------------------------
def pooled(encoder, text: str) -> torch.Tensor:
    """Mean-pooled [D] float32 CPU embedding of one prompt."""
    return encoder.encode_batch([encoder.tokenize(text)])[0].float().mean(0).cpu()


def compare_with_stock(prompt: str, encoder_4b, encoder_06b, output_stage=None) -> float:
    """Cosine between the pooled 4B embedding of `prompt` after `output_stage` (an
    output_stage.OutputStage, or None for the raw head output) and the pooled stock 0.6B embedding.
    1.0 means the adapter sees the same average direction as with the stock encoder."""
    x = encoder_4b.encode_batch([encoder_4b.tokenize(prompt)])[0].float()
    if output_stage is not None:
        x = output_stage.apply(x)
    y = pooled(encoder_06b, prompt)
    return float(torch.nn.functional.cosine_similarity(x.mean(0).cpu().double(), y.double(), dim=0))


def _fmt_s(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
