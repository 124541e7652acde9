"""SD.Next's prompt cache: never a stale conditioning.

`modules/sd_hijack_te.py` wraps every pipeline's `encode_prompt` (`init_hijack`, called by the Anima loader
and on every pipeline switch). Its module-level `prompt_cache` (a PromptCache: `get(prompt)`, `set(prompt,
encoded)`, a dict `cache` of at most 16 entries, emptied when `id(shared.sd_model)` changes, no setting
to turn it off) keys the (prompt embeds, negative embeds) pair on the **positive prompt only**. So:
- a conditioning made by our encoder would be served to a later generation with other settings of ours,
  or with the extension off;
- while our encoder is on, a changed negative prompt would be ignored (an SD.Next bug stock has too).

While a run of ours is armed, `get` misses and `set` stores nothing (instance attributes on the cache
object shadow its methods; with nothing armed they call the originals, so stock caching is unchanged).
On top, the cache is emptied whenever our settings signature changes (on, off, another file...).
"""

from __future__ import annotations

from .. import a1111, active_state
from ..interface import OFF_SIGNATURE

_MARK = "_qwen35_te_bypass"
_last_signature: tuple = OFF_SIGNATURE


def cache_object():
    """modules.sd_hijack_te.prompt_cache, or None where SD.Next has none."""
    module = a1111.optional("modules.sd_hijack_te")
    return getattr(module, "prompt_cache", None)


def problem() -> str:
    """Why the cache cannot be kept fresh ("" when it can, or when SD.Next has no prompt cache at all)."""
    cache = cache_object()
    if cache is None:
        return ""
    missing = [name for name in ("get", "set") if not callable(getattr(cache, name, None))]
    if not isinstance(getattr(cache, "cache", None), dict):
        missing.append("cache (a dict)")
    if missing:
        return f"modules.sd_hijack_te.prompt_cache ({type(cache).__name__}) has no {', '.join(missing)}"
    return ""


def install() -> bool:
    """Bypass the cache while a run of ours is armed; idempotent. True when newly installed."""
    cache = cache_object()
    if cache is None or problem() or getattr(vars(cache).get("get"), _MARK, False):
        return False
    stock_get, stock_set = cache.get, cache.set   # bound methods (or another extension's patch)

    def get(prompt):
        return None if active_state.is_armed() else stock_get(prompt)

    def set(prompt, encoded):  # noqa: A001 - the cache's own method name
        if not active_state.is_armed():
            stock_set(prompt, encoded)

    for fn, previous in ((get, vars(cache).get("get")), (set, vars(cache).get("set"))):
        setattr(fn, _MARK, True)
        fn._qwen35_previous = previous
        setattr(cache, fn.__name__, fn)
    return True


def restore() -> bool:
    cache = cache_object()
    if cache is None or not getattr(vars(cache).get("get"), _MARK, False):
        return False
    for name in ("get", "set"):
        current = vars(cache).get(name)
        previous = getattr(current, "_qwen35_previous", None)
        if previous is None:
            delattr(cache, name)
        else:
            setattr(cache, name, previous)
    return True


def clear() -> None:
    cache = cache_object()
    entries = getattr(cache, "cache", None)
    if isinstance(entries, dict):
        entries.clear()


def sync(signature: tuple) -> bool:
    """Once per generation; True when the cache was emptied (our settings signature changed)."""
    global _last_signature
    install()
    if signature == _last_signature:
        return False
    clear()
    _last_signature = signature
    return True


def reset() -> None:
    global _last_signature
    _last_signature = OFF_SIGNATURE
