"""Find a real Forge Neo, start it (web UI or API only) with a fresh data dir, stop it by its process group.

Where Forge comes from:
    FORGE_NEO_E2E_ROOT   the shared forge_neo_e2e harness root (../shared/forge_neo_e2e/README.md): its venv,
                         its random full-size Anima / Qwen3-0.6B / Wan VAE weights, and one Forge tree per
                         Anima text-engine generation (src = legacy neo-2.26, src-qwen06, src-qwen06-anima)
    FORGE_NEO_DIR        one Forge Neo tree (the checkout or its webui/ folder) instead of the harness's trees;
                         its Python is FORGE_NEO_PYTHON (default: the harness venv), its models FORGE_NEO_MODELS
                         (default: the harness models: Stable-diffusion/, text_encoder/, VAE/)
    FORGE_NEO_LOCK       a lock file held while a server runs (one 14 GiB server at a time on a small machine)
Nothing is used unless FORGE_NEO_E2E_ROOT or FORGE_NEO_DIR is set: a plain test run never starts a server.
The server command is the harness's (run_txt2img.py), minus --nowebui, plus --gradio-allowed-path <webui>
(without it Forge answers 403 for its own script.js and the page only half works).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from live.machine_lock import held

DEFAULT_ROOT = os.path.expanduser("~/.cache/forge_neo_e2e")
ENGINE_TREES = (("legacy", "src"), ("qwen06", "src-qwen06"), ("qwen06-anima", "src-qwen06-anima"))
CHECKPOINT = "anima_random.safetensors"
MODULES = ("qwen3_06b_random.safetensors", "wan21_vae_random.safetensors")


@dataclasses.dataclass(frozen=True)
class ForgeSetup:
    engine: str      # test id: legacy | qwen06 | qwen06-anima | the FORGE_NEO_DIR folder's name
    webui: str       # the folder with launch.py
    python: str
    models: str      # holds Stable-diffusion/, text_encoder/, VAE/


def setups() -> tuple[list[ForgeSetup], str]:
    """The Forge trees to test, or ([], why none) when the environment names none or it is incomplete."""
    root_env, forge_dir = os.environ.get("FORGE_NEO_E2E_ROOT", ""), os.environ.get("FORGE_NEO_DIR", "")
    if not root_env and not forge_dir:
        return [], "set FORGE_NEO_E2E_ROOT (the forge_neo_e2e harness) or FORGE_NEO_DIR (a Forge Neo tree) to run it"
    root = os.path.abspath(os.path.expanduser(root_env or DEFAULT_ROOT))
    python = os.environ.get("FORGE_NEO_PYTHON") or os.path.join(root, "venv", "bin", "python")
    models = os.environ.get("FORGE_NEO_MODELS") or os.path.join(root, "models")
    if forge_dir:
        webui = forge_dir if os.path.isfile(os.path.join(forge_dir, "launch.py")) else os.path.join(forge_dir, "webui")
        trees = [(os.path.basename(os.path.abspath(forge_dir).rstrip("/")), webui)]
    else:
        trees = [(engine, os.path.join(root, folder, "webui")) for engine, folder in ENGINE_TREES]
    found = [ForgeSetup(engine, webui, python, models) for engine, webui in trees if os.path.isfile(os.path.join(webui, "launch.py"))]
    needed = [python, os.path.join(models, "Stable-diffusion", CHECKPOINT)]
    needed += [os.path.join(models, folder, name) for folder, name in zip(("text_encoder", "VAE"), MODULES)]
    missing = [path for path in needed if not os.path.exists(path)]
    if not found:
        return [], f"no Forge Neo tree (launch.py) in {[w for _, w in trees]}"
    if missing:
        return [], f"the Forge set-up is incomplete (run the harness's setup.sh): missing {missing}"
    return found, ""


def machine_lock():
    return held("FORGE_NEO_LOCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpStatusError(RuntimeError):
    """Forge answered with an HTTP error status; the text says what it answered."""

    def __init__(self, text: str, code: int):
        super().__init__(text)
        self.code = code


def http(method: str, url: str, body=None, timeout: float = 60.0):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:  # say what Forge answered, not only the status
        raise HttpStatusError(f"{method} {url}: HTTP {error.code}: {error.read()[:3000].decode(errors='replace')}", error.code) from None
    return json.loads(raw) if raw else None


def version_uid(webui: str) -> str | None:
    """Forge's VERSION_UID, written into a fresh config.json so that no reinstall prompt can appear."""
    try:
        with open(os.path.join(webui, "modules", "launch_utils.py"), encoding="utf-8") as f:
            match = re.search(r'^VERSION_UID[^=]*=\s*"([^"]+)"', f.read(), re.M)
    except OSError:
        return None
    return match.group(1) if match else None


