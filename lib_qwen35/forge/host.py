"""Lazy access to Forge Neo's modules.

Everything here imports inside the function, so `lib_qwen35.forge` imports without Forge (tests put
their stand-ins on sys.path instead). A missing optional piece (e.g. `backend.memory_management` in an
old Forge, or no xyz_grid script) returns None and the caller degrades gracefully.
"""

from __future__ import annotations

import importlib
import os


def _optional(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ImportError:
        return None


def shared():
    """modules.shared (sd_model, opts, cmd_opts, OptionInfo)."""
    from modules import shared as forge_shared

    return forge_shared


def opts():
    return shared().opts


def sd_model():
    return getattr(shared(), "sd_model", None)


def cmd_opts():
    return getattr(shared(), "cmd_opts", None)


def memory_management():
    """backend.memory_management, or None where Forge has none (plain torch is used then)."""
    return _optional("backend.memory_management")


def script_callbacks():
    return _optional("modules.script_callbacks")


def scripts_module():
    return _optional("modules.scripts")


def queue_lock():
    """Forge's generation lock (modules.call_queue.queue_lock), or None outside Forge."""
    module = _optional("modules.call_queue")
    return getattr(module, "queue_lock", None) if module is not None else None


def models_path() -> str:
    """Forge's models root (`--model-ref` or <data-dir>/models)."""
    paths = _optional("modules.paths") or _optional("modules.paths_internal")
    path = getattr(paths, "models_path", None) if paths is not None else None
    return path or os.path.join(os.getcwd(), "models")


def text_encoder_dirs() -> list[str]:
    """models/text_encoder plus every --text-encoder-dirs, as Forge's module list scans them."""
    dirs = [os.path.join(models_path(), "text_encoder")]
    cmd = cmd_opts()
    dirs += list(getattr(cmd, "text_encoder_dirs", None) or [])
    return dirs


def forge_version() -> str:
    """modules_forge.forge_version as "neo 2.29.2", or "unknown" where it cannot be read."""
    module = _optional("modules_forge.forge_version")
    parts = [str(getattr(module, name)) for name in ("version", "release") if getattr(module, name, None)] if module else []
    return " ".join(parts) or "unknown"


def cpu_only() -> bool:
    """True under --cpu (or when Forge's memory manager says it runs on the CPU)."""
    cmd = cmd_opts()
    if getattr(cmd, "cpu", False) or getattr(cmd, "use_cpu", None):
        return True
    mm = memory_management()
    if mm is not None and hasattr(mm, "cpu_mode"):
        try:
            return bool(mm.cpu_mode())
        except Exception:
            return False
    return False
