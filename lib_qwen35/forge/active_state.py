"""The module-level "armed" state that routes the installed hook.

The hook is installed once per engine and stays installed; whether it replaces anything is decided here,
per generation: `Script.process()` arms a handler, `postprocess()` disarms it, and the hook disarms it
on any exception. With nothing armed the hook runs the stock method, so a failure can never leave the
WebUI stuck on the replacement.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

# handler(engine, batch_tokens, batch_multipliers) -> Tensor[B, L, 1024]
Handler = Callable[[object, list, list], object]

_lock = threading.Lock()
_handler: Optional[Handler] = None
_label = ""


def arm(handler: Handler, label: str = "") -> None:
    global _handler, _label
    with _lock:
        _handler, _label = handler, label


def disarm() -> None:
    global _handler, _label
    with _lock:
        _handler, _label = None, ""


def current() -> Optional[Handler]:
    return _handler


def is_armed() -> bool:
    return _handler is not None


def label() -> str:
    return _label
