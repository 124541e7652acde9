"""Every writer: never over an input of the same run, never over a file the library did not write, a
target checked before the work (folder, writability), written atomically. Inputs are checked unchanged
byte for byte."""

import hashlib
import json
import os

import pytest
import torch

from lib_qwen35 import Alignment, Calibration, OutputStageFileError, Qwen35Error
from lib_qwen35 import __main__ as cli
from lib_qwen35.alignment.corpus import generate_corpus, write_jsonl
from lib_qwen35.model import encoder_cache
from lib_qwen35.synthetic import qwen35 as synthetic

READ_ONLY_PLACE = "/proc/qwen35_test_output.safetensors"   # /proc accepts no new files, not even from root


def digest(path):
    st = os.stat(path)
    return hashlib.sha256(open(path, "rb").read()).hexdigest(), st.st_mtime_ns, st.st_ino


@pytest.fixture
def no_encoder(monkeypatch):
    """The checks must come before the work: loading an encoder fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the encoder was loaded before the output was checked")

    monkeypatch.setattr(encoder_cache.QWEN35, "get", refuse)


def test_encode_save_over_the_weights_it_reads(tmp_path, capsys, anima_ckpt, no_encoder):
    before = digest(anima_ckpt)
    assert cli.main(["encode", "x", "--weights", str(anima_ckpt), "--save", str(anima_ckpt)]) == 2
    assert "that is the weights file this command reads" in capsys.readouterr().err
    link = tmp_path / "same_inode.safetensors"                        # another name for the same file
    os.link(anima_ckpt, link)
    assert cli.main(["encode", "x", "--weights", str(anima_ckpt), "--save", str(link)]) == 2
    assert "weights file this command reads" in capsys.readouterr().err
    assert digest(anima_ckpt) == before


@pytest.mark.parametrize("flag, label", [("--alignment", "alignment file"), ("--calibration", "calibration file")])
def test_encode_save_over_an_output_stage_input(tmp_path, capsys, anima_ckpt, flag, label, no_encoder):
    path = tmp_path / "stage.safetensors"
    if flag == "--alignment":
        Alignment(torch.eye(1024), torch.zeros(1024), torch.zeros(1024)).save(path)
    else:
        Calibration(torch.ones(1024), torch.zeros(1024)).save(path)   # ours: only the input rule stops it
    before = digest(path)
    assert cli.main(["encode", "x", "--weights", str(anima_ckpt), flag, str(path), "--save", str(path)]) == 2
    assert f"that is the {label} this command reads" in capsys.readouterr().err
    assert digest(path) == before


def test_encode_save_over_a_foreign_file_or_a_folder_or_a_fifo(tmp_path, capsys, anima_ckpt, no_encoder):
    foreign = tmp_path / "my_notes.safetensors"
    foreign.write_bytes(b"precious")
    for target, message in ((foreign, "exists and is not an embeddings file written by this tool"),
                            (tmp_path, "it is a folder"),
                            (READ_ONLY_PLACE, "cannot write the embeddings file into /proc")):
        assert cli.main(["encode", "x", "--weights", str(anima_ckpt), "--save", str(target)]) == 2
        assert message in capsys.readouterr().err
    assert foreign.read_bytes() == b"precious"
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    assert cli.main(["encode", "x", "--weights", str(anima_ckpt), "--save", str(fifo)]) == 2
    assert "a FIFO" in capsys.readouterr().err


def test_encode_save_replaces_its_own_output(tmp_path, capsys, anima_ckpt):
    out = tmp_path / "e.safetensors"
    assert cli.main(["encode", "first", "--weights", str(anima_ckpt), "--save", str(out)]) == 0
    assert cli.main(["encode", "second prompt", "--weights", str(anima_ckpt), "--save", str(out)]) == 0
    from safetensors import safe_open
    with safe_open(out, "pt") as f:
        assert f.metadata()["prompt"] == "second prompt"
    assert sorted(os.listdir(tmp_path)) == ["e.safetensors"]       # no temporary file left behind


def test_stats_json_writer(tmp_path, capsys, anima_ckpt):
    prompts = tmp_path / "p.txt"
    prompts.write_text("1girl\nscenery\n", encoding="utf-8")
    before = digest(prompts)
    base = ["stats", "--prompts", str(prompts), "--weights", str(anima_ckpt)]
    assert cli.main(base + ["--json", str(prompts)]) == 2
    assert "that is the prompt file this command reads" in capsys.readouterr().err
    foreign = tmp_path / "theirs.json"
    foreign.write_text('{"mine": 1}')
    assert cli.main(base + ["--json", str(foreign)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err and foreign.read_text() == '{"mine": 1}'
    ours = tmp_path / "m.json"
    assert cli.main(base + ["--json", str(ours)]) == 0 and cli.main(base + ["--json", str(ours)]) == 0
    assert json.loads(ours.read_text())["prompts"] == 2
    assert digest(prompts) == before


def test_corpus_writers(tmp_path, capsys):
    foreign = tmp_path / "mine.jsonl"
    foreign.write_text('{"prompt": "my own", "rating": 5}\n', encoding="utf-8")
    with pytest.raises(Qwen35Error, match="refusing to overwrite"):
        write_jsonl(generate_corpus(7), foreign)
    assert cli.main(["corpus", "--limit", "7", "--out", str(foreign)]) == 2
    assert cli.main(["corpus", "--limit", "7", "--manifest", str(foreign)]) == 2
    assert foreign.read_text(encoding="utf-8") == '{"prompt": "my own", "rating": 5}\n'
    out, manifest = tmp_path / "c.jsonl", tmp_path / "m.json"
    for _ in range(2):   # a second export replaces the first (ours, even after the user edited it)
        assert cli.main(["corpus", "--limit", "7", "--out", str(out), "--manifest", str(manifest)]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 7 and json.loads(manifest.read_text())["size"] == 7


@pytest.mark.parametrize("limit", ["0", "-5", "2.5"])
def test_corpus_and_fit_limits(tmp_path, capsys, limit):
    expect = "invalid int value" if limit == "2.5" else "whole number >= 1"
    for argv in (["corpus", "--limit", limit], ["fit", "--out", str(tmp_path / "f"), "--limit", limit]):
        with pytest.raises(SystemExit) if limit == "2.5" else _nothing():
            assert cli.main(argv) == 2
        assert expect in capsys.readouterr().err


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_fit_refuses_foreign_outputs_and_inputs_before_loading(tmp_path, capsys, monkeypatch):
    from lib_qwen35.cli import demo

    monkeypatch.setattr(demo, "synthetic_encoders",
                        lambda *a: (_ for _ in ()).throw(AssertionError("encoders loaded before the check")))
    out = tmp_path / "fit"
    out.mkdir()
    (out / "rotation_matrix.safetensors").write_bytes(b"someone else's")
    assert cli.main(["fit", "--out", str(out)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    os.remove(out / "rotation_matrix.safetensors")
    prompts = out / "alignment_report.md"                          # the prompt file is one of the outputs
    prompts.write_text("1girl\n", encoding="utf-8")
    assert cli.main(["fit", "--out", str(out), "--prompts", str(prompts)]) == 2
    assert "that is the prompt file this command reads" in capsys.readouterr().err
    assert prompts.read_text(encoding="utf-8") == "1girl\n"
    assert cli.main(["fit", "--out", "/proc/qwen35_fit"]) == 2
    assert "cannot create the output folder /proc/qwen35_fit" in capsys.readouterr().err


def test_fit_replaces_its_own_outputs(tmp_path):
    from fake_encoders import fake_pair

    from lib_qwen35.alignment.run import run_fit

    e4, e6 = fake_pair()
    first = run_fit(e4, e6, str(tmp_path / "out"), limit=60, allow_underdetermined=True)
    again = run_fit(e4, e6, str(tmp_path / "out"), limit=70, allow_underdetermined=True)
    assert again.report["counts"]["prompts"] == 70 != first.report["counts"]["prompts"]
    assert not [f for f in os.listdir(tmp_path / "out") if f.endswith(".tmp")]


def test_library_save_refuses_weights_and_foreign_files(tmp_path, anima_ckpt):
    before = digest(anima_ckpt)
    al = Alignment(torch.eye(4), torch.zeros(4), torch.zeros(4))
    with pytest.raises(OutputStageFileError, match="refusing to overwrite"):
        al.save(anima_ckpt)
    with pytest.raises(OutputStageFileError, match="refusing to overwrite"):
        Calibration(torch.ones(4), torch.zeros(4)).save(anima_ckpt)
    assert digest(anima_ckpt) == before
    al.save(tmp_path / "a.safetensors")
    al.save(tmp_path / "a.safetensors")                      # its own file: fine


def test_synthetic_writer_refuses_foreign_files(tmp_path):
    foreign = tmp_path / "qwen35_4b.safetensors"
    foreign.write_bytes(b"the real 4.8 GB file")
    with pytest.raises(Qwen35Error, match="refusing to overwrite"):
        synthetic.write_checkpoint(foreign)
    assert foreign.read_bytes() == b"the real 4.8 GB file"
    path = synthetic.write_checkpoint(tmp_path / "s.safetensors")
    assert synthetic.write_checkpoint(path, seed=1) == path       # replacing its own output


def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    import safetensors.torch

    path = tmp_path / "a.safetensors"
    Alignment(torch.eye(4), torch.zeros(4), torch.zeros(4)).save(path)
    before = path.read_bytes()

    def half_then_fail(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        Alignment(torch.eye(4), torch.ones(4), torch.zeros(4)).save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["a.safetensors"]


def test_fit_tab_refuses_a_foreign_file_under_its_output_name(tmp_path):
    from stubs.forge_neo.harness import forge_world, place_weights

    from lib_qwen35.host import fit_tab

    with forge_world(tmp_path) as world:
        place_weights(world)
        folder = os.path.join(world.models_dir, "qwen35", "mine")
        os.makedirs(folder)
        theirs = os.path.join(folder, "rotation_mine.safetensors")
        with open(theirs, "wb") as f:
            f.write(b"a file the user put there")
        view = fit_tab.FitTab().start(fit_tab.FitRequest(name="mine", limit=10, allow_underdetermined=True))
        assert view.state == "error" and "refusing to overwrite" in view.message and "another name" in view.message
        assert open(theirs, "rb").read() == b"a file the user put there"
