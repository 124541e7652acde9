"""Stop a generation with our error, on any engine generation, even one whose seam we cannot patch.

Forge catches exceptions raised in Script.process / process_batch and generates anyway, with the stock
encoder: an error found there (a missing file, a bad setting, an Anima engine we do not know) would be
a silent fall-back to stock. So it is raised where Forge cannot swallow it, when the conditioning is
computed: the loaded model's `get_learned_conditioning` is shadowed on the instance by a function that
takes itself off and raises. `follow()` moves it to a model Forge reloaded before the conditioning.
"""

from __future__ import annotations

import threading
import weakref

NAME = "get_learned_conditioning"
_MARK = "_qwen35_te_error_guard"

_lock = threading.Lock()
_error: BaseException | None = None
_model_ref = None      # weakref to the model carrying the guard
_previous = None       # what the instance had before (another extension's patch), put back on disarm


def arm(sd_model, error: BaseException) -> None:
    global _error
    disarm()
    with _lock:
        _error = error
        if sd_model is not None:
            _install(sd_model)


def follow(sd_model) -> None:
    """Forge reloaded the model after Script.process(): guard the new one."""
    with _lock:
        if _error is None or sd_model is None or (_model_ref is not None and _model_ref() is sd_model):
            return
        _uninstall()
        _install(sd_model)


def pending() -> BaseException | None:
    return _error


def disarm() -> None:
    global _error
    with _lock:
        _uninstall()
        _error = None


def _install(model) -> None:
    global _model_ref, _previous
    error = _error
    _previous = vars(model).get(NAME)

    def raise_error(*args, **kwargs):
        disarm()
        raise error

    setattr(raise_error, _MARK, True)
    setattr(model, NAME, raise_error)
    _model_ref = weakref.ref(model)


def _uninstall() -> None:
    global _model_ref, _previous
    model = _model_ref() if _model_ref is not None else None
    if model is not None and getattr(vars(model).get(NAME), _MARK, False):
        if _previous is None:
            delattr(model, NAME)
        else:
            setattr(model, NAME, _previous)
    _model_ref, _previous = None, None
