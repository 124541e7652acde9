"""The module-level "armed" state that routes the installed hook.

The hook is installed once per engine and stays installed; whether it replaces anything is decided here,
per generation: `Script.process()` arms an encoder, `postprocess()` disarms it, and the hook disarms it
on any exception. With nothing armed the hook runs the stock method, so a failure can never leave the
WebUI stuck on the replacement.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

# encode(texts) -> one [T_i, 1024] float32 CPU tensor per prompt text (the engine generation formats it);
# an optional encode.report(error) -> the error to raise instead (replacement.make_encode)
Encode = Callable[[list], list]

_lock = threading.Lock()
_encode: Optional[Encode] = None


def arm(encode: Encode) -> None:
    global _encode
    with _lock:
        _encode = encode


def disarm() -> None:
    global _encode
    with _lock:
        _encode = None


def current() -> Optional[Encode]:
    return _encode


def is_armed() -> bool:
    return _encode is not None
