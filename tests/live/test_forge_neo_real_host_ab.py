"""The real Forge Neo, headless on CPU, on every Anima text-engine generation: stock vs enabled with the same
seed (opt-in: it needs the shared harness set up, ~14 GiB of RAM and ~3 minutes per engine tree).

    QWEN35_REAL_HOST=1 python -m pytest tests/live/test_forge_neo_real_host_ab.py -s

Uses ../shared/forge_neo_e2e (or FORGE_NEO_E2E_HARNESS) and its ROOT (FORGE_NEO_E2E_ROOT, default
~/.cache/forge_neo_e2e); installs this checkout as Forge's "Install from URL" would (a git clone, with this
working tree's uncommitted files laid over it; install.py run), with a
synthetic Qwen3.5 checkpoint saved as models/text_encoder/qwen35_4b.safetensors. Per engine tree
(legacy = neo-2.26, qwen06-anima = 21886f41..2.29.1, qwen06 = 2.29.2+): the enabled image differs from
stock, its infotext carries our keys, the stock image re-run afterwards is bit-identical, and the server
log has no traceback. Servers run one at a time under `flock /tmp/forge_run.lock`; each run's folder
(server.log, PNGs, infotexts, result.json) stays in ROOT/runs/qwen35-ab-<engine>-<time>/.
Alignment files you can share and reproduce (issue 22; tests/live/provenance_ab.py, driven by
tests/live/forge_neo/provenance_ab.py with Forge's own Python, ~5 minutes per tree): a refit under the same name
changes only the infotext's hash, the API's `infotext` finds a file by its hash and says when none matches, the
X/Y/Z alignment-file axis gives one cell per file equal to its single generation, a synthetic demo fit with an
unmarked copy of the encoder stops the generation, and a fit for another encoder file warns once and runs
(ROOT/runs/qwen35-provenance-<engine>-<time>/).
"""

import json
import os
import shutil
import subprocess
import time

import pytest

from live.extension_copy import installed_copy
from repo import ROOT as REPO

REPO_ROOT = str(REPO)
HARNESS = os.environ.get("FORGE_NEO_E2E_HARNESS", os.path.join(REPO_ROOT, "..", "shared", "forge_neo_e2e"))
ROOT = os.environ.get("FORGE_NEO_E2E_ROOT", os.path.expanduser("~/.cache/forge_neo_e2e"))
PYTHON = os.path.join(ROOT, "venv", "bin", "python")
TITLE = "qwen3.5-4b text encoder (anima)"

pytestmark = pytest.mark.skipif(
    not (os.environ.get("QWEN35_REAL_HOST") and os.path.isfile(os.path.join(HARNESS, "run_txt2img.py")) and os.path.isfile(PYTHON)),
    reason="opt-in: QWEN35_REAL_HOST=1 with the ../shared/forge_neo_e2e harness set up (bash setup.sh)")


def synthetic_weights() -> str:
    from lib_qwen35.synthetic.qwen35 import write_checkpoint

    path = os.path.join(ROOT, "models", "text_encoder", "qwen35_4b.safetensors")
    if not os.path.exists(path):
        write_checkpoint(path, seed=0)
    return path


