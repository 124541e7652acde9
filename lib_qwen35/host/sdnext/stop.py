"""Stop an SD.Next generation with our error.

SD.Next swallows errors at the two places we work from:
- Script hooks (process, process_batch) are wrapped: an exception is logged and generation goes on.
- `modules/sd_hijack_te.hijack_encode_prompt` catches whatever the prompt encode raises, logs it and
  returns the prompt strings instead of embeddings; the pipeline then fails with an unrelated message
  (or, for a batch of one, a ValueError that `processing_diffusers.process_base` only logs: no image, no
  error shown).

So our errors are raised from the pipeline's `__call__` (patched on the pipeline class), which SD.Next calls
outside both: `process_base` re-raises everything but ValueError / RuntimeError / AssertionError, the UI's
`call_queue.wrap_gradio_gpu_call` shows it in the error box and the API's middleware answers with it.
    an armed error (a file, a setting, an unknown seam): raised as `__call__` starts, before any work
    an encode failure: the seam records it; raised when `__call__` ends, instead of the follow-up error
    a seam that did not run: `__call__` ran while our encoder was armed, yet our `_encode_prompt`
        patch never did (SD.Next changed its pipeline): raised, never a stock image by mistake
"""

from __future__ import annotations

import threading

from lib_qwen35.errors import Qwen35Error

from .. import active_state
from .detection import seam_not_called

_MARK = "_qwen35_te_stop"
SWALLOWED = (ValueError, RuntimeError, AssertionError)   # what process_base catches and only logs

_lock = threading.Lock()
_armed: BaseException | None = None
_failure: BaseException | None = None
_seam_runs = 0
_guarded: dict = {}   # pipeline class -> its own __call__ before ours (None: it inherited one)


class GenerationStopped(Qwen35Error):
    """Our error, re-typed so that SD.Next's process_base does not catch and merely log it."""


def arm(sd_model, error: BaseException) -> None:
    global _armed
    with _lock:
        _armed = error
    if sd_model is not None:
        guard(type(sd_model))


def follow(sd_model) -> None:
    """SD.Next switched or reloaded the pipeline since arm(): guard the class that will be called."""
    if _armed is not None and sd_model is not None:
        guard(type(sd_model))


def pending() -> BaseException | None:
    return _armed


def disarm() -> None:
    global _armed, _failure
    with _lock:
        _armed, _failure = None, None


def record_failure(error: BaseException) -> None:
    """The seam failed inside SD.Next's encode hijack (which will swallow it): raise it from __call__."""
    global _failure
    with _lock:
        _failure = error


def seam_ran() -> None:
    global _seam_runs
    with _lock:
        _seam_runs += 1


def seam_runs() -> int:
    return _seam_runs


def unswallowable(error: BaseException) -> BaseException:
    """`error`, or the same text as a GenerationStopped when process_base would swallow its type."""
    if isinstance(error, SWALLOWED):
        stopped = GenerationStopped(str(error))
        stopped.__cause__ = error
        return stopped
    return error


def guard(cls) -> bool:
    """Patch `cls.__call__` (on the class itself: a pipeline is called as `pipe(...)`); idempotent."""
    own = vars(cls).get("__call__")
    if getattr(own, _MARK, False):
        return False

    def guarded_call(pipe, *args, **kwargs):
        with _lock:
            armed = _armed
        if armed is not None:
            disarm()
            raise unswallowable(armed)
        runs_before, encoding = _seam_runs, active_state.is_armed()
        try:
            result = own(pipe, *args, **kwargs) if own is not None else super(cls, pipe).__call__(*args, **kwargs)
        except BaseException as error:
            failure = _take_failure()
            if failure is not None and failure is not error:
                raise unswallowable(failure) from error
            raise
        failure = _take_failure()
        if failure is not None:
            raise unswallowable(failure)
        if encoding and active_state.is_armed() and _seam_runs == runs_before and kwargs.get("prompt_embeds") is None:
            active_state.disarm()
            raise unswallowable(seam_not_called(type(pipe)))
        return result

    setattr(guarded_call, _MARK, True)
    guarded_call.__wrapped__ = own
    cls.__call__ = guarded_call
    _guarded[cls] = own
    return True


def restore_all() -> int:
    restored = 0
    for cls, own in list(_guarded.items()):
        current = vars(cls).get("__call__")
        if getattr(current, _MARK, False):
            if own is None:
                delattr(cls, "__call__")
            else:
                cls.__call__ = own
            restored += 1
        _guarded.pop(cls, None)
    return restored


def _take_failure() -> BaseException | None:
    global _failure
    with _lock:
        failure, _failure = _failure, None
    return failure
