"""Forge Neo users run Python 3.10-3.13: every source file must at least parse and compile on each
interpreter found on this machine (pyenv installs or PATH); the others are skipped."""

import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
