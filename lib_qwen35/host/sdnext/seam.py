"""Our patch of the Anima pipeline's `_encode_prompt` (detection.py: the seam and how it is found).

The patch sits on the class that defines it (a pipeline switch for img2img or hires builds a new pipeline
object of a subclass; the class is shared) and routes through active_state: with nothing armed it calls the
original function, so the extension off is stock, bit for bit. Armed, it encodes the prompts with Qwen3.5,
then runs SD.Next's own method with the text encoder's `last_hidden_state` replaced by ours (a forward hook
on `self.text_encoder`, present only during that call; a pre-hook cuts the stock encoder's input to one
token per prompt, so the discarded 0.6B forward costs nothing). The T5 ids, the adapter and the padding
stay SD.Next's. All-empty prompts stay stock zeros, as stock never runs an encoder for them.

Checked at every call, so a changed SD.Next stops with a message instead of serving stock conditioning:
the text encoder must be called exactly once per `_encode_prompt`, and (stop.py) the pipeline's
`__call__` must have run our `_encode_prompt` while armed.
"""

from __future__ import annotations

import contextlib
import inspect

import torch

from .. import active_state
from . import stop
from .detection import SEAM, Located, seam_changed, seam_owner

_MARK = "_qwen35_te_seam"
_patched: dict = {}   # class -> the function its class dict had before ours


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
        wrapped = active_state.failed(encode, error)
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
