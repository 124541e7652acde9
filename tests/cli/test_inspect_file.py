"""The inspect command: what a weights file is, from its header; what an alignment or calibration file is, what it
was fitted on, and whether it belongs to an encoder file (--weights) or an alignment (--alignment): exit 0, 1 or 2."""

import os

import pytest
import torch

from fits import fitted_tensors, unmarked_copy, write_fitted_alignment, write_fitted_pair

from lib_qwen35.cli.main import main


def test_inspect_describes_a_file_without_loading_it(capsys, tmp_path):
    from lib_qwen35.synthetic import qwen35 as synthetic

    path = synthetic.write_checkpoint(tmp_path / "q.safetensors", prefix="model.")
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "prefix 'model.'" in out and "6 Gated DeltaNet, 2 gated attention" in out and "F8_E4M3" in out
    from safetensors.torch import save_file
    save_file({"model.layers.0.self_attn.q_norm.weight": torch.ones(128)}, tmp_path / "other.safetensors")
    assert main(["inspect", str(tmp_path / "other.safetensors")]) == 2
    assert "not a Qwen3.5 text encoder" in capsys.readouterr().err


def test_inspect_names_the_real_file_and_the_stock_encoder(capsys, tmp_path):
    from header_files import full_size_qwen35_header, write_header_only

    from lib_qwen35.model.qwen3 import Qwen3Config
    from lib_qwen35.model.qwen3 import expected_shapes as qwen3_shapes
    from lib_qwen35.synthetic import qwen3 as synthetic_qwen3

    assert main(["inspect", str(full_size_qwen35_header(tmp_path / "qwen35_4b.safetensors"))]) == 0
    out = capsys.readouterr().out
    assert "426 tensors, 4,138,640,384 parameters" in out and "full size" in out and "can use it" in out
    from lib_qwen35.synthetic import qwen35 as synthetic
    official = synthetic.write_checkpoint(tmp_path / "official.safetensors", layout="official")
    assert main(["inspect", str(official)]) == 0
    out = capsys.readouterr().out
    assert "without Anima's projection head" in out and "get qwen35_4b.safetensors" in out
    # the stock Qwen3-0.6B: a small synthetic one, and one with the real sizes (header only)
    small = synthetic_qwen3.write_checkpoint(tmp_path / "qwen_small.safetensors")
    assert main(["inspect", str(small)]) == 0
    out = capsys.readouterr().out
    assert "Qwen3" in out and "not the Qwen3.5-4B" in out and "--weights-06b" in out
    stock = tmp_path / "qwen_3_06b_base.safetensors"
    write_header_only(stock, {"model." + k: ("BF16", s) for k, s in qwen3_shapes(Qwen3Config()).items()})
    assert main(["inspect", str(stock)]) == 0
    out = capsys.readouterr().out
    assert "the stock Anima text encoder, Qwen3-0.6B" in out and "not the Qwen3.5-4B" in out


# ---- alignment and calibration files ---------------------------------------------------------------------------
@pytest.fixture
def fits(tmp_path, anima_ckpt):
    """A synthetic 4B file, an unmarked copy of it (a "real" encoder), and fits: one on the synthetic file (a demo),
    one on the real one, one from another fit, one for another encoder file, and one without provenance."""
    from lib_qwen35.model.output_stage import Alignment

    real = unmarked_copy(anima_ckpt, tmp_path / "qwen35_4b.safetensors")
    f = {"synthetic_4b": str(anima_ckpt), "real_4b": real}
    f["demo_hashes"] = write_fitted_pair(tmp_path / "demo" / "rotation_demo.safetensors",
                                         tmp_path / "demo" / "calibration_demo.safetensors", anima_ckpt)
    f["mine_hashes"] = write_fitted_pair(tmp_path / "mine" / "rotation_mine.safetensors",
                                         tmp_path / "mine" / "calibration_mine.safetensors", real, seed=1)
    write_fitted_alignment(tmp_path / "other" / "rotation_other.safetensors", real, seed=2,
                           date="2026-12-05T00:00:00Z")
    write_fitted_alignment(tmp_path / "foreign" / "rotation_foreign.safetensors", real, seed=3,
                           encoder_hash="0000000000")
    Alignment(**fitted_tensors(4)[0]).save(tmp_path / "rotation_plain.safetensors")      # no fit metadata
    f.update({name: str(tmp_path / rel) for name, rel in (
        ("demo", "demo/rotation_demo.safetensors"), ("demo_cal", "demo/calibration_demo.safetensors"),
        ("mine", "mine/rotation_mine.safetensors"), ("mine_cal", "mine/calibration_mine.safetensors"),
        ("other", "other/rotation_other.safetensors"), ("foreign", "foreign/rotation_foreign.safetensors"),
        ("plain", "rotation_plain.safetensors"))})
    return f


