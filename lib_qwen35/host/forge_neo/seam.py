"""Install / restore our replacement of an engine generation's seam, on the instance that owns it.

Install: an instance attribute shadows the class method (Forge builds a new engine on every model load,
so the attribute disappears with the old model; `install()` is called again for the new one). The
wrapper asks `active_state` for an encoder; with none armed it calls exactly what was there before (the
class method, or another extension's instance patch), so the stock path is bit-identical. With one armed
it calls the generation's `replace`, which turns the ids back into text and formats our states.
Restore: delete the instance attribute (or put back the other extension's patch we wrapped).
"""

from __future__ import annotations

import weakref

from .. import active_state
from .engines import EngineGeneration, generation_of

_MARK = "_qwen35_te_hook"
_PREVIOUS = "_qwen35_te_previous"
_hooked: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()  # seam owner -> method name


def _seam(engine, generation: EngineGeneration | None):
    generation = generation or generation_of(engine)
    if generation is None:
        raise TypeError(f"{type(engine).__name__} offers no engine seam this extension knows")
    return generation, generation.seam_owner(engine), generation.seam_name


def is_installed(engine, generation: EngineGeneration | None = None) -> bool:
    _, owner, name = _seam(engine, generation)
    return getattr(vars(owner).get(name), _MARK, False)


def install(engine, generation: EngineGeneration | None = None) -> bool:
    """Idempotent; True when the patch was newly installed on this engine."""
    generation, owner, name = _seam(engine, generation)
    previous = vars(owner).get(name)  # None, or another extension's instance patch
    if getattr(previous, _MARK, False):
        return False
    engine_ref, owner_ref = weakref.ref(engine), weakref.ref(owner)  # no strong cycle: the owner holds the wrapper

    def stock(*args, **kwargs):
        if previous is not None:
            return previous(*args, **kwargs)
        target = owner_ref()
        return getattr(type(target), name)(target, *args, **kwargs)

    def seam(*args, **kwargs):
        encode = active_state.current()
        if encode is None:
            return stock(*args, **kwargs)
        try:
            return generation.replace(engine_ref(), encode, *args, **kwargs)
        except BaseException as error:
            wrapped = active_state.failed(encode, error)
            if wrapped is error:
                raise
            raise wrapped from error

    setattr(seam, _MARK, True)
    setattr(seam, _PREVIOUS, previous)
    setattr(owner, name, seam)
    _hooked[owner] = name
    return True


def restore(engine, generation: EngineGeneration | None = None) -> bool:
    """Remove our attribute; True when something was removed."""
    _, owner, name = _seam(engine, generation)
    return _restore_owner(owner, name)


def _restore_owner(owner, name: str) -> bool:
    current = vars(owner).get(name)
    if not getattr(current, _MARK, False):
        return False
    previous = getattr(current, _PREVIOUS, None)
    if previous is None:
        delattr(owner, name)
    else:
        setattr(owner, name, previous)
    _hooked.pop(owner, None)
    return True


def restore_all() -> int:
    """on_script_unloaded: take the patch off every engine we touched."""
    return sum(_restore_owner(owner, name) for owner, name in list(_hooked.items()))
