"""Is the loaded SD.Next pipeline Anima, and is its text seam the one this extension knows?

SD.Next's `pipelines/anima/pipeline.py`, class `AnimaTextToImagePipeline` (img2img and inpaint subclass it,
built by `anima_image.build_anima_pipeline_classes`), method `_encode_prompt(prompt, device, dtype,
max_sequence_length=512)`, called by `encode_prompt` once for the prompts and once for the negatives:

    all prompts empty  -> zeros [B, 512, 1024] (neither the text encoder nor the adapter runs)
    self.tokenizer(prompt, padding=True, truncation=True, max_length=512)   Qwen3 ids [B, Lq], pad 151643
    self.text_encoder(input_ids, attention_mask).last_hidden_state          [B, Lq, 1024]  <- replaced (seam.py)
        .to(dtype)                                  dtype = text_encoder.dtype; device = _execution_device
    self.t5_tokenizer(prompt, ...)                  T5 ids [B, Lt]
    self.llm_adapter(source_hidden_states, target_input_ids)   [B, Lt, 1024], no attention mask
    zero-padded to [B, 512, 1024]

An Anima pipeline whose seam differs is "unsupported": enabled generations stop with an error that names
what was found, the SD.Next version and what is supported (never a stock image by mistake). The same
errors name a seam that changed under a running generation (seam.py, stop.py).
"""

from __future__ import annotations

import dataclasses
import inspect

from .. import messages
from ..interface import Located as HostLocated
from . import conditioning_cache
from .version import version

SEAM = "_encode_prompt"
SEAM_PARAMS = ["prompt", "device", "dtype", "max_sequence_length"]
COMPONENTS = ("text_encoder", "tokenizer", "t5_tokenizer", "llm_adapter")
SUPPORTED = (f"Supported: AnimaTextToImagePipeline.{SEAM}({', '.join(SEAM_PARAMS)}) calling text_encoder(...)"
             f".last_hidden_state once, with {', '.join(COMPONENTS)} on the pipeline (SD.Next's "
             f"pipelines/anima/pipeline.py, 2026)")


@dataclasses.dataclass(frozen=True)
class Located(HostLocated):
    pipeline: object = None
    owner: type | None = None   # the class whose `_encode_prompt` is patched
    found: str = ""             # for "unsupported": what was found instead

    def seam_description(self) -> str:
        return f"SD.Next {self.owner.__name__}.{SEAM}" if self.owner is not None else ""


def locate(sd_model) -> Located:
    if sd_model is None:
        return Located("no_model", model="no model loaded")
    described = describe_model(sd_model)
    try:
        if not looks_like_anima(sd_model):
            return Located("not_anima", model=described)
        owner = seam_owner(type(sd_model))
        missing = [name for name in COMPONENTS if getattr(sd_model, name, None) is None]
        text_encoder = getattr(sd_model, "text_encoder", None)
        cache_problem = conditioning_cache.problem() if hasattr(sd_model, "orig_encode_prompt") else ""
    except Exception as error:  # noqa: BLE001 - an odd object must not break detection
        return Located("unsupported", model=described, pipeline=sd_model, found=f"{type(error).__name__}: {error}")
    if owner is None:
        return Located("unsupported", model=described, pipeline=sd_model, found=_describe_method(type(sd_model)))
    if missing:
        return Located("unsupported", model=described, pipeline=sd_model,
                       found=f"{type(sd_model).__name__} has no {', '.join(missing)}")
    if not callable(getattr(text_encoder, "register_forward_hook", None)):
        return Located("unsupported", model=described, pipeline=sd_model,
                       found=f"its text_encoder is a {type(text_encoder).__name__}, not a torch module")
    if cache_problem:
        return Located("unsupported", model=described, pipeline=sd_model,
                       found=f"its prompt cache moved: {cache_problem}")
    return Located("anima", model=described, pipeline=sd_model, owner=owner)


def looks_like_anima(pipe) -> bool:
    """Anima's pipelines carry the LLM adapter (Cosmos Predict2, its sibling, has none); a class named
    Anima*Pipeline without one is Anima too (and then "unsupported", loudly)."""
    if getattr(pipe, "llm_adapter", None) is not None:
        return True
    return any(cls.__name__.startswith("Anima") and cls.__name__.endswith("Pipeline") for cls in type(pipe).__mro__)


def seam_owner(cls):
    """The class in `cls`'s MRO that defines `_encode_prompt` with the expected parameters, or None."""
    for klass in cls.__mro__:
        fn = vars(klass).get(SEAM)
        if fn is None:
            continue
        return klass if _params(fn) == SEAM_PARAMS else None
    return None


def describe_model(sd_model) -> str:
    info = getattr(sd_model, "sd_checkpoint_info", None)
    for attr in ("name", "title", "filename"):
        value = getattr(info, attr, None) if info is not None else None
        if value:
            return f"{value} ({type(sd_model).__name__})"
    return type(sd_model).__name__


def _params(fn) -> list[str] | None:
    try:   # signature() follows __wrapped__: through our own patch (seam.py sets it) to SD.Next's function
        return list(inspect.signature(fn).parameters)[1:]
    except (TypeError, ValueError):
        return None


def _describe_method(cls) -> str:
    for klass in cls.__mro__:
        fn = vars(klass).get(SEAM)
        if fn is not None:
            return f"{klass.__name__}.{SEAM}({', '.join(_params(fn) or ['?'])}) (module {klass.__module__})"
    return f"{cls.__name__} (module {cls.__module__}) has no {SEAM}"


def unsupported(what: str) -> Exception:
    """The error for an Anima pipeline whose seam is not the one this module knows; `what` says what was found."""
    return messages.unsupported_seam("SD.Next", version(), what, SUPPORTED)


def seam_not_called(cls) -> Exception:
    return unsupported(f"{cls.__name__}.__call__ (module {cls.__module__}) ran without calling {SEAM}, "
                       f"so the prompt was encoded some other way")


def seam_changed(pipe, calls: int) -> Exception:
    owner = seam_owner(type(pipe)) or type(pipe)
    return unsupported(f"{owner.__name__}.{SEAM} (module {owner.__module__}) called its text_encoder "
                       f"{calls} times for one prompt batch (expected once)")
