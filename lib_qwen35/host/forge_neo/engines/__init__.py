"""Adapters for each Forge Neo generation of Anima's text engine, behind one interface (base.py).

    legacy   AnimaTextProcessingEngine.process_tokens          (neo-2.26 and earlier)
    qwen06   Qwen06Engine -> SDClipModel.encode_token_weights   (upstream 21886f41 to 2.30)

A new generation is one more module here and one more entry in GENERATIONS.
"""

from __future__ import annotations

from .base import EngineGeneration, has_llm_adapter
from .legacy import LegacyEngine
from .qwen06 import Qwen06Engine

GENERATIONS: tuple[EngineGeneration, ...] = (LegacyEngine(), Qwen06Engine())


def generation_of(engine) -> EngineGeneration | None:
    """The generation whose seam this engine offers, or None."""
    for generation in GENERATIONS:
        try:
            if generation.matches(engine):
                return generation
        except Exception:  # noqa: BLE001 - an odd object must not break detection
            continue
    return None


def supported() -> str:
    return "; ".join(g.describe() for g in GENERATIONS)


__all__ = ["EngineGeneration", "GENERATIONS", "generation_of", "has_llm_adapter", "supported"]