@pytest.mark.parametrize("engine", ["legacy", "qwen06-anima", "qwen06"])
def test_stock_vs_enabled_in_the_real_host(engine, tmp_path):
    synthetic_weights()
    extension = installed_copy(str(tmp_path / "sd-forge-qwen35-anima"))
    out = os.path.join(ROOT, "runs", f"qwen35-ab-{engine}-{time.strftime('%Y%m%d-%H%M%S')}")
    alwayson = json.dumps({TITLE: {"args": [True]}})
    cmd = ["flock", "/tmp/forge_run.lock", PYTHON, os.path.join(HARNESS, "run_txt2img.py"), "--engine", engine,
           "--extensions", extension, "--copy-extensions", "--run-installers", "--alwayson", alwayson, "--also-baseline", "--recheck-baseline",
           "--size", "64", "--steps", "1", "--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    summary = next((line for line in reversed(proc.stdout.splitlines()) if line.startswith("SUMMARY")), proc.stdout[-3000:] + proc.stderr[-3000:])
    print(f"\n[{engine}] {summary}")
    assert proc.returncode == 0, summary
    with open(os.path.join(out, "result.json"), encoding="utf-8") as f:
        result = json.load(f)
    baseline, main, again = result["runs"]
    assert "Qwen35 TE: on" in main["infotext"] and "Qwen35 TE hash:" in main["infotext"], main["infotext"]
    assert "Qwen35" not in baseline["infotext"] and "Qwen35" not in again["infotext"]
    assert result["compare"]["max_abs_diff"] > 0 and result["baseline_repeat_identical"] is True
    with open(os.path.join(out, "server.log"), encoding="utf-8", errors="replace") as f:
        log = f.read()
    assert "Traceback" not in log, log[log.index("Traceback"):][:3000]
    assert "[Qwen3.5 TE]" not in log or "not Anima" not in log  # our console never said "nothing changed"


def test_an_unknown_engine_stops_with_the_specific_error(tmp_path):
    """A Forge whose Anima engine offers neither known seam (the rewritten tree, with encode_token_weights
    renamed): stock still works, enabled fails with our message naming class, module, attribute, version."""
    synthetic_weights()
    tree = str(tmp_path / "src-future")
    shutil.copytree(os.path.join(ROOT, "src-qwen06"), tree, symlinks=True)
    text_processing = os.path.join(tree, "webui", "backend", "text_processing")
    for name, old, new in (("_comfy.py", "def encode_token_weights(self", "def encode_token_weights_v2(self"),
                           ("anima_engine.py", "self.text_encoder.encode_token_weights(", "self.text_encoder.encode_token_weights_v2(")):
        path = os.path.join(text_processing, name)
        with open(path, encoding="utf-8") as f:
            source = f.read()
        assert old in source, f"{path}: the harness tree changed ({old!r} not found)"
        with open(path, "w", encoding="utf-8") as f:
            f.write(source.replace(old, new))
    extension = installed_copy(str(tmp_path / "sd-forge-qwen35-anima"))
    out = os.path.join(ROOT, "runs", f"qwen35-unknown-engine-{time.strftime('%Y%m%d-%H%M%S')}")
    cmd = ["flock", "/tmp/forge_run.lock", PYTHON, os.path.join(HARNESS, "run_txt2img.py"), "--webui", os.path.join(tree, "webui"),
           "--extensions", extension, "--copy-extensions", "--alwayson", json.dumps({TITLE: {"args": [True]}}), "--also-baseline",
           "--size", "64", "--steps", "1", "--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    print("\n[unknown engine]", next((line for line in reversed(proc.stdout.splitlines()) if line.startswith("SUMMARY")), ""))
    assert proc.returncode == 4, proc.stdout[-3000:]  # the stock baseline ran; the enabled request failed
    with open(os.path.join(out, "result.json"), encoding="utf-8") as f:
        assert [r["tag"] for r in json.load(f)["runs"]] == ["baseline"]
    with open(os.path.join(out, "server.log"), encoding="utf-8", errors="replace") as f:
        log = f.read()
    for part in ("loads Anima in a way this extension does not know", "Qwen06Engine (module backend.text_processing.anima_engine)",
                 "sd_model.text_processing_engine_qwen", "this Forge Neo (neo 2.26)", "Supported engines:"):
        assert part in log, part


@pytest.mark.parametrize("engine", ["legacy", "qwen06-anima", "qwen06"])
def test_alignment_files_you_can_share_and_reproduce_in_the_real_host(engine, tmp_path):
    synthetic_weights()
    extension = installed_copy(str(tmp_path / "sd-forge-qwen35-anima"))
    out = os.path.join(ROOT, "runs", f"qwen35-provenance-{engine}-{time.strftime('%Y%m%d-%H%M%S')}")
    cmd = ["flock", "/tmp/forge_run.lock", PYTHON, os.path.join(REPO_ROOT, "tests", "live", "forge_neo", "provenance_ab.py"),
           "--root", ROOT, "--engine", engine, "--extension", extension, "--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    summary = next((line for line in reversed(proc.stdout.splitlines()) if line.startswith("SUMMARY")),
                   proc.stdout[-3000:] + proc.stderr[-5000:])
    print(f"\n[{engine}] {summary}")
    assert proc.returncode == 0 and " failed=[] " in summary, summary + "\n" + proc.stderr[-3000:]
