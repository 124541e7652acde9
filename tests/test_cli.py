"""The command line, as a user runs it."""

import subprocess
import sys

import pytest
import torch

from lib_qwen35 import __main__ as cli


def test_encode_without_weights_says_synthetic(capsys, tmp_path):
    assert cli.main(["encode", "1girl, silver hair", "--save", str(tmp_path / "e.safetensors")]) == 0
    out, err = capsys.readouterr()
    assert "SYNTHETIC" in err and "(SYNTHETIC)" in out
    assert "tokens    5" in out and "token_diversity" in out
    from safetensors.torch import load_file
    assert load_file(tmp_path / "e.safetensors")["embeddings"].shape == (5, 1024)


def test_encode_with_weights_and_output_stage(capsys, tmp_path, anima_ckpt):
    from lib_qwen35 import Calibration

    Calibration(torch.full((1024,), 2.0), torch.zeros(1024)).save(tmp_path / "cal.safetensors")
    assert cli.main(["encode", "a", "--weights", str(anima_ckpt), "--calibration", str(tmp_path / "cal.safetensors"),
                     "--scale", "0.5"]) == 0
    out, err = capsys.readouterr()
    assert "SYNTHETIC" not in err and "tokens    1" in out


def test_stats_over_a_prompt_file(capsys, tmp_path, anima_ckpt):
    f = tmp_path / "p.txt"
    f.write_text("1girl\nscenery, mountains\n\na cat\n", encoding="utf-8")
    assert cli.main(["stats", "--prompts", str(f), "--weights", str(anima_ckpt), "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "3 prompts" in out and "cross_prompt_similarity" in out


def test_bad_weights_exit_code_and_message(capsys, tmp_path):
    assert cli.main(["encode", "x", "--weights", str(tmp_path / "missing.safetensors")]) == 2
    assert "not found" in capsys.readouterr().err


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "lib_qwen35", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "encode" in r.stdout


def test_diagnostics_definitions():
    from lib_qwen35.diagnostics import prompt_metrics

    same = torch.ones(4, 8)
    m = prompt_metrics([same, 2 * same])
    assert m["token_diversity"] == pytest.approx(0.0, abs=1e-12)       # collapsed tokens
    assert m["cross_prompt_similarity"] == pytest.approx(1.0)
    assert m["token_l2"] == pytest.approx((8 ** 0.5 + 2 * 8 ** 0.5) / 2)
    assert m["global_mean"] == pytest.approx(1.5) and m["global_std"] == pytest.approx(0.5)
    orth = torch.eye(3)
    assert prompt_metrics([orth])["token_diversity"] == pytest.approx(1.0)


@pytest.mark.parametrize("argv, message", [
    (["encode", "x", "--strength", "1.5"], "strength must be in"),
    (["encode", "x", "--scale", "nan"], "output scale"),
    (["encode", "x", "--device", "foo"], "unknown device"),
    (["stats", "--prompts", "/nonexistent/prompts.txt"], "was not found"),
    (["encode", "x", "--save", "/nonexistent/dir/out.safetensors"], "folder /nonexistent/dir does not exist"),
    (["fit", "--out", "FIT", "--limit", "300", "--holdout", "0"], "holdout must be"),
    (["fit", "--out", "FIT", "--limit", "300", "--batch-size", "0"], "batch size must be"),
])
def test_bad_command_lines_give_a_message_not_a_traceback(capsys, tmp_path, argv, message):
    argv = [str(tmp_path / "fit") if a == "FIT" else a for a in argv]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_non_utf8_prompt_file(capsys, tmp_path):
    f = tmp_path / "p.txt"
    f.write_bytes(b"caf\xe9\n")
    assert cli.main(["stats", "--prompts", str(f)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_damaged_demo_checkpoint_is_rebuilt(capsys):
    path = cli.synthetic_weights_path()
    with open(path, "r+b") as f:
        f.truncate(1000)
    assert cli.main(["encode", "a"]) == 0


def test_inspect_describes_a_file_without_loading_it(capsys, tmp_path):
    from lib_qwen35 import synthetic

    path = synthetic.write_checkpoint(tmp_path / "q.safetensors", prefix="model.")
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "prefix 'model.'" in out and "6 Gated DeltaNet, 2 gated attention" in out and "F8_E4M3" in out
    from safetensors.torch import save_file
    save_file({"model.layers.0.self_attn.q_norm.weight": torch.ones(128)}, tmp_path / "other.safetensors")
    assert cli.main(["inspect", str(tmp_path / "other.safetensors")]) == 2
    assert "not a Qwen3.5 text encoder" in capsys.readouterr().err
