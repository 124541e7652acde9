"""The fit command line: the demo without weights, and what it says to do next."""

import os

from lib_qwen35.alignment.run import CALIBRATION_FILE, ROTATION_FILE


def test_fit_ends_with_what_to_do_in_the_webui():
    from lib_qwen35.cli.fit import next_steps

    elsewhere = next_steps(os.path.join("fits", "rotation_matrix.safetensors"),
                           os.path.join("fits", "calibration_params.safetensors"))
    assert "models/qwen35" in elsewhere and "Use alignment" in elsewhere and "rotation_matrix.safetensors" in elsewhere
    assert "Use calibration" in elsewhere and "X/Y/Z" in elsewhere
    inside = next_steps(os.path.join("/w", "models", "qwen35", "a", "rotation_matrix.safetensors"),
                        os.path.join("/w", "models", "qwen35", "a", "calibration_params.safetensors"))
    assert "already" in inside and "Use alignment" in inside


def test_cli_demo_mode(tmp_path, capsys):
    """No weights: the CLI fits between synthetic checkpoints and says so loudly."""
    import argparse

    from lib_qwen35.cli import fit

    parser = argparse.ArgumentParser()
    fit.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path), "--limit", "60", "--batch-size", "60",
                              "--allow-underdetermined", "--device", "cpu"])
    assert fit.main(args) == 0
    out, err = capsys.readouterr()
    assert "DEMO MODE" in err and "synthetic" in out
    assert os.path.exists(tmp_path / ROTATION_FILE) and os.path.exists(tmp_path / CALIBRATION_FILE)
    args = parser.parse_args(["--out", str(tmp_path), "--weights-4b", "x.safetensors"])
    assert fit.main(args) == 2
