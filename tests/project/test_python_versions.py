"""Forge Neo users run Python 3.10-3.13: every source file must at least parse and compile on each
interpreter found on this machine (pyenv installs or PATH); the others are skipped."""

import glob
import os
import shutil
import subprocess

import pytest

from repo import ROOT

CHECK = ("import sys, ast; files = sys.argv[1:]\n"
         "for f in files: compile(open(f, encoding='utf-8').read(), f, 'exec', dont_inherit=True)\n"
         "print(len(files))")


def _interpreter(version):
    found = glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}"))
    return found[0] if found else shutil.which(f"python{version}")


@pytest.mark.parametrize("version", ["3.10", "3.11", "3.12", "3.13"])
def test_sources_compile(version):
    exe = _interpreter(version)
    if exe is None or subprocess.run([exe, "-c", "pass"], capture_output=True).returncode != 0:
        pytest.skip(f"no working python{version} here")
    files = [f for d in ("lib_qwen35", "scripts", "tests", "bench", "tools")
             for f in glob.glob(os.path.join(ROOT, d, "**", "*.py"), recursive=True)]
    files.append(os.path.join(ROOT, "install.py"))
    r = subprocess.run([exe, "-c", CHECK, *files], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.strip()) == len(files) > 50


@pytest.mark.parametrize("version", ["3.10", "3.11", "3.12", "3.13"])
def test_command_line_in_a_python_without_torch_explains_itself(version):
    """The wrong Python (one without torch, as a user's system Python usually is): --help works and a command
    names the Python to use, on each interpreter found here that really lacks torch."""
    exe = _interpreter(version)
    if exe is None or subprocess.run([exe, "-c", "pass"], capture_output=True).returncode != 0:
        pytest.skip(f"no working python{version} here")
    if subprocess.run([exe, "-c", "import torch"], capture_output=True).returncode == 0:
        pytest.skip(f"python{version} here has torch")
    package = os.path.join(ROOT, "lib_qwen35")
    r = subprocess.run([exe, package, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "inspect" in r.stdout, r.stderr
    r = subprocess.run([exe, package, "encode", "x"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "'torch'" in r.stderr and "venv" in r.stderr, r.stderr