class ForgeServer:
    """One Forge Neo process in its own process group, on a free loopback port, with a fresh data dir."""

    def __init__(self, setup: ForgeSetup, run_dir: str, extensions=(), web_ui: bool = True, options: dict | None = None):
        self.setup, self.run_dir, self.web_ui = setup, run_dir, web_ui
        self.data_dir = os.path.join(run_dir, "data")
        self.extensions_dir = os.path.join(self.data_dir, "extensions")
        os.makedirs(self.extensions_dir, exist_ok=True)
        config = dict(options or {})
        uid = version_uid(setup.webui)
        if uid:
            config["VERSION_UID"] = uid
        with open(os.path.join(self.data_dir, "config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f)
        for path in extensions:  # installed as a user would clone it, by symlink (nothing is copied)
            os.symlink(os.path.abspath(path), os.path.join(self.extensions_dir, os.path.basename(os.path.abspath(path))))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(run_dir, "server.log")
        self.proc = None
        self.peak_rss = None   # GiB, read just before the process is stopped

    def command(self) -> list[str]:
        models = self.setup.models
        cmd = [self.setup.python, "launch.py", "--cpu", "--skip-prepare-environment", "--skip-torch-cuda-test",
               "--skip-install", "--skip-python-version-check", "--api", "--server-name", "127.0.0.1",
               "--port", str(self.port), "--data-dir", self.data_dir,
               "--ckpt-dirs", os.path.join(models, "Stable-diffusion"),
               "--text-encoder-dirs", os.path.join(models, "text_encoder"),
               "--vae-dirs", os.path.join(models, "VAE")]
        return cmd + (["--gradio-allowed-path", self.setup.webui] if self.web_ui else ["--nowebui"])

    def start(self, timeout: float = 300.0) -> float:
        env = dict(os.environ, COMMANDLINE_ARGS="", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   HF_DATASETS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", DO_NOT_TRACK="1",
                   PYTHONDONTWRITEBYTECODE="1")  # no .pyc in the symlinked extension (our working tree)
        t0 = time.time()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), cwd=self.setup.webui, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Forge exited with {self.proc.returncode} while starting:\n{self.log_tail()}")
            try:
                http("GET", self.url + "/sdapi/v1/sd-models", timeout=5)
                if self.web_ui:
                    urllib.request.urlopen(self.url + "/", timeout=10).read(100)
                return time.time() - t0
            except HttpStatusError as error:
                if error.code != 404:   # with the web UI, gradio answers before Forge mounts its API routes
                    raise
                time.sleep(1.0)
            except (OSError, urllib.error.URLError, ValueError):
                time.sleep(1.0)
        raise TimeoutError(f"Forge did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def select_anima(self) -> None:
        """As the harness does: the random Anima checkpoint with its stock Qwen3-0.6B and Wan VAE."""
        http("POST", self.url + "/sdapi/v1/options",
             {"sd_model_checkpoint": CHECKPOINT, "forge_additional_modules": list(MODULES)}, timeout=120)
        options = http("GET", self.url + "/sdapi/v1/options")
        chosen = sorted(os.path.basename(m) for m in options.get("forge_additional_modules", []))
        if options.get("sd_model_checkpoint") != CHECKPOINT or chosen != sorted(MODULES):
            raise RuntimeError(f"Forge did not take the model selection: {options.get('sd_model_checkpoint')} {chosen}")

    def peak_rss_gib(self) -> float | None:
        """The server's peak resident memory (VmHWM) so far, or at its stop."""
        if self.proc is None or self.proc.poll() is not None:
            return self.peak_rss
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return round(int(line.split()[1]) / 2**20, 2)
        except (OSError, AttributeError):
            return None
        return None

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def log_text(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL, to the process group this object started (its id is the child's pid)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.peak_rss = self.peak_rss_gib()
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue
