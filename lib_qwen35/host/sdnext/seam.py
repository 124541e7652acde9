"""Is the loaded SD.Next pipeline Anima, and our patch of its `_encode_prompt`.

SD.Next's `pipelines/anima/pipeline.py`, class `AnimaTextToImagePipeline` (img2img and inpaint subclass it,
built by `anima_image.build_anima_pipeline_classes`), method `_encode_prompt(prompt, device, dtype,
max_sequence_length=512)`, called by `encode_prompt` once for the prompts and once for the negatives:

    all prompts empty  -> zeros [B, 512, 1024] (neither the text encoder nor the adapter runs)
    self.tokenizer(prompt, padding=True, truncation=True, max_length=512)   Qwen3 ids [B, Lq], pad 151643
    self.text_encoder(input_ids, attention_mask).last_hidden_state          [B, Lq, 1024]  <- replaced
        .to(dtype)                                  dtype = text_encoder.dtype; device = _execution_device
    self.t5_tokenizer(prompt, ...)                  T5 ids [B, Lt]
    self.llm_adapter(source_hidden_states, target_input_ids)   [B, Lt, 1024], no attention mask
    zero-padded to [B, 512, 1024]

The patch sits on that class (a pipeline switch for img2img or hires builds a new pipeline object of a
subclass; the class is shared) and routes through active_state: with nothing armed it calls the original
function, so the extension off is stock, bit for bit. Armed, it encodes the prompts with Qwen3.5, then runs
SD.Next's own method with the text encoder's `last_hidden_state` replaced by ours (a forward hook on
`self.text_encoder`, present only during that call; a pre-hook cuts the stock encoder's input to one token
per prompt, so the discarded 0.6B forward costs nothing). The T5 ids, the adapter and the padding stay
SD.Next's. All-empty prompts stay stock zeros, as stock never runs an encoder for them.

Checked at every call, so a changed SD.Next stops with a message instead of serving stock conditioning:
the text encoder must be called exactly once per `_encode_prompt`, and (stop.py) the pipeline's
`__call__` must have run our `_encode_prompt` while armed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect

import torch

from .. import active_state, messages
from ..interface import Located as HostLocated
from . import conditioning_cache, stop
from .version import version

SEAM = "_encode_prompt"
SEAM_PARAMS = ["prompt", "device", "dtype", "max_sequence_length"]
COMPONENTS = ("text_encoder", "tokenizer", "t5_tokenizer", "llm_adapter")
SUPPORTED = (f"Supported: AnimaTextToImagePipeline.{SEAM}({', '.join(SEAM_PARAMS)}) calling text_encoder(...)"
             f".last_hidden_state once, with {', '.join(COMPONENTS)} on the pipeline (SD.Next's "
             f"pipelines/anima/pipeline.py, 2026)")
_MARK = "_qwen35_te_seam"
_patched: dict = {}   # class -> the function its class dict had before ours


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
    except Exception as error:   # an odd object must not break detection
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
        return Located("unsupported", model=described, pipeline=sd_model, found=f"its prompt cache moved: {cache_problem}")
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
    fn = getattr(fn, "__wrapped__", None) if getattr(fn, _MARK, False) else fn   # look through our own patch
    try:
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


# ---- the patch -------------------------------------------------------------------------------------


def install(located: Located) -> bool:
    """Patch `located.owner._encode_prompt` and guard its `__call__` (stop.py); idempotent."""
    owner = located.owner
    stop.guard(owner)
    original = vars(owner).get(SEAM)
    if getattr(original, _MARK, False):
        return False

    def encode_prompt_seam(pipe, *args, **kwargs):
        encode = active_state.current()
        if encode is None:
            return original(pipe, *args, **kwargs)
        return _replace(pipe, original, encode, args, kwargs)

    setattr(encode_prompt_seam, _MARK, True)
    encode_prompt_seam.__wrapped__ = original
    setattr(owner, SEAM, encode_prompt_seam)
    _patched[owner] = original
    return True


def is_installed(cls) -> bool:
    owner = seam_owner(cls)
    return owner is not None and getattr(vars(owner).get(SEAM), _MARK, False)


def restore_all() -> int:
    restored = 0
    for owner, original in list(_patched.items()):
        if getattr(vars(owner).get(SEAM), _MARK, False):
            setattr(owner, SEAM, original)
            restored += 1
        _patched.pop(owner, None)
    return restored


def _replace(pipe, original, encode, args, kwargs):
    try:
        bound = inspect.signature(original).bind(pipe, *args, **kwargs)
        bound.apply_defaults()
    except TypeError:   # not a call SD.Next makes: let the stock method report it
        return original(pipe, *args, **kwargs)
    prompt = bound.arguments.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else list(prompt) if isinstance(prompt, (list, tuple)) else None
    stop.seam_ran()
    if not prompts or not all(isinstance(p, str) for p in prompts) or all(p.strip() == "" for p in prompts):
        return original(pipe, *args, **kwargs)   # stock: zeros for empty prompts (no encoder runs), or its own error
    try:
        max_tokens = bound.arguments.get("max_sequence_length")
        rows = encode(prompts, pad_to_longest=True, max_tokens=max_tokens if isinstance(max_tokens, int) else None)
        states = torch.stack(rows)   # [B, L, 1024] float32 CPU: every row padded to the batch's longest
        with _text_encoder_returns(pipe.text_encoder, states) as calls:
            result = original(pipe, *args, **kwargs)
        if len(calls) != 1:
            raise seam_changed(pipe, len(calls))
        return result
    except BaseException as error:
        active_state.disarm()   # never leave the replacement on after a failure
        report = getattr(encode, "report", None)
        wrapped = report(error) if report is not None and isinstance(error, Exception) else error
        if isinstance(wrapped, Exception):
            stop.record_failure(wrapped)   # SD.Next's encode hijack swallows it; stop raises it from __call__
        if wrapped is error:
            raise
        raise wrapped from error


@contextlib.contextmanager
def _text_encoder_returns(module, states: torch.Tensor):
    """While the stock method runs: `module` computes one token per prompt (its result is discarded) and
    returns `states` [B, L, 1024] as its last_hidden_state, on the device and in the dtype it would have.
    Yields the list of calls seen."""
    calls: list = []

    def cut_input(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if not (torch.is_tensor(ids) and ids.dim() == 2 and ids.shape[1] > 1):
            return None
        kwargs = dict(kwargs)
        if "input_ids" in kwargs:
            kwargs["input_ids"] = ids[:, :1]
        else:
            args = (ids[:, :1],) + tuple(args[1:])
        mask = kwargs.get("attention_mask")
        if torch.is_tensor(mask) and mask.dim() == 2:
            kwargs["attention_mask"] = torch.ones_like(mask[:, :1])
        return args, kwargs

    def return_ours(_module, _args, _kwargs, output):
        calls.append(1)
        return _with_last_hidden_state(output, states)

    handles = [module.register_forward_pre_hook(cut_input, with_kwargs=True),
               module.register_forward_hook(return_ours, with_kwargs=True)]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def _with_last_hidden_state(output, states: torch.Tensor):
    reference = getattr(output, "last_hidden_state", None)
    if reference is None and isinstance(output, (tuple, list)) and output and torch.is_tensor(output[0]):
        reference = output[0]
    if not torch.is_tensor(reference):
        raise TypeError(f"the text encoder returned {type(output).__name__} without a last_hidden_state")
    ours = states.to(device=reference.device, dtype=reference.dtype)
    if hasattr(output, "last_hidden_state"):
        output.last_hidden_state = ours   # a transformers ModelOutput: updates its mapping too
        return output
    return type(output)([ours, *output[1:]]) if isinstance(output, list) else (ours, *output[1:])
