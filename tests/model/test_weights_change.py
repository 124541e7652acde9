"""A weights file that changes on disk while an encoder is loaded: no crash, no mixing, no stale reuse.

The truncation cases run in a subprocess: with memory-mapped weights the encode after the truncation is
killed by SIGBUS, which must fail this test rather than kill pytest.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from repo import ROOT

from lib_qwen35 import WeightsFileError, load_encoder
from lib_qwen35.files.checkpoint import checkpoint_identity
from lib_qwen35.synthetic import qwen35 as synthetic

REPO = str(ROOT)
IDS = [11, 22, 33, 44, 55]


def _encode_uncached(enc, ids=IDS):
    return enc.encode_batch([ids], use_cache=False)[0]


def _fresh(path):
    """What a newly loaded encoder computes for IDS (the reference for "the file as it is now")."""
    from lib_qwen35.model.encoder import Encoder

    return _encode_uncached(Encoder(path))


def _rewrite_in_place(path, source):
    """Overwrite `path`'s bytes with `source`'s, same size, and put the old mtime back (as `cp -p`
    over an existing file does): path, size and mtime all stay the same."""
    st = os.stat(path)
    data = open(source, "rb").read()
    assert len(data) == st.st_size
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


@pytest.mark.parametrize("options", ["{}", "{'upcast_cache_bytes': 0}"])
def test_truncating_the_file_of_a_loaded_encoder_does_not_kill_the_process(tmp_path, options):
    path = synthetic.write_checkpoint(tmp_path / "w.safetensors", seed=0)
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {REPO!r})
        import torch
        from lib_qwen35 import WeightsFileError, load_encoder
        enc = load_encoder({str(path)!r}, **{options})
        before = enc.encode_batch([[7, 8, 9, 10]], use_cache=False)[0]
        os.truncate({str(path)!r}, 4096)          # e.g. a re-download into the same path starts
        after = enc.encode_batch([[7, 8, 9, 10]], use_cache=False)[0]    # the backbone runs again
        assert torch.equal(before, after), "the loaded encoder's weights changed"
        try:
            load_encoder({str(path)!r})
        except WeightsFileError as e:
            print("RELOAD-ERROR", e)
        print("SURVIVED")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"rc={r.returncode} (-7 = SIGBUS)\n{r.stderr[-3000:]}"
    assert "SURVIVED" in r.stdout
    assert "RELOAD-ERROR" in r.stdout and "too small" not in r.stdout and "w.safetensors" in r.stdout


def test_rewritten_in_place_same_size_and_mtime_is_neither_mixed_nor_reused(tmp_path):
    path = str(tmp_path / "w.safetensors")
    synthetic.write_checkpoint(path, seed=0)
    other = synthetic.write_checkpoint(tmp_path / "other.safetensors", seed=1)
    enc = load_encoder(path, upcast_cache_bytes=0)
    old = _encode_uncached(enc)
    _rewrite_in_place(path, other)
    assert torch.equal(_encode_uncached(enc), old)          # the loaded encoder keeps its (whole) weights
    new = load_encoder(path, upcast_cache_bytes=0)           # same path, size and mtime: still a new file
    assert new is not enc
    assert torch.equal(_encode_uncached(new), _fresh(other))
    assert not torch.equal(_encode_uncached(new), old)


def test_cp_p_of_another_file_is_not_taken_for_the_cached_one(tmp_path):
    path = str(tmp_path / "w.safetensors")
    synthetic.write_checkpoint(path, seed=0)
    other = synthetic.write_checkpoint(tmp_path / "o.safetensors", seed=2)
    enc = load_encoder(path)
    first = enc.encode_ids(IDS)
    os.utime(other, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns))
    os.remove(path)
    shutil.copy2(other, path)                                 # cp -p: same size, same mtime, new inode
    assert os.path.getmtime(path) == os.path.getmtime(other)
    again = load_encoder(path)
    assert again is not enc and torch.equal(again.encode_ids(IDS), _fresh(other))
    assert not torch.equal(again.encode_ids(IDS), first)      # nor served from the embedding cache


def test_identity_includes_inode_and_ctime(tmp_path):
    path = synthetic.write_checkpoint(tmp_path / "w.safetensors", seed=0)
    st = os.stat(path)
    identity = checkpoint_identity(path)
    assert f"|{st.st_ino}|" in identity and identity.endswith(f"|{st.st_ctime_ns}")
    os.chmod(path, 0o644 if st.st_mode & 0o777 != 0o644 else 0o640)   # only the ctime changes
    assert checkpoint_identity(path) != identity


def test_a_file_changed_while_it_is_read_is_refused(tmp_path, monkeypatch):
    from lib_qwen35.files import checkpoint, safe_io

    path = str(tmp_path / "w.safetensors")
    synthetic.write_checkpoint(path, seed=0)
    other = synthetic.write_checkpoint(tmp_path / "other.safetensors", seed=1)
    real_read_into, calls = safe_io.read_into, []

    def read_and_rewrite(f, buffer, *args, **kwargs):
        calls.append(1)
        if len(calls) == 20:                                 # half-way through the tensors
            _rewrite_in_place(path, other)
        return real_read_into(f, buffer, *args, **kwargs)

    monkeypatch.setattr(safe_io, "read_into", read_and_rewrite)
    with pytest.raises(WeightsFileError, match="changed while it was being loaded"):
        load_encoder(path)
    monkeypatch.setattr(safe_io, "read_into", real_read_into)
    assert torch.equal(_encode_uncached(load_encoder(path)), _fresh(other))
    assert checkpoint.read_header(path)    # and the file itself is fine: only the mixed read was refused


def test_a_file_replaced_between_header_and_tensors_is_refused(tmp_path):
    from lib_qwen35.files.checkpoint import load_tensors, read_header

    path = str(tmp_path / "w.safetensors")
    synthetic.write_checkpoint(path, seed=0)
    infos = read_header(path)
    os.replace(synthetic.write_checkpoint(tmp_path / "n.safetensors", seed=3), path)
    with pytest.raises(WeightsFileError, match="changed while it was being loaded"):
        load_tensors(infos, list(infos)[:3])


def test_loaded_weights_own_their_memory(anima_ckpt):
    """No tensor of a CPU encoder may be a view of the file (that is what made SIGBUS possible)."""
    enc = load_encoder(anima_ckpt, upcast_cache_bytes=0)
    size = os.path.getsize(anima_ckpt)
    for t in enc.backbone.buffers():
        # a mapping of the whole file would be one storage of the file's size shared by many tensors
        assert t.untyped_storage().nbytes() < size


@pytest.mark.parametrize("staging_bytes", [1, 7, 4096, 1 << 20])
def test_the_gpu_path_reads_through_a_bounded_buffer(tmp_path, staging_bytes):
    """The GPU load reads each tensor through a small host buffer (checked here with a CPU destination):
    every byte arrives, whatever the buffer size, and a file cut short is our error."""
    from lib_qwen35.files.checkpoint import read_staged

    data = os.urandom(10_000 + 3)
    path = tmp_path / "blob"
    path.write_bytes(data)
    dest = torch.empty(len(data), dtype=torch.uint8)
    with open(path, "rb", buffering=0) as f:
        read_staged(f, dest, torch.empty(staging_bytes, dtype=torch.uint8), str(path), "file", WeightsFileError)
    assert bytes(dest.numpy()) == data
    with open(path, "rb", buffering=0) as f, pytest.raises(WeightsFileError, match=r"ended \d+ bytes early"):
        read_staged(f, torch.empty(len(data) + 5, dtype=torch.uint8), torch.empty(staging_bytes, dtype=torch.uint8),
                    str(path), "file", WeightsFileError)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_load_equals_cpu_load(anima_ckpt):
    from lib_qwen35.files.checkpoint import load_tensors, read_header

    infos = read_header(anima_ckpt)
    cpu, gpu = load_tensors(infos, list(infos)), load_tensors(infos, list(infos), device="cuda")
    assert all(torch.equal(cpu[n].view(torch.uint8), gpu[n].cpu().view(torch.uint8)) for n in infos)
