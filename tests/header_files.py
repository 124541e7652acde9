"""Header-only .safetensors files: the real header of a file whose data is a hole (a sparse file), so the
command line reads them as it would the real multi-GB files, at no disk or time cost."""

import json
import math
import struct


def write_header_only(path, tensors: dict) -> None:
    """A .safetensors file of the given {name: (dtype, shape)} whose data is a hole (a sparse file): the header
    is real, so inspect reads it as it would the real file, at no disk cost."""
    sizes = {"F8_E4M3": 1, "BF16": 2, "F16": 2, "F32": 4}
    header, offset = {}, 0
    for name, (dtype, shape) in sorted(tensors.items()):
        n = sizes[dtype] * math.prod(shape)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)


def full_size_qwen35_header(path):
    """The layout of the real qwen35_4b.safetensors: no key prefix, 426 tensors, real dtypes."""
    from lib_qwen35.model.config import expected_shapes
    from lib_qwen35.synthetic.qwen35 import FULL, file_name, make_config, storage_dtype

    names = {"float8_e4m3fn": "F8_E4M3", "bfloat16": "BF16", "float32": "F32"}
    shapes = expected_shapes(make_config("anima", **FULL), "", "head.")
    write_header_only(path, {file_name(k, "anima"): (names[str(storage_dtype(k)).replace("torch.", "")], s)
                              for k, s in shapes.items()})
    return path
