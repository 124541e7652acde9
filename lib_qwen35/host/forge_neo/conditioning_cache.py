"""Forge conditioning-cache invalidation.

Forge keeps the last conditioning in `StableDiffusionProcessing.cached_c / cached_uc` (class-level,
shared by txt2img and img2img) and, for hires fix, `StableDiffusionProcessingTxt2Img.cached_hr_c /
cached_hr_uc`. Their key (prompts, steps, size, model, ...) knows nothing about this extension, and
`persistent_cond_cache` is on by default, so a changed encoder setting would silently reuse the old
conditioning. We remember the signature of the last generation's settings and empty those caches whenever
it changes (including turning the extension on or off).
"""

from __future__ import annotations

from ..interface import OFF_SIGNATURE

CACHES = ("cached_c", "cached_uc", "cached_hr_c", "cached_hr_uc")

_last_signature: tuple = OFF_SIGNATURE  # before us, conditioning was the stock one


def sync(p, signature: tuple) -> bool:
    """Call once per generation with its signature; True when the caches were invalidated."""
    global _last_signature
    if signature == _last_signature:
        return False
    invalidate(p)
    _last_signature = signature
    return True


def invalidate(p) -> None:
    """Empty every cache list in place, on p and on the classes that define it.

    In place, not `p.clear_prompt_cache()`: that assigns new lists to p and to the class separately, so
    what this generation computes would land only in p's list and the next unchanged generation would
    recompute. Emptying the shared list objects keeps them shared. Any other cache type falls back to
    Forge's own clear_prompt_cache()."""
    fallback = False
    for name in CACHES:
        owners = [vars(cls)[name] for cls in type(p).__mro__ if name in vars(cls)]
        if name in vars(p):
            owners.append(vars(p)[name])
        for cache in owners:
            if isinstance(cache, list):
                cache[:] = [None] * len(cache)
            else:
                fallback = True
    if fallback and callable(getattr(p, "clear_prompt_cache", None)):
        p.clear_prompt_cache()


def reset() -> None:
    global _last_signature
    _last_signature = OFF_SIGNATURE
