"""Hostile or broken safetensors headers and index files: each is our error naming the file and the field,
for every reader (weights, inspect, alignment/calibration) and never an escape from the folder scans."""

import json
import os
import struct

import pytest
import torch

from lib_qwen35 import Alignment, OutputStageFileError, WeightsFileError, load_encoder
from lib_qwen35 import __main__ as cli
from lib_qwen35.files.checkpoint import read_header


def write_raw(path, header, data=b""):
    """A file in the safetensors framing (8-byte length, header, data) with whatever header is given."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + data)
    return str(path)


def t(dtype="F32", shape=(1,), offsets=(0, 4)):
    return {"dtype": dtype, "shape": list(shape) if isinstance(shape, tuple) else shape,
            "data_offsets": list(offsets) if isinstance(offsets, tuple) else offsets}


DEEP = b'{"a": ' + b"[" * 200000 + b"]" * 200000 + b"}"
HEADERS = [  # (id, header, data, what the message must say)
    ("deep nesting", DEEP, b"", "nests too deeply"),
    ("not JSON", b"{not json", b"", "not valid JSON"),
    ("not UTF-8", b'{"\xff\xfe": 1}', b"", "not valid JSON"),
    ("header is a list", [1, 2], b"", "JSON list, expected an object"),
    ("entry is a string", {"w": "x"}, b"", "header entry 'w'"),
    ("dtype is a number", {"w": t(dtype=5)}, b"\0" * 4, "'dtype'"),
    ("shape has a string", {"w": t(shape=["a"])}, b"\0" * 4, "'shape'"),
    ("shape has a float", {"w": t(shape=[1.0])}, b"\0" * 4, "'shape'"),
    ("shape is negative", {"w": t(shape=[-1])}, b"\0" * 4, "'shape'"),
    ("shape has a bool", {"w": t(shape=[True])}, b"\0" * 4, "'shape'"),
    ("shape is a string", {"w": t(shape="4")}, b"\0" * 4, "'shape'"),
    ("shape is huge", {"w": t(shape=[10 ** 30])}, b"\0" * 4, "the file is corrupt"),
    ("offsets of one", {"w": t(offsets=[0])}, b"\0" * 4, "'data_offsets'"),
    ("offsets are strings", {"w": t(offsets=["0", "4"])}, b"\0" * 4, "'data_offsets'"),
    ("offsets reversed", {"w": t(offsets=[4, 0])}, b"\0" * 4, "'data_offsets'"),
    ("offsets are a dict", {"w": t(offsets={"a": 1})}, b"\0" * 4, "'data_offsets'"),
    ("size disagrees with shape", {"w": t(shape=[2])}, b"\0" * 4, "needs 8"),
    ("metadata is a list", {"__metadata__": [1], "w": t()}, b"\0" * 4, "'__metadata__'"),
    ("metadata value is a number", {"__metadata__": {"a": 1}, "w": t()}, b"\0" * 4, "'__metadata__'"),
    ("overlapping tensors", {"a": t(shape=[2], offsets=[0, 8]), "b": t(shape=[2], offsets=[4, 12])}, b"\0" * 12,
     "overlaps 'a'"),
    ("gap between tensors", {"a": t(offsets=[0, 4]), "b": t(offsets=[8, 12])}, b"\0" * 12, "4-byte gap after 'a'"),
    ("bytes after the last tensor", {"a": t()}, b"\0" * 8, "4 bytes follow the last tensor"),
    ("truncated data", {"a": t(shape=[4], offsets=[0, 16])}, b"\0" * 4, "truncated"),
]


@pytest.mark.parametrize("name, header, data, message", HEADERS, ids=[h[0] for h in HEADERS])
def test_malformed_header_is_our_error(tmp_path, capsys, name, header, data, message):
    path = write_raw(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(WeightsFileError) as err:
        read_header(path)
    assert path in str(err.value) and message in str(err.value)
    with pytest.raises(WeightsFileError, match="bad.safetensors"):
        load_encoder(path)
    assert cli.main(["inspect", path]) == 2                 # inspect says exactly what encode says
    assert message in capsys.readouterr().err
    with pytest.raises(OutputStageFileError) as err:
        Alignment.load(path)
    assert message in str(err.value) and "alignment file" in str(err.value)


@pytest.mark.parametrize("claimed", [0, 2 ** 63, 200 << 20])
def test_impossible_header_length(tmp_path, claimed):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", claimed) + b"{}" + b"\0" * 100)
    with pytest.raises(WeightsFileError, match=f"header claims {claimed} bytes"):
        read_header(path)


def test_inspect_and_encode_agree_on_overlapping_offsets(tmp_path, capsys, anima_ckpt):
    """inspect used to accept what encode then refused: both read the header the same way now."""
    from lib_qwen35.files.checkpoint import read_file_header

    header = read_file_header(anima_ckpt)
    raw = open(anima_ckpt, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    meta = json.loads(raw[8: 8 + n])
    first, second = sorted((e["data_offsets"][0], k) for k, e in meta.items() if k != "__metadata__")[:2]
    meta[second[1]]["data_offsets"] = [x - 2 for x in meta[second[1]]["data_offsets"]]   # overlap by 2 bytes
    hacked = json.dumps(meta).encode()
    path = tmp_path / "overlap.safetensors"
    path.write_bytes(struct.pack("<Q", len(hacked)) + hacked + raw[8 + n:])
    assert len(header.tensors) > 2
    assert cli.main(["inspect", str(path)]) == 2
    said = capsys.readouterr().err
    with pytest.raises(WeightsFileError) as err:
        load_encoder(path)
    assert "overlaps" in said and str(err.value) in said


def _index(folder, content):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "model.safetensors.index.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return path


INDEXES = [
    ("not JSON", "{nope", "does not parse"),
    ("deep nesting", "[" * 200000 + "]" * 200000, "nests too deeply"),
    ("a list", [1], "'weight_map'"),
    ("no weight_map", {"metadata": {}}, "'weight_map'"),
    ("weight_map is a list", {"weight_map": ["a"]}, "'weight_map'"),
    ("empty weight_map", {"weight_map": {}}, "'weight_map'"),
    ("shard is a number", {"weight_map": {"a": 3}}, "maps 'a' to 3"),
    ("shard climbs out", {"weight_map": {"a": "../../etc/passwd"}}, "no folders, no '..'"),
    ("shard is absolute", {"weight_map": {"a": "/etc/passwd"}}, "no folders"),
    ("shard in a subfolder", {"weight_map": {"a": "sub/x.safetensors"}}, "no folders"),
    ("tensor not in its shard", {"weight_map": {"nope": "s.safetensors"}}, "which does not hold it"),
]


@pytest.mark.parametrize("name, content, message", INDEXES, ids=[i[0] for i in INDEXES])
def test_malformed_index_is_our_error(tmp_path, capsys, name, content, message):
    from safetensors.torch import save_file

    (tmp_path / "ckpt").mkdir()
    save_file({"w": torch.zeros(2)}, tmp_path / "ckpt" / "s.safetensors")
    path = _index(str(tmp_path / "ckpt"), content)
    with pytest.raises(WeightsFileError) as err:
        read_header(path)
    assert path in str(err.value) and message in str(err.value)
    with pytest.raises(WeightsFileError) as err:
        load_encoder(tmp_path / "ckpt")                    # the folder resolves to its index
    assert message in str(err.value)
    assert cli.main(["inspect", path]) == 2


def test_oversized_index_is_refused_unread(tmp_path):
    path = _index(str(tmp_path / "ckpt"), "")
    with open(path, "wb") as f:
        f.truncate(65 << 20)
    with pytest.raises(WeightsFileError, match="a safetensors index is at most"):
        read_header(path)


def test_zero_sized_rotation(tmp_path):
    from safetensors.torch import save_file

    save_file({"rotation": torch.zeros(0, 0), "mean_4b": torch.zeros(0), "mean_06b": torch.zeros(0)},
              tmp_path / "r.safetensors")
    with pytest.raises(OutputStageFileError, match=r"'rotation' has size 0; an embedding size is 1 to"):
        Alignment.load(tmp_path / "r.safetensors")


def test_huge_rotation_is_refused_from_the_header(tmp_path):
    path = write_raw(tmp_path / "r.safetensors", {"rotation": t(shape=[20000, 20000], offsets=[0, 1600000000]),
                                                  "mean_4b": t(shape=[20000], offsets=[1600000000, 1600080000]),
                                                  "mean_06b": t(shape=[20000], offsets=[1600080000, 1600160000])})
    with open(path, "r+b") as f:      # sparse: the data is never read
        f.truncate(os.path.getsize(path) + 1600160000)
    with pytest.raises(OutputStageFileError, match="'rotation' has size 20000"):
        Alignment.load(path)


def test_alignment_with_non_number_tensor(tmp_path):
    from safetensors.torch import save_file

    save_file({"rotation": torch.eye(2, dtype=torch.bool), "mean_4b": torch.zeros(2), "mean_06b": torch.zeros(2)},
              tmp_path / "r.safetensors")
    assert torch.equal(Alignment.load(tmp_path / "r.safetensors").rotation, torch.eye(2))   # bools are numbers


# ---- the folder scans: skip and report, never raise ----------------------------------------------------

@pytest.fixture
def world(tmp_path):
    from stubs.forge_neo.harness import forge_world

    with forge_world(tmp_path) as w:
        yield w


def test_scans_skip_every_malformed_file_and_the_generation_works(world, capsys):
    from stubs.forge_neo.harness import place_weights

    from lib_qwen35.host import file_locator

    place_weights(world)
    qwen35 = os.path.join(world.models_dir, "qwen35")
    for i, (_, header, data, _) in enumerate(HEADERS):
        write_raw(os.path.join(qwen35, f"bad{i:02d}.safetensors"), header, data)
    for i, (_, content, _) in enumerate(INDEXES[:-1]):   # the last one's index itself is well-formed
        _index(os.path.join(qwen35, f"sharded{i:02d}"), content)
    te = os.path.join(world.models_dir, "text_encoder")
    write_raw(os.path.join(te, "bad_te.safetensors"), DEEP)
    assert [f.name for f in file_locator.list_weights()] == ["qwen35_4b.safetensors"]
    file_locator.list_alignments()
    file_locator.list_calibrations()
    out = capsys.readouterr().out
    for i in range(len(HEADERS)):
        assert f"bad{i:02d}.safetensors" in out
    assert out.count("not offered in the file pickers") == len(HEADERS) + len(INDEXES) - 1 + 1
    assert "Qwen35 TE: on" in world.txt2img("1girl", "lowres", enabled=True).info
    assert world.controller.weight_choices() == ["Automatic", "qwen35_4b.safetensors"]


def test_a_malformed_pick_is_explained(world):
    from lib_qwen35.errors import Qwen35Error

    bad = write_raw(os.path.join(world.models_dir, "qwen35", "qwen35_4b.safetensors"), {"w": t(shape=["x"])},
                    b"\0" * 4)
    with pytest.raises(Qwen35Error) as err:
        world.txt2img("1girl", "lowres", enabled=True)
    assert bad in str(err.value) and "'shape'" in str(err.value) and "Fix:" in str(err.value)
