"""Is the loaded model Anima, where is its text engine, and which engine generation is it?

Forge Neo has kept Anima's engine on `sd_model.text_processing_engine_anima` (up to 2.29.1) and on
`sd_model.text_processing_engine_qwen` (from 2.29.2, an attribute other models' Qwen engines use too).
Both are searched, then any other `text_processing_engine*` attribute, so a renamed attribute is still
found. Anima is told apart by what its engine carries (a T5 tokenizer and the LLM adapter), not by the
attribute's name; the generation by which seam it offers (engines/).

    locate(sd_model).kind:
        "anima"        an engine we know: seam.py patches it
        "unsupported"  an Anima model whose engine matches no generation: stop with a message, never stock
        "not_anima"    another model (SDXL, Flux, Z-Image, ...): nothing to do
        "no_model"
"""

from __future__ import annotations

import dataclasses

from ..interface import Located as HostLocated
from .engines import EngineGeneration, generation_of, has_llm_adapter

KNOWN_ENGINE_ATTRS = ("text_processing_engine_anima", "text_processing_engine_qwen")
ENGINE_ATTR_PREFIX = "text_processing_engine"


@dataclasses.dataclass(frozen=True)
class Located(HostLocated):
    engine: object = None
    attribute: str = ""
    generation: EngineGeneration | None = None
    attributes_seen: tuple = ()        # every text_processing_engine* attribute, for messages

    def seam_description(self) -> str:
        return f"Forge engine {self.generation.name} at {self.attribute}" if self.generation is not None else ""


def locate(sd_model) -> Located:
    if sd_model is None:
        return Located("no_model", model=describe_model(None))
    candidates = engine_attributes(sd_model)
    seen = tuple(name for name, _ in candidates)
    described = describe_model(sd_model)
    for name, engine in candidates:
        if has_llm_adapter(engine):
            generation = generation_of(engine)
            kind = "anima" if generation is not None else "unsupported"
            return Located(kind, described, engine, name, generation, seen)
    if _is_anima_model(sd_model):  # Anima, but no engine that looks like Anima's
        name, engine = candidates[0] if candidates else ("", None)
        return Located("unsupported", described, engine, name, None, seen)
    return Located("not_anima", model=described, attributes_seen=seen)


def engine_attributes(sd_model) -> list[tuple[str, object]]:
    """(attribute, engine) for every text-processing engine the model holds, known attributes first."""
    names = list(KNOWN_ENGINE_ATTRS)
    try:
        names += sorted(n for n in vars(sd_model) if n.startswith(ENGINE_ATTR_PREFIX) and n not in names)
    except TypeError:  # an object without __dict__
        pass
    found = []
    for name in names:
        engine = getattr(sd_model, name, None)
        if engine is not None:
            found.append((name, engine))
    return found


def _is_anima_model(sd_model) -> bool:
    """Forge's diffusion-engine class for Anima is backend.diffusion_engine.anima.Anima."""
    return any(cls.__name__ == "Anima" for cls in type(sd_model).__mro__)


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
