"""Is the loaded model Anima, and which object is its text-processing engine?

Forge Neo's Anima engine (`backend/diffusion_engine/anima.py`) keeps an `AnimaTextProcessingEngine` in
`sd_model.text_processing_engine_anima`; its `process_tokens(batch_tokens, batch_multipliers)` is the seam.
"""

from __future__ import annotations

ENGINE_ATTR = "text_processing_engine_anima"
SEAM_METHOD = "process_tokens"


def anima_engine(sd_model):
    """The engine to hook, or None when no model is loaded or it is not Anima."""
    engine = getattr(sd_model, ENGINE_ATTR, None) if sd_model is not None else None
    if engine is None or not callable(getattr(type(engine), SEAM_METHOD, None)):
        return None
    return engine


def describe_model(sd_model) -> str:
    """A short name for status lines: checkpoint title if Forge has one, else the engine class."""
    if sd_model is None:
        return "no model loaded"
    info = getattr(sd_model, "sd_checkpoint_info", None)
    for attr in ("short_title", "name_for_extra", "title", "name"):
        value = getattr(info, attr, None) if info is not None else None
        if value:
            return f"{value} ({type(sd_model).__name__})"
    return type(sd_model).__name__
