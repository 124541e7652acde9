"""Where the extension looks for files, what it lists in the pickers, and how a picked name resolves.

Weights:      models/qwen35/ (everything there), then models/text_encoder/ and --text-encoder-dirs (only
              files whose header has the Qwen3.5 layout, so the stock Qwen3-0.6B / T5 files are not
              offered), then the folders of the "extra folders" setting.
Output stage: the bundled alignment_data/ (recursively), models/qwen35/, and the extra folders; a file is
              an alignment if its header has `rotation`, a calibration if it has `scale` and `bias`.
"Automatic" picks qwen35_4b.safetensors (else the first weights file found), and the bundled
rotation_matrix.safetensors / calibration_params.safetensors (else the first one found).
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct

from . import host
from .params import AUTOMATIC

EXTENSION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLED_ALIGNMENT_DIR = os.path.join(EXTENSION_ROOT, "alignment_data")
DEDICATED_FOLDER = "qwen35"  # models/qwen35
PREFERRED_WEIGHTS = "qwen35_4b.safetensors"
PREFERRED_ALIGNMENT = "rotation_matrix.safetensors"
PREFERRED_CALIBRATION = "calibration_params.safetensors"
QWEN35_MARKER_SUFFIX = "layers.0.linear_attn.in_proj_qkv.weight"
WEIGHT_EXTENSIONS = (".safetensors",)
SHARD_INDEX = "model.safetensors.index.json"

_header_cache: dict[str, frozenset] = {}  # file identity -> tensor names (or empty on failure)


@dataclasses.dataclass(frozen=True)
class FoundFile:
    name: str  # what the picker shows (base name)
    path: str


def dedicated_dir() -> str:
    return os.path.join(host.models_path(), DEDICATED_FOLDER)


def weights_search_dirs(extra_dirs=()) -> list[tuple[str, bool]]:
    """(folder, list_everything) in search order; text-encoder folders are filtered by header."""
    dirs = [(dedicated_dir(), True)]
    dirs += [(d, False) for d in host.text_encoder_dirs()]
    dirs += [(d, True) for d in extra_dirs]
    return _unique(dirs)


def output_stage_search_dirs(extra_dirs=()) -> list[str]:
    return [d for d, _ in _unique([(BUNDLED_ALIGNMENT_DIR, True), (dedicated_dir(), True)] + [(d, True) for d in extra_dirs])]


def list_weights(extra_dirs=()) -> list[FoundFile]:
    found: list[FoundFile] = []
    seen: set[str] = set()
    for folder, list_everything in weights_search_dirs(extra_dirs):
        for path in _walk(folder):
            name = os.path.basename(path)
            is_index = name == SHARD_INDEX
            if not (name.endswith(WEIGHT_EXTENSIONS) or is_index):
                continue
            if is_index:
                name = os.path.basename(os.path.dirname(path)) + "/" + SHARD_INDEX
            elif os.path.exists(os.path.join(os.path.dirname(path), SHARD_INDEX)):
                continue  # a shard: offered through its index
            if name in seen:
                continue
            if not list_everything and not _looks_like_qwen35(path):
                continue
            if list_everything and _is_output_stage_file(path):
                continue
            seen.add(name)
            found.append(FoundFile(name, path))
    return found


def list_alignments(extra_dirs=()) -> list[FoundFile]:
    return _list_output_stage(extra_dirs, {"rotation"})


def list_calibrations(extra_dirs=()) -> list[FoundFile]:
    return _list_output_stage(extra_dirs, {"scale", "bias"})


def resolve(name: str, candidates: list[FoundFile], preferred: str) -> str | None:
    """A picker value -> path. "Automatic" -> the preferred name, else the first candidate; an absolute
    or existing path is taken as is; None when nothing matches."""
    if name == AUTOMATIC:
        for found in candidates:
            if found.name == preferred:
                return found.path
        return candidates[0].path if candidates else None
    for found in candidates:
        if found.name == name:
            return found.path
    for found in candidates:  # a name saved in an infotext from another folder layout
        if os.path.basename(found.path) == os.path.basename(name):
            return found.path
    if os.path.isfile(name):
        return os.path.abspath(name)
    return None


def _list_output_stage(extra_dirs, required_keys: set) -> list[FoundFile]:
    found: list[FoundFile] = []
    seen: set[str] = set()
    for folder in output_stage_search_dirs(extra_dirs):
        for path in _walk(folder):
            name = os.path.basename(path)
            if not name.endswith(".safetensors") or name in seen:
                continue
            if required_keys <= _tensor_names(path):
                seen.add(name)
                found.append(FoundFile(name, path))
    return found


def _is_output_stage_file(path: str) -> bool:
    """Alignment/calibration files, and the alignment fit's embedding-cache chunks ({"pooled"}):
    data the fit and the output stage use, never weights, so never offered in the encoder picker."""
    names = _tensor_names(path)
    return "rotation" in names or {"scale", "bias"} <= names or names == frozenset({"pooled"})


def _looks_like_qwen35(path: str) -> bool:
    return any(n.endswith(QWEN35_MARKER_SUFFIX) for n in _tensor_names(path))


def _tensor_names(path: str) -> frozenset:
    """Tensor names from a safetensors header (or a shard index), cached per path/size/mtime."""
    try:
        stat = os.stat(path)
    except OSError:
        return frozenset()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    if key not in _header_cache:
        _header_cache[key] = _read_names(path, stat.st_size)
    return _header_cache[key]


def _read_names(path: str, size: int) -> frozenset:
    try:
        if path.endswith(".json"):
            with open(path, "r", encoding="utf-8") as f:
                return frozenset(json.load(f).get("weight_map", {}))
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length <= 0 or length > min(size - 8, 100 << 20):
                return frozenset()
            header = json.loads(f.read(length))
        return frozenset(k for k in header if k != "__metadata__")
    except (OSError, ValueError, struct.error):
        return frozenset()


def _walk(folder: str):
    if not folder or not os.path.isdir(folder):
        return
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        for file in sorted(files):
            yield os.path.join(root, file)


def _unique(items):
    out, seen = [], set()
    for folder, flag in items:
        key = os.path.normcase(os.path.abspath(folder))
        if key not in seen:
            seen.add(key)
            out.append((folder, flag))
    return out
