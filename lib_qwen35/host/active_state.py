"""The module-level "armed" state that routes the installed seam patch.

A WebUI package patches its seam once and leaves the patch there; whether it replaces anything is decided
here, per generation: `Script.process()` arms an encoder, `postprocess()` disarms it, and the patch disarms
it on any exception (`failed`). With nothing armed the patch runs the stock method, so a failure can never
leave the WebUI stuck on the replacement.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# encode(texts) -> one [T_i, 1024] float32 CPU tensor per prompt text (the seam formats them);
# an optional encode.report(error) -> the error to raise instead (replacement.make_encode)
Encode = Callable[[list], list]

_lock = threading.Lock()
_encode: Encode | None = None


def arm(encode: Encode) -> None:
    global _encode
    with _lock:
        _encode = encode


def disarm() -> None:
    global _encode
    with _lock:
        _encode = None


def current() -> Encode | None:
    return _encode


def is_armed() -> bool:
    return _encode is not None


def failed(encode: Encode, error: BaseException) -> BaseException:
    """A seam patch's replacement raised `error`: disarm (never leave the replacement on after a failure) and
    return what to raise: `encode.report`'s error (it names the extension, the file and the fix), or `error`
    itself when there is no report or it is no Exception (an interrupt)."""
    disarm()
    report = getattr(encode, "report", None)
    return report(error) if report is not None and isinstance(error, Exception) else error
