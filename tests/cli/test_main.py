"""The command line's entry: python -m lib_qwen35 and python path/to/lib_qwen35; bad input as a message and exit
code 2."""

import subprocess
import sys

import pytest

from repo import ROOT

from lib_qwen35.cli.main import main

REPO = ROOT


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "lib_qwen35", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "encode" in r.stdout


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
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_folder_given_as_weights_gets_the_file_to_give_instead(capsys, tmp_path):
    folder = tmp_path / "qwen35"
    folder.mkdir()
    (folder / "qwen35_4b.safetensors").write_bytes(b"")
    for argv in (["inspect", str(folder)], ["encode", "x", "--weights", str(folder)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "is a folder" in err and str(folder / "qwen35_4b.safetensors") in err


def test_the_package_folder_runs_as_a_script_from_anywhere(tmp_path):
    """`python extensions/NAME/lib_qwen35 ...`: the form the README gives for the WebUI folder."""
    r = subprocess.run([sys.executable, str(REPO / "lib_qwen35"), "--help"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and "inspect" in r.stdout, r.stderr
