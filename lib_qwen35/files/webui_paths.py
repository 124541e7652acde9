"""Paths as a WebUI user types them: `models/...` means the WebUI's models folder, from either of two folders.

The command line is run from the WebUI folder (the one holding `models/`) or from this extension's folder
(`WEBUI/extensions/NAME/`). A relative path whose first part is `models` is read against the WebUI folder in
both cases, so `models/qwen35/qwen35_4b.safetensors` names the same file from both. Every other relative path
is relative to the current folder, as usual, and absolute paths are left alone.

This is all the library knows of a WebUI's layout: a `models` folder, with the extension two levels below it.
"""

from __future__ import annotations

import os

MODELS = "models"
EXTENSION_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _same_folder(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _extension_dirs() -> list[str]:
    """This extension's folder, also as the shell spells it (getcwd() and -m resolve a symlinked extension
    folder to its target, whose parents are not the WebUI's)."""
    out = [EXTENSION_DIR]
    shell_cwd = os.environ.get("PWD")
    if shell_cwd and os.path.isabs(shell_cwd) and _same_folder(shell_cwd, EXTENSION_DIR):
        out.append(shell_cwd)
    return out


def webui_dir(cwd: str | None = None) -> str | None:
    """The WebUI folder: the current folder when it holds `models/`, else the folder above the `extensions`
    folder that holds this extension, when that holds `models/`; None when neither does."""
    cwd = os.path.abspath(cwd or os.getcwd())
    if os.path.isdir(os.path.join(cwd, MODELS)):
        return cwd
    for extension in _extension_dirs():
        parent = os.path.dirname(os.path.abspath(extension))
        root = os.path.dirname(parent)
        if os.path.basename(parent).lower().startswith("extensions") and os.path.isdir(os.path.join(root, MODELS)):
            return root
    return None


def starts_with_models(path: str) -> bool:
    """Whether a relative path's first part is `models` (models/x, models\\x on Windows, ./models/x)."""
    if os.path.isabs(path):
        return False
    first = os.path.normpath(path).split(os.sep)[0]
    return os.path.normcase(first) == os.path.normcase(MODELS)


def user_path(path, cwd: str | None = None) -> str:
    """`path` as the user means it: a relative `models/...` path against the WebUI folder, anything else
    unchanged (relative to the current folder)."""
    path = os.fspath(path)
    if not starts_with_models(path):
        return path
    root = webui_dir(cwd)
    if root is None:
        return path
    return os.path.join(root, os.path.normpath(path))