def lines(out):
    """{label: text} of inspect's labelled lines (wrapped lines joined)."""
    found, label = {}, None
    for line in out.splitlines():
        if line[:10].strip():
            label = line[:10].strip()
            found[label] = line[10:]
        elif label:
            found[label] += " " + line.strip()
    return found


def test_inspect_describes_a_fitted_alignment(capsys, fits):
    from lib_qwen35.files.checkpoint import encoder_hash

    assert main(["inspect", fits["mine"]]) == 0
    out = lines(capsys.readouterr().out)
    assert out["kind"] == "alignment: rotation [1024, 1024], mean_4b [1024], mean_06b [1024]"
    assert out["check"].startswith("every value finite, rotation orthogonal (max |R R^T - I| ")
    assert out["hash"] == f'{fits["mine_hashes"][0]} (images made with it record this as "Qwen35 TE alignment hash")'
    assert out["fitted"] == "2026-12-04T10:11:12Z by lib_qwen35.fit (the command line)"
    assert out["on 4B"] == f"qwen35_4b.safetensors ({encoder_hash(fits['real_4b'])})"
    assert out["to 0.6B"] == "qwen_3_06b_base.safetensors (6b7c8d9e0f)"
    assert out["prompts"] == "1,200 (1,080 fitted, 120 held out), corpus anima-align-corpus-v1:1200"
    assert out["held-out"] == "mean cosine 0.5012 before alignment, 0.9123 at strength 1.0"
    assert out["synthetic"] == "no" and "encoder" not in out
    assert out["verdict"].startswith("an alignment fitted on qwen35_4b.safetensors (") and "--weights" in out["verdict"]


def test_inspect_weights_says_whether_it_was_fitted_on_that_file(capsys, fits):
    assert main(["inspect", fits["mine"], "--weights", fits["real_4b"]]) == 0
    out = lines(capsys.readouterr().out)
    assert out["encoder"].endswith(": the file it was fitted on") and out["verdict"] == "confirmed: fitted on this encoder file"

    assert main(["inspect", fits["foreign"], "--weights", fits["real_4b"]]) == 1
    out = lines(capsys.readouterr().out)
    assert "NOT the file it was fitted on (qwen35_4b.safetensors, 0000000000)" in out["encoder"]
    assert out["verdict"].startswith("fitted on another encoder file: the WebUI uses it with a warning")

    assert main(["inspect", fits["plain"]]) == 0                           # described: no provenance, said so
    out = lines(capsys.readouterr().out)
    assert out["fitted"].startswith("unknown: no fit metadata.") and "ComfyUI" in out["fitted"]
    assert out["verdict"] == "an alignment without provenance" and "on 4B" not in out
    assert main(["inspect", fits["plain"], "--weights", fits["real_4b"]]) == 1
    assert "cannot be checked" in lines(capsys.readouterr().out)["encoder"]


