"""A real SD.Next with its web UI for the browser test, from the ../shared/sdnext_e2e harness.

    SDNEXT_E2E_ROOT     the harness root (venv/, src/, models/Diffusers/tiny-anima/); nothing starts without it
    SDNEXT_E2E_HARNESS  the harness folder (run_txt2img.py: its Server class starts and stops SD.Next)
    SDNEXT_LOCK         a lock file held while the server runs (as `flock FILE cmd`); never both on one file

gradio 3.43 refuses to serve any file whose path has a part starting with "." (its "dotfile" rule), and
SD.Next serves its own css and javascript through that route: from the harness's ~/.cache the page loads
without them and Generate does nothing. So the SD.Next tree is copied to a folder without one, next to a
fresh data dir. Generated images are saved as PNG (samples_format), so pixels and infotexts can be read.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import types

from live.machine_lock import held

ROOT = os.path.abspath(os.path.expanduser(os.environ.get("SDNEXT_E2E_ROOT", "")))
HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
HARNESS = os.environ.get("SDNEXT_E2E_HARNESS") or next(
    (h for h in (os.path.join(REPO_ROOT, up, "shared", "sdnext_e2e") for up in ("..", os.path.join("..", ".."))) if os.path.isdir(h)), "")
UI_CONFIG = {"samples_format": "png", "grid_format": "png"}


def why_not() -> str:
    """"" when a server can be started, else why not."""
    if not os.environ.get("SDNEXT_E2E_ROOT"):
        return "set SDNEXT_E2E_ROOT (the ../shared/sdnext_e2e harness root) to run it"
    needed = [os.path.join(HARNESS or "<no harness>", "run_txt2img.py"), os.path.join(ROOT, "venv", "bin", "python"),
              os.path.join(ROOT, "src", "launch.py"), os.path.join(ROOT, "models", "Diffusers", "tiny-anima", "model_index.json")]
    missing = [p for p in needed if not os.path.exists(p)]
    return f"the SD.Next harness is incomplete (run its setup.sh): missing {missing}" if missing else ""


def harness():
    if HARNESS not in sys.path:
        sys.path.insert(0, HARNESS)
    import run_txt2img

    return run_txt2img


def machine_lock():
    return held("SDNEXT_LOCK")


class SDNextServer:
    def __init__(self, run_dir: str, extensions=()):
        assert not any(part.startswith(".") for part in os.path.abspath(run_dir).split(os.sep)), f"{run_dir}: a dot folder (see the docstring)"
        self.rt = harness()
        self.run_dir = run_dir
        self.src = os.path.join(run_dir, "sdnext")
        shutil.copytree(os.path.join(ROOT, "src"), self.src, symlinks=True)
        self.data_dir = os.path.join(run_dir, "data")
        os.makedirs(os.path.join(self.data_dir, "extensions"), exist_ok=True)
        with open(os.path.join(self.data_dir, "config.json"), "w", encoding="utf8") as f:
            json.dump({**self.rt.SERVER_CONFIG, **UI_CONFIG}, f, indent=2)
        for extension in extensions:
            os.symlink(extension, os.path.join(self.data_dir, "extensions", os.path.basename(extension.rstrip("/"))))
        self.args = types.SimpleNamespace(root=ROOT, extra_args="", lock=None, lock_timeout=3600, allow_network=False, start_timeout=300)
        self.server = None

    @property
    def url(self) -> str:
        return self.server.base

    def start(self) -> float:
        self.server = self.rt.Server(self.args, self.src, os.path.join(ROOT, "venv", "bin", "python"), self.data_dir, self.run_dir)
        return self.server.wait_ready(self.args.start_timeout)

    def select_anima(self) -> None:
        self.rt.http("POST", self.url + "/sdapi/v1/options", {"sd_model_checkpoint": "Diffusers/tiny-anima"}, timeout=600)
        assert "Load model: family=anima" in self.log(), "the model did not load as Anima"

    def log(self) -> str:
        with open(self.server.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def peak_rss_gib(self) -> float:
        return round((self.rt.rss_peak_kib(self.server.proc.pid) or 0) / 2**20, 2)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(30)
