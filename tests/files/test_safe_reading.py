"""Every file the library or the extension reads must be a regular file, checked before it is opened.

Opening a FIFO for reading blocks until a writer appears (forever), /dev/zero never ends, a socket or a
folder cannot be read. Each reader gets each kind of non-regular file and must answer at once with a
specific error (or, for the folder scans, skip and report). A SIGALRM turns a hang into a failure.
"""

import os
import signal
import socket

import pytest
import torch

from lib_qwen35 import Alignment, Calibration, OutputStageFileError, PromptError, WeightsFileError
from lib_qwen35 import __main__ as cli
from lib_qwen35.alignment.corpus import MAX_PROMPT_CHARS, read_prompt_file

KINDS = ["fifo", "socket", "char_device", "folder"]


@pytest.fixture(autouse=True)
def no_hang():
    def timeout(signum, frame):
        raise TimeoutError("a reader blocked on a non-regular file")

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def sockets():
    opened = []
    yield opened
    for s in opened:
        s.close()


def make(kind, path, sockets=None):
    """A non-regular file of `kind` at `path` (a .safetensors / .txt name, as a user would have it)."""
    path = str(path)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        sockets.append(s)
    elif kind == "char_device":
        os.symlink("/dev/zero", path)          # a link to it: what a user may have in a models folder
    else:
        os.mkdir(path)
    return path


EXPECTED = {"fifo": "FIFO", "socket": "socket", "char_device": "character device", "folder": "folder"}


@pytest.mark.parametrize("kind", KINDS)
def test_weights_file(tmp_path, kind, sockets):
    from lib_qwen35.files.checkpoint import read_file_header, short_hash

    path = make(kind, tmp_path / "qwen35_4b.safetensors", sockets)
    if kind == "folder":    # a folder is a checkpoint folder: without model.safetensors, said so
        with pytest.raises(WeightsFileError, match="is a folder, not a weights file.*holds no model.safetensors"):
            from lib_qwen35 import load_encoder
            load_encoder(path)
        return
    for call in (lambda: __import__("lib_qwen35").load_encoder(path), lambda: read_file_header(path),
                 lambda: short_hash(path)):
        with pytest.raises(WeightsFileError, match=EXPECTED[kind]) as err:
            call()
        assert path in str(err.value)


@pytest.mark.parametrize("kind", KINDS)
def test_inspect(tmp_path, kind, sockets, capsys):
    path = make(kind, tmp_path / "w.safetensors", sockets)
    assert cli.main(["inspect", path]) == 2
    err = capsys.readouterr().err
    assert path in err and (EXPECTED[kind] in err or "folder holds no" in err)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cls", [Alignment, Calibration])
def test_alignment_and_calibration_files(tmp_path, kind, cls, sockets):
    path = make(kind, tmp_path / "rotation_matrix.safetensors", sockets)
    with pytest.raises(OutputStageFileError, match=EXPECTED[kind]) as err:
        cls.load(path)
    assert path in str(err.value)


def test_unreadable_file_says_permission_not_missing(tmp_path, monkeypatch):
    from lib_qwen35.files import safe_io

    path = tmp_path / "rotation_matrix.safetensors"
    path.write_bytes(b"x" * 100)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(safe_io.os, "open", denied)
    with pytest.raises(OutputStageFileError, match="permission denied") as err:
        Alignment.load(path)
    assert "not found" not in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_for_real(tmp_path):
    path = tmp_path / "rotation_matrix.safetensors"
    path.write_bytes(b"x" * 100)
    path.chmod(0)
    with pytest.raises(OutputStageFileError, match="permission denied"):
        Alignment.load(path)


@pytest.mark.parametrize("kind", KINDS)
def test_prompt_files(tmp_path, kind, sockets, capsys):
    path = make(kind, tmp_path / "prompts.txt", sockets)
    with pytest.raises(PromptError, match=EXPECTED[kind]):
        read_prompt_file(path)
    assert cli.main(["stats", "--prompts", path]) == 2
    assert EXPECTED[kind] in capsys.readouterr().err
    assert cli.main(["fit", "--out", str(tmp_path / "fit"), "--prompts", path]) == 2
    assert EXPECTED[kind] in capsys.readouterr().err


def test_stats_on_dev_zero_is_refused_before_reading(capsys):
    assert cli.main(["stats", "--prompts", "/dev/zero"]) == 2
    assert "/dev/zero: is a character device" in capsys.readouterr().err


def test_prompt_file_size_limit(tmp_path, capsys):
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate(65 << 20)      # sparse: no 65 MB written
    with pytest.raises(PromptError, match=r"68,157,440 bytes; a prompt file is at most 67,108,864.*Split it"):
        read_prompt_file(big)
    assert cli.main(["stats", "--prompts", str(big)]) == 2


