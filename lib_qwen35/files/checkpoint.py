"""Reading safetensors checkpoints: header parsing, key-prefix detection, tensor loading.

Everything here is model-agnostic; what the tensors must look like for Qwen3.5 lives in `config.py`.
The header is parsed by hand (8 bytes of length + JSON) and every field is checked, so that a truncated,
foreign or hostile file is reported precisely (file, tensor, field), before any tensor is read.
Tensors are read into memory the process owns, one tensor at a time, never memory-mapped: a mapped file
that is truncated while loaded kills the process with SIGBUS, and one rewritten in place would silently
mix old and new weights. Each file read is checked to be the one whose header was parsed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass, field

import torch

from ..errors import Qwen35Error, WeightsFileError
from . import safe_io
from .safe_io import file_identity  # noqa: F401  (re-exported: callers import it from here)

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
          "I16": 2, "I8": 1, "U8": 1, "BOOL": 1, "U16": 2, "U32": 4, "U64": 8}
_MAX_HEADER = 100 * 1024 * 1024  # the safetensors spec's own limit
MAX_INDEX_BYTES = 64 << 20       # a sharded index lists names; the 4B model's is ~60 KB
STAGING_BYTES = 64 << 20         # host buffer per read when loading straight onto a GPU
WEIGHTS_FIX = "Expected a .safetensors file such as qwen35_4b.safetensors: re-download it, or pick the right one."
SHARD_INDEX_SUFFIX = ".index.json"


@dataclass(frozen=True)
class TensorInfo:
    dtype: str          # safetensors name, e.g. "F8_E4M3"
    shape: tuple        # e.g. (8192, 2560)
    file: str           # the file that holds it (differs per shard)
    offset: int = 0     # where its bytes start in `file`
    nbytes: int = 0
    file_stat: os.stat_result | None = field(default=None, compare=False, repr=False)  # when the header was read


@dataclass(frozen=True)
class FileHeader:
    path: str
    tensors: dict       # name -> TensorInfo
    metadata: dict      # the "__metadata__" strings
    stat: os.stat_result


def _short(value) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict, str, int, float, bool, type(None))) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_index(value) -> bool:
    return type(value) is int and value >= 0      # not bool, not 3.0


def _entry(path, name, entry, error, fix) -> tuple[str, tuple, int, int]:
    """(dtype, shape, start, end) of one header entry, every field checked."""
    def bad(field_name, value, expected):
        return error(f"{path}: tensor {name!r}: header field {field_name!r} is {_short(value)}, expected "
                     f"{expected}; the file is corrupt or not a safetensors file. {fix}")

    if not isinstance(entry, dict):
        raise error(f"{path}: header entry {name!r} is {_short(entry)}, expected an object with 'dtype', "
                    f"'shape' and 'data_offsets'; the file is corrupt or not a safetensors file. {fix}")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str):
        raise bad("dtype", dtype, 'a dtype name such as "BF16"')
    if not isinstance(shape, list) or not all(_is_index(d) for d in shape):
        raise bad("shape", shape, "a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_index(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        raise bad("data_offsets", offsets, "[start, end], integers with 0 <= start <= end")
    start, end = offsets
    numel = math.prod(shape)
    if dtype in _BYTES and end - start != numel * _BYTES[dtype]:
        raise error(f"{path}: tensor {name!r} has {end - start} bytes but shape {shape} in {dtype} needs "
                    f"{numel * _BYTES[dtype]}; the file is corrupt. {fix}")
    return dtype, tuple(shape), start, end


def read_file_header(path, what: str = "weights file", error=WeightsFileError, fix: str = WEIGHTS_FIX) -> FileHeader:
    """Parse and check one .safetensors file's header (reads only the header)."""
    path = os.fspath(path)
    f, st = safe_io.open_regular(path, what, error, fix)
    size = st.st_size
    with f:
        if size < 8:
            raise error(f"{path}: file is {size} bytes, too small to be a safetensors file (truncated "
                        f"download?). {fix}")
        head = bytearray(8)
        safe_io.read_into(f, memoryview(head), path, what, error)
        (n,) = struct.unpack("<Q", head)
        if n <= 0 or n > _MAX_HEADER or 8 + n > size:
            raise error(f"{path}: not a safetensors file, or truncated (header claims {n} bytes, file has "
                        f"{size}). {fix}")
        raw = bytearray(n)
        safe_io.read_into(f, memoryview(raw), path, what, error)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:   # RecursionError: [[[[... nesting
        reason = "it nests too deeply" if isinstance(e, RecursionError) else str(e)[:200]
        raise error(f"{path}: not a safetensors file (its header is not valid JSON: {reason}). {fix}") from None
    if not isinstance(header, dict):
        raise error(f"{path}: not a safetensors file (its header is a JSON {type(header).__name__}, expected an "
                    f"object). {fix}")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise error(f"{path}: header field '__metadata__' is {_short(metadata)}, expected an object of "
                    f"strings; the file is corrupt. {fix}")
    data_start, data_len = 8 + n, size - 8 - n
    tensors, spans = {}, []
    for name, entry in header.items():
        dtype, shape, start, end = _entry(path, name, entry, error, fix)
        tensors[name] = TensorInfo(dtype, shape, path, data_start + start, end - start, st)
        spans.append((start, end, name))
    pos, previous = 0, None
    for start, end, name in sorted(spans):      # the spec: tensors tile the data, no overlaps, no gaps
        if start != pos:
            how = f"overlaps {previous!r}" if start < pos else f"leaves a {start - pos}-byte gap after {previous!r}"
            raise error(f"{path}: tensor {name!r}: header field 'data_offsets' [{start}, {end}] {how}; the "
                        f"file is corrupt or not a safetensors file. {fix}")
        pos, previous = end, name
    if pos > data_len:
        raise error(f"{path}: truncated: tensors need {pos} data bytes but the file holds {data_len} ({size} "
                    f"bytes in all). The file is incomplete (an interrupted download or copy). {fix}")
    if pos < data_len:
        raise error(f"{path}: {data_len - pos} bytes follow the last tensor; the file is corrupt or not a "
                    f"safetensors file. {fix}")
    return FileHeader(path, tensors, metadata, st)


