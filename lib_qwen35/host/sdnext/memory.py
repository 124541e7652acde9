"""SD.Next's devices and offload modes: where the 4B encoder computes, and making room for it.

SD.Next runs every component, its text encoder included, on `modules.devices.device` (the GPU; the CPU
on a CPU-only install) in `modules.devices.dtype` (its "Precision" setting: bf16/fp16 on a GPU, fp32 on the
CPU or with --no-half). "auto" therefore means SD.Next's device and dtype.

Making room depends on `opts.diffusers_offload_mode`:
    balanced    every pipeline component on the GPU is handed to SD.Next's own balanced offload
                (`sd_offload.apply_balanced_offload_to_module`, which honours "never offload" and the
                low watermark) before our weights move in; SD.Next moves them back on their next use
    model / sequential / group
                accelerate's hooks keep components off the GPU between uses: nothing to move
    none        SD.Next keeps everything on the GPU and expects it there: nothing is moved (if the 4B
                weights do not fit, the out-of-memory message says to use "cpu" or an offload mode)
Afterwards `devices.torch_gc` gives the memory back, as SD.Next does after its own moves.
"""

from __future__ import annotations

import torch

from lib_qwen35.model.devices import gpu_or_cpu

from .. import a1111, messages


def devices():
    return a1111.optional("modules.devices")


def compute_device(choice: str) -> torch.device:
    if choice == "cpu":
        return torch.device("cpu")
    device = getattr(devices(), "device", None)
    if device is None:   # before SD.Next picked one (or outside SD.Next)
        return gpu_or_cpu()
    return torch.device(device)


def default_dtype(device: torch.device) -> torch.dtype | None:
    """SD.Next's own precision on its GPU; on the CPU, placement's default (fp32, as SD.Next computes there)."""
    if torch.device(device).type == "cpu":
        return None
    dtype = getattr(devices(), "dtype", None)
    return dtype if isinstance(dtype, torch.dtype) else None


def offload_mode() -> str:
    try:
        return str(getattr(a1111.opts(), "diffusers_offload_mode", "none") or "none")
    except Exception:  # noqa: BLE001 - no readable setting: no offload
        return "none"


def make_room(device: torch.device, nbytes: int) -> None:
    if torch.device(device).type == "cpu":
        return
    if offload_mode() == "balanced":
        _offload_balanced()
    empty_cache()


def _offload_balanced() -> None:
    offload = a1111.optional("modules.sd_offload")
    apply = getattr(offload, "apply_balanced_offload_to_module", None)
    if apply is None or getattr(offload, "offload_hook_instance", None) is None:
        return
    pipe = a1111.sd_model()
    components = getattr(pipe, "components", None)
    for module in (components.values() if isinstance(components, dict) else ()):
        if isinstance(module, torch.nn.Module) and _on_gpu(module):
            try:
                apply(module, op="qwen35")
            except Exception as error:  # noqa: BLE001 - best effort: SD.Next's own moves must never break a generation
                messages.console(f"SD.Next balanced offload of {type(module).__name__} failed: {error}")


def _on_gpu(module) -> bool:
    try:
        first = next(module.parameters(), None)
    except Exception:  # noqa: BLE001 - an odd component: leave it to SD.Next
        return False
    return first is not None and first.device.type != "cpu"


def empty_cache() -> None:
    gc = getattr(devices(), "torch_gc", None)
    if callable(gc):
        try:
            gc(force=True, reason="qwen35")
            return
        except TypeError:   # an SD.Next whose torch_gc takes no reason
            gc(force=True)
            return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
