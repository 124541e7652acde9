"""The library never imports the WebUI (gradio, Forge's `modules`) or transformers (a test-time reference
only): Forge Neo pins a transformers without Qwen3.5, and the library must run outside the WebUI."""

import os
import subprocess
import sys

from repo import ROOT

MODULES = ["lib_qwen35", "lib_qwen35.__main__", "lib_qwen35.model.encoder", "lib_qwen35.alignment.fit", "lib_qwen35.model.qwen3",
           "lib_qwen35.alignment.corpus", "lib_qwen35.ops.cuda_graphs", "lib_qwen35.ops.fp8_matmul", "lib_qwen35.host.controller",
           "lib_qwen35.host.fit_tab", "lib_qwen35.host.xyz_axes", "lib_qwen35.host.infotext", "lib_qwen35.host.selection",
           "lib_qwen35.host.forge_neo.webui", "lib_qwen35.host.sdnext.webui", "lib_qwen35.host.gradio_parts", "lib_qwen35.host.unknown"]


def test_library_imports_no_webui_and_no_transformers():
    code = ("import importlib, sys\n"
            f"for m in {MODULES!r}: importlib.import_module(m)\n"
            "from lib_qwen35.host import selection; selection.current()\n"   # detection imports nothing of a WebUI either
            "print(sorted(m for m in ('gradio', 'modules', 'transformers', 'launch') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[]"   # (an unrecognised WebUI is reported on the lines before)