def test_prompt_line_length_limit(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("1girl\n" + "a" * (MAX_PROMPT_CHARS + 1) + "\n", encoding="utf-8")
    with pytest.raises(PromptError, match=r"p.txt:2: this line is 100,001 characters long; a prompt is at most"):
        read_prompt_file(f)
    ok = tmp_path / "ok.txt"
    ok.write_text("b" * MAX_PROMPT_CHARS + "\n", encoding="utf-8")
    assert len(read_prompt_file(ok)[0].text) == MAX_PROMPT_CHARS


@pytest.mark.parametrize("kind", ["fifo", "socket", "char_device"])
def test_sharded_index_and_shards(tmp_path, kind, sockets):
    from lib_qwen35 import load_encoder
    from lib_qwen35.synthetic import qwen35 as synthetic

    index = synthetic.write_checkpoint(tmp_path / "official", layout="official", shards=2)
    shard = os.path.join(tmp_path, "official", "model-00002-of-00002.safetensors")
    os.remove(shard)
    make(kind, shard, sockets)
    with pytest.raises(WeightsFileError, match=EXPECTED[kind]):
        load_encoder(index)
    os.remove(index)
    make(kind, index, sockets)
    with pytest.raises(WeightsFileError, match=EXPECTED[kind]):
        load_encoder(index)


def test_fit_cache_chunk_that_is_a_fifo(tmp_path):
    """A FIFO under a chunk's name is neither read (it would block) nor written over."""
    from fake_encoders import fake_pair

    from lib_qwen35.alignment.chunk_cache import embed_prompts
    from lib_qwen35.alignment.corpus import generate_corpus
    from lib_qwen35.errors import FitInputError

    e4, _ = fake_pair()
    prompts = generate_corpus(60)
    embed_prompts(e4, prompts, role="4b", cache_dir=str(tmp_path), chunk_size=50)
    folder = tmp_path / os.listdir(tmp_path)[0]
    chunk = folder / "chunk-00001.safetensors"
    os.remove(chunk)
    os.mkfifo(chunk)
    with pytest.raises(FitInputError, match="FIFO"):
        embed_prompts(e4, prompts, role="4b", cache_dir=str(tmp_path), chunk_size=50)


# ---- the extension's folder scans --------------------------------------------------------------------

@pytest.fixture
def world(tmp_path):
    from stubs.forge_neo.harness import forge_world

    with forge_world(tmp_path) as w:
        yield w


@pytest.mark.parametrize("kind", ["fifo", "socket", "char_device"])
def test_scans_skip_and_report_non_regular_files(world, kind, sockets, capsys):
    from stubs.forge_neo.harness import place_weights, write_alignment

    from lib_qwen35.host import file_locator

    place_weights(world)
    qwen35 = os.path.join(world.models_dir, "qwen35")
    write_alignment(os.path.join(qwen35, "rotation_good.safetensors"))
    bad = make(kind, os.path.join(qwen35, "bad.safetensors"), sockets)
    make(kind, os.path.join(world.models_dir, "text_encoder", "bad_te.safetensors"), sockets)
    names = [f.name for f in file_locator.list_weights()]
    assert names == ["qwen35_4b.safetensors"]
    assert [f.name for f in file_locator.list_alignments()][-1] == "rotation_good.safetensors"
    assert file_locator.list_calibrations() is not None
    out = capsys.readouterr().out
    assert f"not offered in the file pickers: {bad}: not a regular file" in out
    assert out.count(bad + ":") == 1                     # reported once, not on every scan
    processed = world.txt2img("1girl", "lowres", enabled=True)
    assert "Qwen35 TE: on" in processed.info             # the next generation works
    from lib_qwen35.host.fit_tab import FitTab
    assert FitTab(world.controller).stock_choices()


def test_a_picked_file_that_became_unusable_is_named_in_the_error(world):
    from lib_qwen35.errors import Qwen35Error

    path = os.path.join(world.models_dir, "qwen35", "qwen35_4b.safetensors")
    os.mkfifo(path)
    with pytest.raises(Qwen35Error) as err:
        world.txt2img("1girl", "lowres", enabled=True)
    text = str(err.value)
    assert "not found" in text and "Skipped as unusable" in text and path in text and "not a regular file" in text


def test_scans_survive_symlink_loops(world):
    from stubs.forge_neo.harness import place_weights

    from lib_qwen35.host import file_locator

    place_weights(world)
    qwen35 = os.path.join(world.models_dir, "qwen35")
    os.symlink(qwen35, os.path.join(qwen35, "loop"))
    os.makedirs(os.path.join(qwen35, "sub"))
    os.symlink("..", os.path.join(qwen35, "sub", "up"))
    assert [f.name for f in file_locator.list_weights()] == ["qwen35_4b.safetensors"]


def test_scans_are_bounded(world, monkeypatch, capsys):
    from lib_qwen35.host import file_locator

    qwen35 = os.path.join(world.models_dir, "qwen35")
    for i in range(30):
        open(os.path.join(qwen35, f"note{i:02d}.txt"), "w").close()
    monkeypatch.setattr(file_locator, "MAX_SCAN_FILES", 10)
    assert file_locator.list_weights() == []
    assert "holds more than 10 files" in capsys.readouterr().out


def test_a_stage_file_replaced_with_the_same_mtime_is_not_served_from_the_cond_cache(world):
    """Forge's cond cache: the signature follows the file identity (inode, ctime), not the mtime."""
    from stubs.forge_neo.harness import place_weights, write_alignment

    place_weights(world)
    path = os.path.join(world.models_dir, "qwen35", "rotation_x.safetensors")
    write_alignment(path, seed=1)
    ours = dict(enabled=True, use_alignment=True, alignment_file="rotation_x.safetensors")
    a = world.txt2img("1girl", "lowres", **ours)
    st = os.stat(path)
    write_alignment(path, seed=2)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))      # same path, same size and mtime, other contents
    assert os.stat(path).st_mtime_ns == st.st_mtime_ns and os.stat(path).st_size == st.st_size
    b = world.txt2img("1girl", "lowres", **ours)
    assert not torch.equal(a.c[0], b.c[0])
