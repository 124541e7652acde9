"""The real SD.Next, headless on CPU: stock against ours with the same seed (opt-in: it needs the shared
harness set up, ~2 GiB of RAM and ~2 minutes).

    QWEN35_REAL_HOST=1 python -m pytest tests/live/test_sdnext_real_host_ab.py -s

Uses ../shared/sdnext_e2e (or SDNEXT_E2E_HARNESS) and its ROOT (SDNEXT_E2E_ROOT, default ~/.cache/sdnext_e2e);
installs this checkout as the Extensions tab would (a git clone, with this working tree's uncommitted files
laid over it; install.py run), with a synthetic Qwen3.5 checkpoint as ROOT/models/qwen35/qwen35_4b.safetensors.
tests/live/sdnext/ab.py then drives it (see there): stock vs ours differ, the infotext is written and PNG Info
restores it, a changed negative prompt and other settings of ours are followed (SD.Next's prompt cache), short
API args get our defaults, img2img and hires, the stock image bit-identical afterwards, a wrong arg type gets
our message, no traceback in the log; and a copy of SD.Next with a changed seam stops with our message.
Servers run one at a time under `flock /tmp/forge_run.lock`; the run folder stays in ROOT/runs/qwen35-ab-<time>/.
"""

import os
import subprocess
import time

import pytest

from live.extension_copy import installed_copy
from repo import ROOT as REPO

REPO_ROOT = str(REPO)
HARNESS = os.environ.get("SDNEXT_E2E_HARNESS") or next(
    (h for h in (os.path.join(REPO_ROOT, up, "shared", "sdnext_e2e") for up in ("..", os.path.join("..", ".."))) if os.path.isdir(h)),
    os.path.join(REPO_ROOT, "..", "shared", "sdnext_e2e"))   # beside the checkout, or beside a worktrees folder
ROOT = os.environ.get("SDNEXT_E2E_ROOT", os.path.expanduser("~/.cache/sdnext_e2e"))
PYTHON = os.path.join(ROOT, "venv", "bin", "python")

pytestmark = pytest.mark.skipif(
    not (os.environ.get("QWEN35_REAL_HOST") and os.path.isfile(os.path.join(HARNESS, "run_txt2img.py")) and os.path.isfile(PYTHON)),
    reason="opt-in: QWEN35_REAL_HOST=1 with the ../shared/sdnext_e2e harness set up (bash setup.sh)")


def synthetic_weights() -> str:
    from lib_qwen35.synthetic.qwen35 import write_checkpoint

    path = os.path.join(ROOT, "models", "qwen35", "qwen35_4b.safetensors")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_checkpoint(path, seed=0)
    return path


def test_stock_vs_ours_in_the_real_sdnext(tmp_path):
    synthetic_weights()
    extension = installed_copy(str(tmp_path / "sd-forge-qwen35-anima"))
    out = os.path.join(ROOT, "runs", f"qwen35-ab-{time.strftime('%Y%m%d-%H%M%S')}")
    cmd = [PYTHON, os.path.join(REPO_ROOT, "tests", "live", "sdnext", "ab.py"), "--harness", os.path.abspath(HARNESS), "--root", ROOT,
           "--extension", extension, "--out", out, "--lock", "/tmp/forge_run.lock"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    summary = next((line for line in reversed(proc.stdout.splitlines()) if line.startswith("SUMMARY")), proc.stdout[-3000:] + proc.stderr[-5000:])
    print(f"\n{summary}")
    assert proc.returncode == 0 and " failed=[] " in summary, summary