def written_by_us(path, synthetic: bool = False) -> bool:
    """Whether a .safetensors file is one of the library's outputs: its metadata carries our mark (or the
    fit's tag). Writers may replace such files; anything else is the user's. Synthetic checkpoints are
    weights: only the synthetic writer itself (synthetic=True) may replace them."""
    try:
        meta = read_file_header(path, "file", Qwen35Error).metadata
    except Qwen35Error:
        return False
    keys = (safe_io.MARK_KEY, "tool") + (("synthetic",) if synthetic else ())
    return any(meta.get(k, "").startswith(safe_io.MARK_VALUE) for k in keys)


def _plain_file_name(name) -> bool:
    return (isinstance(name, str) and name not in ("", ".", "..") and os.path.basename(name) == name
            and "/" not in name and "\\" not in name and "\x00" not in name)


def read_index(path) -> dict[str, str]:
    """The `weight_map` (tensor name -> shard file name in the same folder) of a sharded index, checked."""
    text = safe_io.read_text(path, "safetensors index", MAX_INDEX_BYTES, WeightsFileError, WEIGHTS_FIX)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise WeightsFileError(f"{path}: not a valid safetensors index: its JSON does not parse "
                               f"({'it nests too deeply' if isinstance(e, RecursionError) else str(e)[:200]}). "
                               f"{WEIGHTS_FIX}") from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise WeightsFileError(f"{path}: not a valid safetensors index: field 'weight_map' is "
                               f"{_short(weight_map)}, expected an object of tensor name -> shard file. "
                               f"{WEIGHTS_FIX}")
    for name, shard in weight_map.items():
        if not _plain_file_name(shard):
            raise WeightsFileError(f"{path}: field 'weight_map' maps {name!r} to {_short(shard)}; expected the "
                                   f"file name of a shard in the same folder (no folders, no '..'). {WEIGHTS_FIX}")
    return weight_map


