"""The command line in a Python that lacks a package it needs: --help works, and each command names the Python to
use."""

import subprocess
import sys

from repo import ROOT

REPO = ROOT


HIDE = "import runpy, sys; sys.modules[{name!r}] = None; runpy.run_module('lib_qwen35', run_name='__main__', alter_sys=True)"


def _run_without(package, *argv):
    return subprocess.run([sys.executable, "-c", HIDE.format(name=package), *argv], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_without_torch_help_works_and_each_command_names_the_python_to_use():
    r = _run_without("torch", "--help")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    for command in ("encode", "stats", "inspect", "fit", "corpus"):
        assert command in r.stdout
    for argv in (["encode", "x"], ["stats", "--prompts", "p.txt"], ["inspect", "f.safetensors"],
                 ["fit", "--out", "o"], ["fit", "--help"]):
        r = _run_without("torch", *argv)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (argv, r.stderr)
        assert "'torch'" in r.stderr and "venv" in r.stderr and "WebUI's Python" in r.stderr, r.stderr
    assert _run_without("torch", "corpus", "--limit", "7").returncode == 0        # needs nothing but Python


def test_without_tokenizers_encode_names_it():
    r = _run_without("tokenizers", "encode", "x")
    assert r.returncode == 2 and "'tokenizers'" in r.stderr and "Traceback" not in r.stderr, r.stderr
