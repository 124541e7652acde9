"""Lazy access to the modules every A1111-family WebUI has (Forge Neo and SD.Next alike).

Everything imports inside the function, so `lib_qwen35.host` imports without a WebUI (tests put their
stand-ins on sys.path instead). A missing optional piece returns None and the caller degrades gracefully.
What only one WebUI has lives in that WebUI's package (forge_neo/, sdnext/).
"""

from __future__ import annotations

import contextlib
import importlib
import os


def optional(module_name: str):
    """The module, or None when this WebUI has none by that name."""
    try:
        return importlib.import_module(module_name)
    except ImportError:
        return None


def shared():
    """modules.shared (sd_model, opts, cmd_opts, OptionInfo)."""
    from modules import shared as webui_shared

    return webui_shared


def opts():
    return shared().opts


def sd_model():
    return getattr(shared(), "sd_model", None)


def cmd_opts():
    return getattr(shared(), "cmd_opts", None)


def script_callbacks():
    return optional("modules.script_callbacks")


def scripts_module():
    return optional("modules.scripts")


def queue_lock():
    """The WebUI's generation lock (modules.call_queue.queue_lock), or None outside a WebUI."""
    module = optional("modules.call_queue")
    return getattr(module, "queue_lock", None)


def models_path() -> str:
    """The WebUI's models root (modules.paths.models_path: --models-dir / --model-ref or <data-dir>/models)."""
    paths = optional("modules.paths") or optional("modules.paths_internal")
    path = getattr(paths, "models_path", None)
    return path or os.path.join(os.getcwd(), "models")


@contextlib.contextmanager
def generation_lock():
    """Hold the WebUI's queue lock while an encoder runs outside a generation (the alignment tab), so it
    never interleaves with one. Not re-entrant (Forge's FIFOLock, SD.Next's threading.Lock): never nest it."""
    try:
        lock = queue_lock()
    except Exception:  # noqa: BLE001 - a WebUI whose call_queue cannot be imported here: run unlocked
        lock = None
    if lock is None:
        yield
        return
    with lock:
        yield
