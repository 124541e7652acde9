"""Where the extension looks for files, what it lists in the pickers, and how a picked name resolves.

Weights:      models/qwen35/ under the WebUI's models folder (everything there), then the WebUI's
              text-encoder folders (Forge Neo: models/text_encoder/ and --text-encoder-dirs; SD.Next: its
              "Text encoder" folder setting, models/Text-encoder/ by default; only files whose header has
              the Qwen3.5 layout, so the stock Qwen3-0.6B / T5 files are not offered), then the folders
              of the "extra folders" setting.
Output stage: the bundled alignment_data/ (recursively), models/qwen35/, and the extra folders; a file is
              an alignment if its header has `rotation`, a calibration if it has `scale` and `bias`. A second
              file with a name already listed is offered as "NAME [HASH]" (its content hash), unless it holds
              the same numbers (an identical copy adds nothing); plain names resolve to the first one.
Stock 0.6B:   the alignment tab's Qwen3-0.6B files when no Anima model is loaded: the text-encoder folders,
              models/qwen35/ and the extra folders; plain Qwen3 headers only.
"Automatic" picks qwen35_4b.safetensors (else the first weights file found), the bundled
rotation_matrix.safetensors / calibration_params.safetensors (else the first one found), and
qwen_3_06b_base.safetensors (else the first Qwen3-0.6B file found).
Scans never hang or raise: a file that is not a regular file (a FIFO would block the pickers), cannot be
read, or has a malformed header (the library's own checks) is skipped, reported once in the console, and
named by the "not found" messages. Folder loops through symlinks and huge trees are cut off.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat

from lib_qwen35.errors import Qwen35Error
from lib_qwen35.files import safe_io
from lib_qwen35.files.checkpoint import load_tensors, read_file_header, read_index
from lib_qwen35.model.output_stage import Alignment, Calibration, content_hash, kind_of

from . import messages, selection
from .params import AUTOMATIC

# lib_qwen35/host/ -> root
EXTENSION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLED_ALIGNMENT_DIR = os.path.join(EXTENSION_ROOT, "alignment_data")
DEDICATED_FOLDER = "qwen35"  # models/qwen35
PREFERRED_WEIGHTS = "qwen35_4b.safetensors"
PREFERRED_ALIGNMENT = "rotation_matrix.safetensors"
PREFERRED_CALIBRATION = "calibration_params.safetensors"
PREFERRED_STOCK = "qwen_3_06b_base.safetensors"   # the Qwen3-0.6B file Anima ships with
QWEN35_MARKER_SUFFIX = "layers.0.linear_attn.in_proj_qkv.weight"
STOCK_MARKER_SUFFIX = "layers.0.self_attn.q_norm.weight"  # plain Qwen3 (absent in Qwen3.5)
WEIGHT_EXTENSIONS = (".safetensors",)
SHARD_INDEX = "model.safetensors.index.json"

MAX_SCAN_FILES = 20000  # per folder: an "extra folder" set to / must not stall the pickers
_HEADER_CACHE_MAX = 4096
_header_cache: dict[str, frozenset | None] = {}  # file identity -> tensor names (None: skipped)
_skipped: dict[str, str] = {}  # path -> why it is not offered (the latest scan's view)
_reported: set = set()  # (identity, reason) already printed
_hash_cache: dict[str, str | None] = {}  # (kind, file identity) -> content hash (None: unreadable)
HASHED_NAME = re.compile(r"^(?P<name>.+) \[(?P<hash>[0-9a-f]{10})\]$")   # a same-named copy: "NAME [HASH]"


@dataclasses.dataclass(frozen=True)
class FoundFile:
    name: str  # what the picker shows (base name)
    path: str


def dedicated_dir() -> str:
    return os.path.join(selection.current().models_path(), DEDICATED_FOLDER)


def weights_search_dirs(extra_dirs=()) -> list[tuple[str, bool]]:
    """(folder, list_everything) in search order; text-encoder folders are filtered by header."""
    dirs = [(dedicated_dir(), True)]
    dirs += [(d, False) for d in selection.current().text_encoder_dirs()]
    dirs += [(d, True) for d in extra_dirs]
    return _unique(dirs)


def output_stage_search_dirs(extra_dirs=()) -> list[str]:
    return [d for d, _ in _unique([(BUNDLED_ALIGNMENT_DIR, True), (dedicated_dir(), True)]
                                  + [(d, True) for d in extra_dirs])]


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
            names = _tensor_names(path)
            if names is None:  # unreadable: skipped and reported
                continue
            if not list_everything and not _looks_like_qwen35(names):
                continue
            if list_everything and _is_output_stage_file(names):
                continue
            seen.add(name)
            found.append(FoundFile(name, path))
    return found


def stock_search_dirs(extra_dirs=()) -> list[str]:
    return list(dict.fromkeys(selection.current().text_encoder_dirs() + [dedicated_dir()] + list(extra_dirs)))


def list_alignments(extra_dirs=()) -> list[FoundFile]:
    return list_output_stage("alignment", extra_dirs)


def list_calibrations(extra_dirs=()) -> list[FoundFile]:
    return list_output_stage("calibration", extra_dirs)


def list_output_stage(kind: str, extra_dirs=()) -> list[FoundFile]:
    """The alignment or calibration files (`kind`) in search order. A later file with a name already listed is
    offered as "NAME [HASH]" (two fits shared under one name stay apart), unless it holds the same numbers."""
    found: list[FoundFile] = []
    by_name: dict[str, list[str]] = {}
    for folder in output_stage_search_dirs(extra_dirs):
        for path in _walk(folder):
            name = os.path.basename(path)
            if not name.endswith(".safetensors"):
                continue
            names = _tensor_names(path)
            if names is None or kind_of(names) != kind:
                continue
            if name not in by_name:
                by_name[name] = [path]
                found.append(FoundFile(name, path))
                continue
            digest = file_content_hash(path, kind)     # hashed only here: same-named copies are rare
            if digest is not None and digest not in {file_content_hash(p, kind) for p in by_name[name]}:
                by_name[name].append(path)
                found.append(FoundFile(f"{name} [{digest}]", path))
    return found


def file_content_hash(path: str, kind: str) -> str | None:
    """The content hash of an alignment or calibration file (what infotexts record), cached per file identity; None
    for a file that cannot be read as one (its load at generation time gives the full error)."""
    try:
        key = (kind, safe_io.identity_from_stat(path, os.stat(path)))
    except (OSError, ValueError):
        return None
    if key not in _hash_cache:
        if len(_hash_cache) >= _HEADER_CACHE_MAX:
            _hash_cache.clear()
        keys = Alignment.KEYS if kind == "alignment" else Calibration.KEYS
        try:
            header = read_file_header(path, f"{kind} file")
            _hash_cache[key] = content_hash(load_tensors(header.tensors, keys, "cpu", f"{kind} file"), keys)
        except (Qwen35Error, OSError, ValueError, RuntimeError, TypeError, KeyError):   # never breaks a paste or picker
            _hash_cache[key] = None
    return _hash_cache[key]


def output_stage_candidates(kind: str, extra_dirs=()):
    """(files, hash function) for looking a pasted file up by name and content hash (paste_lookup.resolve)."""
    return list_output_stage(kind, extra_dirs), lambda path: file_content_hash(path, kind)


def list_stock_encoders(extra_dirs=()) -> list[FoundFile]:
    """Qwen3-0.6B files (plain Qwen3 layout, recognised by their tensors) in stock_search_dirs."""
    return _list_by_header(stock_search_dirs(extra_dirs), _looks_like_plain_qwen3)


def weights_path(name: str, extra_dirs=()) -> str:
    """The weights file a picker value names; raises WeightsFileError (where it looked, what it skipped, the fix)."""
    path = resolve(name, list_weights(extra_dirs), PREFERRED_WEIGHTS)
    if path is None:
        searched = [d for d, _ in weights_search_dirs(extra_dirs)]
        raise messages.weights_not_found(name, searched, skipped_in(searched))
    return path


def output_stage_path(kind: str, name: str, extra_dirs=()) -> str:
    """The alignment or calibration file (`kind`) a picker value names; raises OutputStageFileError."""
    if kind == "alignment":
        candidates, preferred = list_alignments(extra_dirs), PREFERRED_ALIGNMENT
    else:
        candidates, preferred = list_calibrations(extra_dirs), PREFERRED_CALIBRATION
    path = resolve(name, candidates, preferred, kind)
    if path is None:
        shown = f"{preferred} (Automatic)" if name == AUTOMATIC else name
        searched = output_stage_search_dirs(extra_dirs)
        raise messages.output_stage_not_found(kind, shown, searched, skipped_in(searched))
    return path


def resolve(name: str, candidates: list[FoundFile], preferred: str, kind: str | None = None) -> str | None:
    """A picker value -> path. "Automatic" -> the preferred name, else the first candidate; an absolute
    or existing path is taken as is; None when nothing matches. A "NAME [HASH]" value whose file moved resolves
    to the file with that content hash (`kind` given), else to NAME."""
    if name == AUTOMATIC:
        for found in candidates:
            if found.name == preferred:
                return found.path
        return candidates[0].path if candidates else None
    for found in candidates:
        if found.name == name:
            return found.path
    hashed = HASHED_NAME.match(name)
    if hashed:
        if kind is not None:
            for found in candidates:
                if file_content_hash(found.path, kind) == hashed["hash"]:
                    return found.path
        name = hashed["name"]
    for found in candidates:  # a name saved in an infotext from another folder layout
        if os.path.basename(found.path) == os.path.basename(name):
            return found.path
    if os.path.isfile(name):
        return os.path.abspath(name)
    return None


def _list_by_header(folders, wanted) -> list[FoundFile]:
    """The .safetensors files under `folders` whose tensor names `wanted(names)` accepts; the first of each name."""
    found: list[FoundFile] = []
    seen: set[str] = set()
    for folder in folders:
        for path in _walk(folder):
            name = os.path.basename(path)
            if not name.endswith(".safetensors") or name in seen:
                continue
            names = _tensor_names(path)
            if names is not None and wanted(names):
                seen.add(name)
                found.append(FoundFile(name, path))
    return found


def _is_output_stage_file(names: frozenset) -> bool:
    """Alignment/calibration files, and the alignment fit's embedding-cache chunks ({"pooled"}):
    data the fit and the output stage use, never weights, so never offered in the encoder picker."""
    return kind_of(names) is not None or names == frozenset({"pooled"})


def _looks_like_qwen35(names: frozenset) -> bool:
    return any(n.endswith(QWEN35_MARKER_SUFFIX) for n in names)


def _looks_like_plain_qwen3(names: frozenset) -> bool:
    return any(n.endswith(STOCK_MARKER_SUFFIX) for n in names) and not _looks_like_qwen35(names)


def _tensor_names(path: str) -> frozenset | None:
    """Tensor names from a safetensors header (or a shard index), cached per file identity; None when the
    file cannot be used (then it is skipped and reported). Never blocks and never raises."""
    try:
        st = os.stat(path)
        key = safe_io.identity_from_stat(path, st)
    except (OSError, ValueError) as error:
        return _skip(path, path, f"cannot be read ({getattr(error, 'strerror', None) or error})")
    if not stat.S_ISREG(st.st_mode):  # checked before any open: opening a FIFO blocks
        return _skip(path, key, "not a regular file (a FIFO, socket or device)")
    if key not in _header_cache:
        if len(_header_cache) >= _HEADER_CACHE_MAX:
            _header_cache.clear()
        try:
            if path.endswith(".json"):
                _header_cache[key] = frozenset(read_index(path))
            else:
                _header_cache[key] = frozenset(read_file_header(path, "file").tensors)
        except Qwen35Error as error:  # the library's message: names the file, the field and the fix
            _header_cache[key] = None
            _skipped[path] = str(error)
        except Exception as error:  # noqa: BLE001 - a scan must never break the pickers
            _header_cache[key] = None
            _skipped[path] = f"{path}: unreadable ({type(error).__name__}: {error})"
    names = _header_cache[key]
    if names is None:
        return _skip(path, key, _skipped.get(path, "unreadable"))
    _skipped.pop(path, None)
    return names


def _skip(path: str, key: str, reason: str) -> None:
    text = reason if reason.startswith(path) else f"{path}: {reason}"  # the library's own messages name the file
    _skipped[path] = text
    if (key, text) not in _reported:
        _reported.add((key, text))
        messages.console(f"not offered in the file pickers: {text}")


def skipped_in(folders) -> list[tuple[str, str]]:
    """(path, reason naming the path) of the files under `folders` that the scans skipped, for "not found" messages."""
    roots = [os.path.join(os.path.abspath(f), "") for f in folders if f]
    return sorted((p, r) for p, r in _skipped.items()
                  if any(os.path.abspath(p).startswith(root) for root in roots) and os.path.lexists(p))


def _walk(folder: str):
    """Files under `folder`, sorted; symlinked folders are followed once (no loops), at most MAX_SCAN_FILES."""
    if not folder or not os.path.isdir(folder):
        return
    seen_dirs, count = set(), 0
    for root, dirs, files in os.walk(folder, followlinks=True, onerror=lambda error: None):
        try:
            st = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:  # reached again through a symlink: a loop
            dirs[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        dirs.sort()
        for file in sorted(files):
            count += 1
            if count > MAX_SCAN_FILES:
                _skip(folder, folder, f"holds more than {MAX_SCAN_FILES} files; only the first were looked at")
                return
            yield os.path.join(root, file)


def _unique(items):
    out, seen = [], set()
    for folder, flag in items:
        key = os.path.normcase(os.path.abspath(folder))
        if key not in seen:
            seen.add(key)
            out.append((folder, flag))
    return out
