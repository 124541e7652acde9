"""Telling loaded stock encoders apart: the key of the alignment fit's resumable disk cache.

A WebUI's loaded Qwen3-0.6B has no file of its own we could hash cheaply (Forge Neo loads it from a
checkpoint or a module file, SD.Next from a diffusers folder), so its identity is the files the WebUI
loaded it from (path, size, mtime) plus a fingerprint of its parameters.
"""

from __future__ import annotations

import hashlib
import os

import torch

from lib_qwen35.files.checkpoint import short_hash

FINGERPRINT_VALUES = 64  # values sampled from each parameter for the weights fingerprint


def weights_fingerprint(module) -> str:
    """sha256 over every parameter's name, shape, dtype and first values: tells two loaded encoders
    apart without hashing 1.2 GB (a changed fine-tune changes its first values too)."""
    h = hashlib.sha256()
    try:
        named = sorted(module.named_parameters(), key=lambda kv: kv[0])
    except Exception:  # noqa: BLE001 - parameters that cannot be listed: the files tell it apart
        named = []
    for name, param in named:
        h.update(f"{name}|{tuple(param.shape)}|{param.dtype}".encode())
        try:
            with torch.no_grad():
                sample = param.detach().flatten()[:FINGERPRINT_VALUES].float().cpu()
            h.update(sample.numpy().tobytes())
        except Exception:  # noqa: BLE001 - quantized storage types that cannot be sampled: name/shape only
            pass
    return h.hexdigest()


def file_key(path: str) -> str:
    try:
        stat = os.stat(path)
        return f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}"
    except OSError:
        return str(path)


def short_hash_or_none(path: str) -> str | None:
    try:
        return short_hash(path)
    except Exception:  # noqa: BLE001 - any failure means no hash
        return None


def identify(prefix: str, files: list[str], module, path: str | None) -> tuple[str, str]:
    """(identity, short_hash) of a loaded stock encoder: `prefix` + a hash of the files it was loaded from
    and of its weights' fingerprint; the short hash of its own file `path`, else the fingerprint's start."""
    fingerprint = weights_fingerprint(module)
    files_part = "|".join(file_key(f) for f in files)
    identity = prefix + hashlib.sha256(f"{files_part}|{fingerprint}".encode()).hexdigest()[:24]
    return identity, (short_hash_or_none(path) if path else None) or fingerprint[:10]
