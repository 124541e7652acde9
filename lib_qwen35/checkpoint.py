"""Reading safetensors checkpoints: header parsing, key-prefix detection, lazy tensor loading.

Everything here is model-agnostic; what the tensors must look like for Qwen3.5 lives in `config.py`.
The header is parsed by hand (it is 8 bytes of length + JSON) so that a truncated or foreign file is
reported precisely, before any tensor is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass

import torch

from .errors import WeightsFileError

# safetensors dtype names -> torch dtypes (only the ones a text encoder can hold)
SAFETENSORS_DTYPES = {
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "F32": torch.float32,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_BYTES = {"F8_E4M3": 1, "F8_E5M2": 1, "BF16": 2, "F16": 2, "F32": 4, "F64": 8, "I64": 8, "I32": 4,
          "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_MAX_HEADER = 100 * 1024 * 1024  # the safetensors spec's own limit


@dataclass(frozen=True)
class TensorInfo:
    dtype: str          # safetensors name, e.g. "F8_E4M3"
    shape: tuple        # e.g. (8192, 2560)
    file: str           # the file that holds it (differs per shard)


def _read_one_header(path: str) -> tuple[dict, int]:
    """Parse one .safetensors file's header; return ({name: entry}, header_bytes). Checks sizes."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise WeightsFileError(f"{path}: file is {size} bytes, too small to be a safetensors file "
                                       f"(truncated download?). Re-download it.")
            (n,) = struct.unpack("<Q", head)
            if n <= 0 or n > _MAX_HEADER or 8 + n > size:
                raise WeightsFileError(
                    f"{path}: not a safetensors file, or truncated (header claims {n} bytes, file has {size}). "
                    f"Expected a .safetensors file such as qwen35_4b.safetensors; re-download it if it is one.")
            raw = f.read(n)
    except OSError as e:
        raise WeightsFileError(f"{path}: cannot read the weights file ({e.strerror or e}).") from e
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (UnicodeDecodeError, ValueError) as e:
        raise WeightsFileError(f"{path}: not a safetensors file (its header is not valid JSON: {e}).") from e
    header.pop("__metadata__", None)
    data_len = size - 8 - n
    end_max = 0
    for name, entry in header.items():
        try:
            dtype, shape, (start, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
        except (KeyError, TypeError, ValueError) as e:
            raise WeightsFileError(f"{path}: malformed safetensors header entry for {name!r}.") from e
        numel = 1
        for d in shape:
            numel *= int(d)
        if dtype in _BYTES and end - start != numel * _BYTES[dtype]:
            raise WeightsFileError(f"{path}: tensor {name!r} has {end - start} bytes but shape {list(shape)} "
                                   f"in {dtype} needs {numel * _BYTES[dtype]}; the file is corrupt.")
        end_max = max(end_max, end)
    if end_max > data_len:
        raise WeightsFileError(
            f"{path}: truncated: tensors need {end_max} data bytes but the file holds {data_len} "
            f"({size} bytes in all). The download is incomplete; re-download the file.")
    return header, n


def read_header(path: str) -> dict[str, TensorInfo]:
    """All tensors of a checkpoint: a .safetensors file, or a sharded `*.safetensors.index.json`
    (or a folder holding `model.safetensors.index.json` / `model.safetensors`)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        for cand in ("model.safetensors.index.json", "model.safetensors"):
            if os.path.exists(os.path.join(path, cand)):
                path = os.path.join(path, cand)
                break
        else:
            raise WeightsFileError(f"{path}: folder holds no model.safetensors or model.safetensors.index.json.")
    if not os.path.exists(path):
        raise WeightsFileError(f"{path}: weights file not found. Put qwen35_4b.safetensors in "
                               f"models/text_encoder (or pass the right path).")
    if path.endswith(".index.json"):
        try:
            with open(path, encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
        except (OSError, ValueError, KeyError) as e:
            raise WeightsFileError(f"{path}: not a valid safetensors index ({e}).") from e
        folder = os.path.dirname(path)
        out: dict[str, TensorInfo] = {}
        for shard in sorted(set(weight_map.values())):
            shard_path = os.path.join(folder, shard)
            if not os.path.exists(shard_path):
                raise WeightsFileError(f"{path}: shard {shard} is missing from {folder}.")
            header, _ = _read_one_header(shard_path)
            for name, e in header.items():
                out[name] = TensorInfo(e["dtype"], tuple(e["shape"]), shard_path)
        return out
    header, _ = _read_one_header(path)
    return {name: TensorInfo(e["dtype"], tuple(e["shape"]), path) for name, e in header.items()}


def detect_prefix(names, suffix: str) -> str | None:
    """The text before `suffix` in the (shortest) name ending with it, e.g. 'model.language_model.'."""
    hits = sorted((n[: -len(suffix)] for n in names if n.endswith(suffix)), key=len)
    hits = [h for h in hits if h == "" or h.endswith(".")]
    return hits[0] if hits else None


def load_tensors(infos: dict[str, TensorInfo], names, device="cpu") -> dict[str, torch.Tensor]:
    """Load `names` with their stored dtypes (memory-mapped read, FP8 stays FP8)."""
    from safetensors import safe_open

    by_file: dict[str, list[str]] = {}
    for n in names:
        by_file.setdefault(infos[n].file, []).append(n)
    out = {}
    for file, file_names in by_file.items():
        try:
            with safe_open(file, framework="pt", device=str(device)) as f:
                for n in file_names:
                    out[n] = f.get_tensor(n)
        except Exception as e:  # safetensors raises its own error types
            raise WeightsFileError(f"{file}: failed to read tensors ({e}).") from e
    return out


def file_identity(path: str) -> str:
    """A cheap identity for caches: resolved path, size and modification time."""
    path = os.path.realpath(os.fspath(path))
    st = os.stat(path)
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"


def short_hash(path: str, sample_bytes: int = 1 << 20) -> str:
    """10 hex digits identifying a weights file without reading all of it (for infotext): sha256 of
    the size, the header and up to 1 MiB at the start, middle and end of the data. Hashing the full
    4.8 GB file would take tens of seconds."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        for pos in (0, max(0, size // 2 - sample_bytes // 2), max(0, size - sample_bytes)):
            f.seek(pos)
            h.update(f.read(sample_bytes))
    return h.hexdigest()[:10]
