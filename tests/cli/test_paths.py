"""models/... arguments mean the WebUI's models folder, from the WebUI folder and from the extension folder."""

import subprocess
import sys

from repo import ROOT

REPO = ROOT


def test_models_paths_mean_the_webui_models_folder(tmp_path, monkeypatch):
    import os

    from lib_qwen35.files import webui_paths

    webui = tmp_path / "webui"
    extension = webui / "extensions" / "sd-forge-qwen35-anima"
    extension.mkdir(parents=True)
    (webui / "models" / "qwen35").mkdir(parents=True)
    monkeypatch.setattr(webui_paths, "EXTENSION_DIR", str(extension))
    monkeypatch.delenv("PWD", raising=False)
    wanted = os.path.join(str(webui), "models", "qwen35", "f.safetensors")
    for cwd in (webui, extension):
        assert os.path.normpath(webui_paths.user_path("models/qwen35/f.safetensors", str(cwd))) == wanted
        assert webui_paths.user_path("./models/qwen35/f.safetensors", str(cwd)).endswith("f.safetensors")
    assert webui_paths.user_path("modelsX/f.safetensors", str(extension)) == "modelsX/f.safetensors"
    assert webui_paths.user_path("alignment_data/x.txt", str(extension)) == "alignment_data/x.txt"
    assert webui_paths.user_path(wanted, str(extension)) == wanted
    monkeypatch.setattr(webui_paths, "EXTENSION_DIR", str(tmp_path / "elsewhere"))     # not inside a WebUI
    assert webui_paths.user_path("models/qwen35/f.safetensors", str(tmp_path)) == "models/qwen35/f.safetensors"


def test_models_paths_work_from_a_symlinked_extension_folder(tmp_path, anima_ckpt):
    """Installed as a symlink (as the harnesses do), the extension folder's real path is elsewhere: the shell's
    PWD still names the WebUI above it."""
    import os
    import shutil

    webui = tmp_path / "webui"
    (webui / "models" / "qwen35").mkdir(parents=True)
    (webui / "extensions").mkdir()
    shutil.copy(anima_ckpt, webui / "models" / "qwen35" / "qwen35_4b.safetensors")
    link = webui / "extensions" / "sd-forge-qwen35-anima"
    link.symlink_to(REPO, target_is_directory=True)
    env = {**os.environ, "PWD": str(link)}
    r = subprocess.run([sys.executable, "-m", "lib_qwen35", "inspect", "models/qwen35/qwen35_4b.safetensors"],
                       cwd=link, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "verdict" in r.stdout, r.stderr
    assert str(webui / "models" / "qwen35" / "qwen35_4b.safetensors") in r.stdout
