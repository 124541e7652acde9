"""What the last generation did (loaded file, device, dtype, encode time, tokens, or the error).

Module-level, so the txt2img and img2img accordions (and the API) share it. The accordion's status box
is `panel(now)`: what its current controls will do (preview.py), then `line()`.
"""

from __future__ import annotations

import threading

from . import messages

_lock = threading.Lock()
_state = {"kind": "idle", "text": ""}
_last_encode: dict = {}


def _set(kind: str, text: str) -> None:
    with _lock:
        _state.update(kind=kind, text=text)


def set_off() -> None:
    _set("off", "off: the stock Qwen3-0.6B encoder is used")


def set_not_anima(model_description: str) -> None:
    _set("not_anima", f"inactive: the loaded model is not Anima ({model_description}); nothing is changed")


def set_armed(run, located=None) -> None:
    with _lock:
        _last_encode.clear()  # the counters below describe the current generation
    extra = f", alignment {run.alignment_strength:g}" if run.alignment_path else ""
    extra += ", calibration" if run.calibration_path else ""
    extra += f", scale {run.output_scale:g}" if run.output_scale != 1.0 else ""
    seam = located.seam_description() if located is not None else ""
    if seam:
        extra += f"; {seam}"
    _set("armed", f"ready: {run.weights_name} ({run.weights_hash}) on {run.placement.describe()}{extra}"
                  f"{_warnings(run)}")


def _warnings(run) -> str:
    """"; warning: <short label>" per provenance warning of the run (another encoder file, no provenance, ...)."""
    return "".join(f"; warning: {messages.provenance_label(v)}" for v in getattr(run, "warnings", ()))


def set_error(message: str) -> None:
    _set("error", f"error: {message}")


def record_encode(run, token_counts: list[int], seconds: float, encoder) -> None:
    stats = getattr(encoder, "stats", None)
    hits = stats.get("cache_hits") if isinstance(stats, dict) else getattr(stats, "cache_hits", None)
    with _lock:
        where = run.placement.describe() + _fast_path(encoder)
        _last_encode.update(file=run.weights_name, hash=run.weights_hash, where=where, cache_hits=hits,
                            warnings=_warnings(run))
        _last_encode["ms"] = _last_encode.get("ms", 0.0) + seconds * 1000.0
        _last_encode["tokens"] = _last_encode.get("tokens", []) + list(token_counts)
        _state.update(kind="encoded")


def _fast_path(encoder) -> str:
    """What the library chose for speed (GPU fast path / fallbacks and why), or its delta-rule kernel."""
    describe = getattr(encoder, "fast_path_status", None)
    if callable(describe):
        try:
            return f" ({describe()})"
        except Exception:  # noqa: BLE001 - the status line must never fail: say the kernel instead
            pass
    kernel = getattr(encoder, "kernel", None)
    return f", kernel {kernel}" if isinstance(kernel, str) else ""


def line() -> str:
    with _lock:
        kind, text = _state["kind"], _state["text"]
        enc = dict(_last_encode)
    if kind == "encoded" and enc:
        tokens = "+".join(str(t) for t in enc["tokens"])
        return (f"active: {enc['file']} ({enc['hash']}) on {enc['where']}, last encode {enc['ms']:.0f} ms, "
                f"Qwen3.5 tokens per prompt {tokens}{enc['warnings']}")
    return text


def panel(now: str) -> str:
    """The accordion's status box: `now` (what the controls will do) and the last generation's line."""
    return f"{now}\nLast generation: {line() or 'none yet in this session'}"
