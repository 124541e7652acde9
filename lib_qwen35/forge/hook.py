"""Install / restore our `process_tokens` on an AnimaTextProcessingEngine instance.

Install: an instance attribute shadows the class method (Forge builds a new engine on every model load,
so the attribute disappears with the old model; `install()` is called again for the new one). The
wrapper asks `active_state` for a handler; with none armed it calls exactly what was there before (the
class method, or another extension's instance patch), so the stock path is bit-identical.
Restore: delete the instance attribute (or put back the other extension's patch we wrapped).
"""

from __future__ import annotations

import weakref

from . import active_state
from .model_detection import SEAM_METHOD

_MARK = "_qwen35_te_hook"
_PREVIOUS = "_qwen35_te_previous"
_hooked = weakref.WeakSet()  # engines carrying our attribute, for restore_all()


def is_installed(engine) -> bool:
    return getattr(vars(engine).get(SEAM_METHOD), _MARK, False)


def install(engine) -> bool:
    """Idempotent; True when the hook was newly installed on this engine."""
    if is_installed(engine):
        return False
    previous = vars(engine).get(SEAM_METHOD)  # None, or another extension's instance patch
    engine_ref = weakref.ref(engine)  # no strong cycle: the engine owns the wrapper

    def stock(batch_tokens, batch_multipliers):
        if previous is not None:
            return previous(batch_tokens, batch_multipliers)
        return getattr(type(engine_ref()), SEAM_METHOD)(engine_ref(), batch_tokens, batch_multipliers)

    def process_tokens(batch_tokens, batch_multipliers):
        handler = active_state.current()
        if handler is None:
            return stock(batch_tokens, batch_multipliers)
        try:
            return handler(engine_ref(), batch_tokens, batch_multipliers)
        except BaseException:
            active_state.disarm()  # never leave the replacement on after a failure
            raise

    setattr(process_tokens, _MARK, True)
    setattr(process_tokens, _PREVIOUS, previous)
    setattr(engine, SEAM_METHOD, process_tokens)
    _hooked.add(engine)
    return True


def restore(engine) -> bool:
    """Remove our attribute; True when something was removed."""
    current = vars(engine).get(SEAM_METHOD)
    if not getattr(current, _MARK, False):
        return False
    previous = getattr(current, _PREVIOUS, None)
    if previous is None:
        delattr(engine, SEAM_METHOD)
    else:
        setattr(engine, SEAM_METHOD, previous)
    _hooked.discard(engine)
    return True


def restore_all() -> int:
    """on_script_unloaded: take the hook off every engine we touched."""
    return sum(restore(engine) for engine in list(_hooked))
