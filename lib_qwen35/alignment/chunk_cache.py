"""Prompts through an encoder, mean-pooled, with a resumable on-disk cache of fixed-size chunks.

Encoders are duck-typed: anything with `tokenize(text) -> ids` and `encode_batch(list of ids) -> list of
[T_i, D] tensors` works (the 4B `Encoder`, `qwen3.Qwen3Encoder`, or a wrapper around a WebUI's loaded stock
encoder). An `identity` string attribute enables the disk cache (without it, nothing is cached).
"""

from __future__ import annotations

import hashlib
import inspect
import os

import torch

from ..errors import FitCancelled, FitInputError, NonFiniteOutputError, PromptError, Qwen35Error
from ..files import safe_io
from ..files.checkpoint import load_tensors, read_file_header
from .corpus import Prompt

POOLING_VERSION = "meanpool-v1"      # bump if pooling changes: it is part of the cache key


def encoder_cache_key(encoder) -> str | None:
    """What makes two runs' embeddings interchangeable: weights identity, compute dtype, device type, and where
    the arithmetic is not the dtype's throughout, its name (`numerics`; bf16 matmuls in an fp32 model on the CPU:
    model/devices.py numerics_tag). So chunks of the CPU's bf16 matmuls, of the older all-bf16 CPU path (same
    dtype and device, no tag) and of fp32 are never mixed. Where everything computes in the dtype the key is what
    it always was, so the chunks of earlier runs stay usable."""
    ident = getattr(encoder, "identity", None)
    if not ident:
        return None
    dev = getattr(encoder, "device", "cpu")
    dev_type = dev.type if isinstance(dev, torch.device) else str(dev).split(":")[0]
    raw = f"{ident}|{getattr(encoder, 'dtype', '')}|{dev_type}|{POOLING_VERSION}"
    numerics = getattr(encoder, "numerics", "")
    if numerics:
        raw += f"|{numerics}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def texts_sha256(prompts: list[Prompt]) -> str:
    """SHA-256 of the prompts' texts in order: what a chunk was made from."""
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
                ok = ((f.metadata() or {}).get("prompts_sha256") == texts_sha256(chunk)
                      and f.get_slice("pooled").get_shape()[0] == len(chunk))
        except Exception:   # noqa: BLE001 - a chunk that cannot be read is not cached, whatever the reason
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
        sha = texts_sha256(chunk)
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