def resolve_checkpoint(path) -> str:
    """A checkpoint path as given -> the file to read: a .safetensors file or a `*.safetensors.index.json`
    (a folder holding `model.safetensors.index.json` / `model.safetensors` resolves to that file)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        for cand in ("model.safetensors.index.json", "model.safetensors"):
            if os.path.exists(os.path.join(path, cand)):
                return os.path.join(path, cand)
        try:
            found = sorted(n for n in os.listdir(path) if n.endswith(".safetensors"))[:5]
        except OSError:
            found = []
        example = os.path.join(path, found[0] if found else "qwen35_4b.safetensors")
        raise WeightsFileError(f"{path}: is a folder, not a weights file (and it holds no model.safetensors or "
                               f"model.safetensors.index.json). Give the file itself, e.g. {example}"
                               + (f"; the folder holds {', '.join(found)}." if found else
                                  "; the folder holds no .safetensors file."))
    if not os.path.exists(path):
        raise WeightsFileError(f"{path}: weights file not found. Put qwen35_4b.safetensors in "
                               f"models/qwen35 (or pass the right path).")
    return path


def checkpoint_files(path) -> list[str]:
    """The data files of a checkpoint: the file itself, or the shards of an index (Qwen35Error if unreadable)."""
    path = resolve_checkpoint(path)
    if not path.endswith(SHARD_INDEX_SUFFIX):
        return [path]
    folder = os.path.dirname(path)
    return [os.path.join(folder, s) for s in sorted(set(read_index(path).values()))]


def checkpoint_identity(path) -> str:
    """Identity of a checkpoint for caches (stats, plus the index for a sharded one). OSError or
    WeightsFileError when it cannot be read."""
    return "+".join(safe_io.file_identity(f) for f in checkpoint_files(path))


def loaded_identity(infos: dict[str, TensorInfo]) -> str:
    """The identity of exactly the files whose headers `infos` came from (as checkpoint_identity says it)."""
    stats = {i.file: i.file_stat for i in infos.values()}
    return "+".join(safe_io.identity_from_stat(os.path.realpath(f), stats[f]) for f in sorted(stats))


def read_header(path) -> dict[str, TensorInfo]:
    """All tensors of a checkpoint: a .safetensors file, or a sharded `*.safetensors.index.json`
    (or a folder holding `model.safetensors.index.json` / `model.safetensors`)."""
    path = resolve_checkpoint(path)
    if not path.endswith(SHARD_INDEX_SUFFIX):
        return read_file_header(path).tensors
    folder = os.path.dirname(path)
    weight_map = read_index(path)
    headers = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = os.path.join(folder, shard)
        if not os.path.exists(shard_path):
            raise WeightsFileError(f"{path}: shard {shard} is missing from {folder}.")
        headers[shard] = read_file_header(shard_path).tensors
    out: dict[str, TensorInfo] = {}
    for name, shard in weight_map.items():
        if name not in headers[shard]:
            raise WeightsFileError(f"{path}: field 'weight_map' puts tensor {name!r} in {shard}, which does not "
                                   f"hold it; the index and the shards do not belong together. {WEIGHTS_FIX}")
        out[name] = headers[shard][name]
    return out


def detect_prefix(names, suffix: str) -> str | None:
    """The text before `suffix` in the (shortest) name ending with it, e.g. 'model.language_model.'."""
    hits = sorted((n[: -len(suffix)] for n in names if n.endswith(suffix)), key=len)
    hits = [h for h in hits if h == "" or h.endswith(".")]
    return hits[0] if hits else None


def load_tensors(infos: dict[str, TensorInfo], names, device="cpu", what: str = "weights file",
                 error=WeightsFileError) -> dict[str, torch.Tensor]:
    """Load `names` with their stored dtypes (FP8 stays FP8) into memory the process owns, one tensor at a
    time, straight onto `device`. Each file must still be the one whose header `infos` came from, and must
    not change while it is read; otherwise `error` says so (nothing half-read is returned)."""
    device = torch.device(device)
    by_file: dict[str, list[str]] = {}
    for n in names:
        by_file.setdefault(infos[n].file, []).append(n)
    staging = None
    out = {}
    changed = (f"the {what} changed while it was being loaded (a copy or download into the same path?). "
               f"Wait until it finishes, then try again.")
    for file, file_names in by_file.items():
        f, st = safe_io.open_regular(file, what, error, WEIGHTS_FIX)
        with f:
            expected = infos[file_names[0]].file_stat
            if expected is not None and not safe_io.same_file(st, expected):
                raise error(f"{file}: {changed}")
            for n in sorted(file_names, key=lambda n: infos[n].offset):   # one forward pass over the file
                info = infos[n]
                dtype = SAFETENSORS_DTYPES.get(info.dtype)
                if dtype is None:
                    raise error(f"{file}: tensor {n!r} is stored as {info.dtype}, which cannot be loaded "
                                f"(supported: {', '.join(SAFETENSORS_DTYPES)}).")
                f.seek(info.offset)
                if device.type == "cpu":
                    raw = torch.empty(info.nbytes, dtype=torch.uint8)
                    safe_io.read_into(f, memoryview(raw.numpy()), file, what, error)
                else:   # through a bounded host buffer: no host copy of the whole tensor
                    raw = torch.empty(info.nbytes, dtype=torch.uint8, device=device)
                    if staging is None:
                        staging = torch.empty(min(STAGING_BYTES, max(1, max(i.nbytes for i in infos.values()))),
                                              dtype=torch.uint8)
                    read_staged(f, raw, staging, file, what, error)
                out[n] = raw.view(dtype).reshape(info.shape)
            if not safe_io.same_file(os.fstat(f.fileno()), st):
                raise error(f"{file}: {changed}")
    return out


def read_staged(f, dest: torch.Tensor, staging: torch.Tensor, path, what: str, error) -> None:
    """Fill the uint8 tensor `dest` (on any device) from `f`, len(staging) bytes at a time."""
    for pos in range(0, dest.numel(), len(staging)):
        part = staging[: min(len(staging), dest.numel() - pos)]
        safe_io.read_into(f, memoryview(part.numpy()), path, what, error)
        dest[pos: pos + len(part)].copy_(part)


def short_hash(path: str, sample_bytes: int = 1 << 20) -> str:
    """10 hex digits identifying a weights file without reading all of it (for infotext): sha256 of
    the size, the header and up to 1 MiB at the start, middle and end of the data. Hashing the full
    4.8 GB file would take tens of seconds."""
    f, st = safe_io.open_regular(os.fspath(path), "weights file", WeightsFileError, WEIGHTS_FIX)
    size = st.st_size
    h = hashlib.sha256(str(size).encode())
    with f:
        for pos in (0, max(0, size // 2 - sample_bytes // 2), max(0, size - sample_bytes)):
            f.seek(pos)
            h.update(f.read(sample_bytes))
    return h.hexdigest()[:10]


def encoder_hash(path) -> str:
    """short_hash of the file a checkpoint path resolves to (a folder -> its model.safetensors[.index.json]): the one
    hash that infotexts, the fit's `encoder_4b_hash`, the accordion's status and `inspect --weights` compare."""
    return short_hash(resolve_checkpoint(path))


# The mark lib_qwen35.synthetic writes into the header of every checkpoint it makes ("synthetic" in a file's
# metadata, "written_by" in a sharded index's): random weights, never a real download.
SYNTHETIC_MARK = "lib_qwen35.synthetic"


def is_synthetic_checkpoint(path) -> bool:
    """Whether a weights file (or a sharded index, or a folder holding one) carries SYNTHETIC_MARK. Reads headers
    only; False for anything unreadable (loading it reports that)."""
    try:
        path = resolve_checkpoint(path)
        if path.endswith(SHARD_INDEX_SUFFIX):
            text = safe_io.read_text(path, "safetensors index", MAX_INDEX_BYTES, WeightsFileError, WEIGHTS_FIX)
            data = json.loads(text)
            meta = data.get("metadata") if isinstance(data, dict) else None
            return isinstance(meta, dict) and str(meta.get(safe_io.MARK_KEY, "")).startswith(SYNTHETIC_MARK)
        return (read_file_header(path, "weights file", Qwen35Error).metadata.get("synthetic", "")
                .startswith(SYNTHETIC_MARK))
    except (Qwen35Error, OSError, ValueError):
        return False
