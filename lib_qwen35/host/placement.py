"""Where the 4B encoder computes, in which dtype, and moving its weights there and back.

Weights live in RAM between generations (loaded once into memory the process owns; the library never memory-maps
them). To encode, they move to the compute device; before that, the running WebUI is asked to make room
(WebUIHost.make_room: Forge Neo's memory manager, SD.Next's offload), and afterwards they go back to RAM and the
WebUI's memory is given back (WebUIHost.empty_cache), unless "keep resident" is set. An out-of-memory error
anywhere in that sequence puts the weights back in RAM and raises an error that says what to change. Which device
"auto" means, and the dtype "auto" gives, are the WebUI's own (WebUIHost.compute_device / default_dtype).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import torch

from lib_qwen35.model import devices

from . import messages, selection
from .file_locator import SHARD_INDEX

ACTIVATION_MARGIN_BYTES = 768 << 20  # activations of a long prompt, on top of the weights


@dataclasses.dataclass(frozen=True)
class Placement:
    device: torch.device  # where the encoder computes
    dtype: torch.dtype  # its compute dtype
    keep_resident: bool

    def describe(self) -> str:
        """'cuda:0 bf16'; on the CPU with the reason for its dtype: 'cpu fp32 (no native bf16: AVX2)'."""
        return devices.describe(self.device, self.dtype)


def resolve(settings) -> Placement:
    device = _resolve_device(settings.device)
    return Placement(device=device, dtype=_resolve_dtype(settings.dtype, device),
                     keep_resident=bool(settings.keep_resident))


def _resolve_device(choice: str) -> torch.device:
    return torch.device(selection.current().compute_device(choice))


def _resolve_dtype(choice: str, device: torch.device) -> torch.dtype:
    """A setting's fp32 / bf16 / fp16 as chosen; "auto" is the WebUI's own precision where it has one for this
    device, else the library's default (devices.default_dtype)."""
    if choice in devices.NAMES.values():
        return devices.DTYPES[choice]
    webui_dtype = selection.current().default_dtype(device)
    return webui_dtype if webui_dtype in devices.NAMES else devices.default_dtype(device)


def required_bytes(weights_path: str) -> int:
    """Weights as stored (FP8 stays FP8 on the device) plus room for activations."""
    try:
        if weights_path.endswith(SHARD_INDEX):
            folder = os.path.dirname(weights_path)
            size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)
                       if f.endswith(".safetensors"))
        else:
            size = os.path.getsize(weights_path)
    except OSError:
        size = 0
    return int(size * 1.05) + ACTIVATION_MARGIN_BYTES


def is_oom(error: BaseException) -> bool:
    """This error, or one it was raised from (the library re-raises OOM with its own text)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if _is_oom_one(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _is_oom_one(error: BaseException) -> bool:
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                                  getattr(torch.cuda, "OutOfMemoryError", None)) if t)
    if oom_types and isinstance(error, oom_types):
        return True
    text = str(error).lower()
    return "out of memory" in text or "out of gpu memory" in text


def empty_cache() -> None:
    selection.current().empty_cache()


@contextlib.contextmanager
def on_compute_device(encoder, placement: Placement, weights_path: str):
    """Have `encoder` on placement.device for the body; put it back in RAM afterwards unless resident."""
    moved = False
    try:
        if hasattr(encoder, "set_cuda_graphs"):   # graphs are recaptured after every move: only when resident
            encoder.set_cuda_graphs(placement.keep_resident)
        moved = to_device(encoder, placement.device, weights_path)
        yield encoder
    except BaseException as error:
        if is_oom(error):
            _back_to_ram(encoder)
            raise messages.out_of_memory(weights_path, placement) from error
        raise
    finally:
        if moved and not placement.keep_resident and _device_of(encoder).type != "cpu":
            _back_to_ram(encoder)


def to_device(encoder, device: torch.device, weights_path: str) -> bool:
    """Move `encoder` to `device`, the WebUI first offloading its own models as its mode allows to make room
    on a GPU; True when it moved."""
    if _device_of(encoder) == device:
        return False
    if device.type != "cpu":
        selection.current().make_room(device, required_bytes(weights_path))
    encoder.to(device)
    return True


def release(encoder) -> None:
    """Move a resident encoder back to RAM (keep-resident turned off, or another file selected)."""
    if encoder is not None and _device_of(encoder).type != "cpu":
        _back_to_ram(encoder)


def _back_to_ram(encoder) -> None:
    try:
        encoder.to(torch.device("cpu"))
    finally:
        empty_cache()


def _device_of(encoder) -> torch.device:
    return torch.device(getattr(encoder, "device", "cpu"))
