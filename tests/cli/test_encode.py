"""The encode command, as a user runs it."""


import torch

from lib_qwen35.cli.main import main


def test_encode_without_weights_says_synthetic(capsys, tmp_path):
    assert main(["encode", "1girl, silver hair", "--save", str(tmp_path / "e.safetensors")]) == 0
    out, err = capsys.readouterr()
    assert "SYNTHETIC" in err and "(SYNTHETIC)" in out
    assert "tokens    5" in out and "token_diversity" in out
    from safetensors.torch import load_file
    assert load_file(tmp_path / "e.safetensors")["embeddings"].shape == (5, 1024)


def test_encode_with_weights_and_output_stage(capsys, tmp_path, anima_ckpt):
    from lib_qwen35 import Calibration

    Calibration(torch.full((1024,), 2.0), torch.zeros(1024)).save(tmp_path / "cal.safetensors")
    assert main(["encode", "a", "--weights", str(anima_ckpt), "--calibration", str(tmp_path / "cal.safetensors"),
                     "--scale", "0.5"]) == 0
    out, err = capsys.readouterr()
    assert "SYNTHETIC" not in err and "tokens    1" in out


def test_bad_weights_exit_code_and_message(capsys, tmp_path):
    assert main(["encode", "x", "--weights", str(tmp_path / "missing.safetensors")]) == 2
    assert "not found" in capsys.readouterr().err


def test_encode_with_several_words_says_quote_it_or_use_stats(capsys):
    assert main(["encode", "a", "b"]) == 2
    err = capsys.readouterr().err
    assert "one prompt" in err and '"a b"' in err and "stats --prompts" in err


def test_output_stage_file_messages_use_the_right_article(capsys, tmp_path, anima_ckpt):
    from safetensors.torch import save_file

    wrong = tmp_path / "not_rotation.safetensors"
    save_file({"scale": torch.ones(1024)}, wrong)
    for path in (wrong, tmp_path):
        assert main(["encode", "x", "--weights", str(anima_ckpt), "--alignment", str(path)]) == 2
        err = capsys.readouterr().err
        assert "not an alignment file" in err and "not a alignment" not in err