def test_inspect_a_synthetic_demo_fit(capsys, fits):
    """A demo fit is fine with the synthetic file it was fitted on; with a real encoder the WebUI refuses it, whatever
    the hashes say."""
    assert main(["inspect", fits["demo"]]) == 0
    out = lines(capsys.readouterr().out)
    assert out["synthetic"].startswith("yes: a SYNTHETIC DEMO fit") and "refuses it with a real encoder" in out["verdict"]
    assert main(["inspect", fits["demo"], "--weights", fits["synthetic_4b"]]) == 0
    assert lines(capsys.readouterr().out)["encoder"].endswith("the file it was fitted on (synthetic)")
    assert main(["inspect", fits["demo"], "--weights", fits["real_4b"]]) == 1
    out = lines(capsys.readouterr().out)
    assert out["encoder"].endswith("a real encoder (not synthetic)")
    assert out["verdict"].startswith("the WebUI refuses this file with this encoder (the generation stops)")


def test_inspect_a_calibration_and_its_alignment(capsys, fits):
    assert main(["inspect", fits["mine_cal"], "--alignment", fits["mine"]]) == 0
    out = lines(capsys.readouterr().out)
    assert out["kind"] == "calibration: scale [1024], bias [1024]" and out["check"] == "every value finite"
    assert out["hash"].startswith(fits["mine_hashes"][1]) and "Qwen35 TE calibration hash" in out["hash"]
    assert out["fitted"].endswith(f", after the alignment {fits['mine_hashes'][0]} at strength 1.0")
    assert out["held-out"] == "mean cosine 0.9345 after alignment and calibration"
    assert out["alignment"].endswith("the alignment it was fitted after") and out["verdict"].startswith("confirmed")
    assert main(["inspect", fits["mine_cal"], "--alignment", fits["other"], "--weights", fits["real_4b"]]) == 1
    out = lines(capsys.readouterr().out)
    assert f"NOT the alignment it was fitted after (it was fitted after {fits['mine_hashes'][0]})" in out["alignment"]
    assert out["encoder"].endswith("the file it was fitted on") and out["verdict"].startswith("a calibration of another fit")


def test_inspect_refuses_what_it_cannot_check(capsys, fits, tmp_path):
    from lib_qwen35.model.output_stage import Alignment

    assert main(["inspect", fits["real_4b"], "--weights", fits["real_4b"]]) == 2        # a weights FILE
    err = capsys.readouterr().err
    assert "--weights checks an alignment or calibration FILE" in err and "Drop --weights" in err
    assert main(["inspect", fits["mine"], "--alignment", fits["other"]]) == 2            # --alignment of an alignment
    assert "is an alignment file. Drop --alignment" in capsys.readouterr().err
    assert main(["inspect", fits["mine"], "--weights", fits["other"]]) == 2              # --weights: not an encoder
    captured = capsys.readouterr()
    assert "not a Qwen3.5 text encoder" in captured.err and captured.out == ""           # refused before any output
    bad = tmp_path / "rotation_bad.safetensors"
    Alignment(torch.ones(8, 8), torch.zeros(8), torch.zeros(8)).save(bad)
    assert main(["inspect", str(bad)]) == 2 and "not orthogonal" in capsys.readouterr().err


def test_inspect_resolves_models_paths_for_every_file_argument(capsys, fits, tmp_path, monkeypatch):
    import shutil

    webui = tmp_path / "webui"
    (webui / "models" / "qwen35" / "theirs").mkdir(parents=True)
    shutil.copy(fits["real_4b"], webui / "models" / "qwen35" / "qwen35_4b.safetensors")
    shutil.copy(fits["mine"], webui / "models" / "qwen35" / "theirs" / "rotation_theirs.safetensors")
    monkeypatch.chdir(webui)
    argv = ["inspect", os.path.join("models", "qwen35", "theirs", "rotation_theirs.safetensors"), "--weights",
            os.path.join("models", "qwen35", "qwen35_4b.safetensors")]
    assert main(argv) == 0 and "the file it was fitted on" in capsys.readouterr().out
