"""Forge Neo's memory manager (backend.memory_management): devices, making room, giving memory back.

Forge decides where its own text encoder runs (`text_encoder_device()`: the CPU under --cpu, --cpu-text-enc
or low VRAM) and offloads its models on request (`free_memory(nbytes, device)` unloads only as much as
needed). We ask the same functions, so the 4B encoder lands where Forge would put a text encoder and
Forge makes room for it like for its own models. A Forge without the module falls back to plain torch.
"""

from __future__ import annotations

import torch

from lib_qwen35.model.devices import gpu_or_cpu

from .. import a1111


def memory_management():
    """backend.memory_management, or None where Forge has none (plain torch is used then)."""
    return a1111.optional("backend.memory_management")


def cpu_only() -> bool:
    """True under --cpu (or when Forge's memory manager says it runs on the CPU)."""
    cmd = a1111.cmd_opts()
    if getattr(cmd, "cpu", False) or getattr(cmd, "use_cpu", None):
        return True
    mm = memory_management()
    if mm is not None and hasattr(mm, "cpu_mode"):
        try:
            return bool(mm.cpu_mode())
        except Exception:  # noqa: BLE001 - a memory manager that cannot say is not in CPU mode
            return False
    return False


def compute_device(choice: str) -> torch.device:
    if choice == "cpu" or cpu_only():
        return torch.device("cpu")
    mm = memory_management()
    if choice == "gpu":
        if mm is not None and hasattr(mm, "get_torch_device"):
            return torch.device(mm.get_torch_device())
        return gpu_or_cpu()
    # auto: Forge's own text-encoder device (cpu under --cpu / --cpu-text-enc / low VRAM)
    return text_encoder_device(default=gpu_or_cpu())


def text_encoder_device(default: torch.device | None = None) -> torch.device:
    mm = memory_management()
    if mm is not None and hasattr(mm, "text_encoder_device"):
        return torch.device(mm.text_encoder_device())
    return default if default is not None else torch.device("cpu")


def intermediate_device() -> torch.device:
    mm = memory_management()
    if mm is not None and hasattr(mm, "intermediate_device"):
        return torch.device(mm.intermediate_device())
    return torch.device("cpu")


def text_encoder_dtype(default: torch.dtype = torch.float32) -> torch.dtype:
    mm = memory_management()
    return mm.text_encoder_dtype() if mm is not None and hasattr(mm, "text_encoder_dtype") else default


def make_room(device: torch.device, nbytes: int) -> None:
    mm = memory_management()
    if mm is not None and hasattr(mm, "free_memory"):
        mm.free_memory(nbytes, device)  # Forge offloads its own models only as far as needed


def empty_cache() -> None:
    mm = memory_management()
    if mm is not None and hasattr(mm, "soft_empty_cache"):
        mm.soft_empty_cache()
    elif torch.cuda.is_available():
        torch.cuda.empty_cache()


def load_model_gpu(patcher) -> None:
    """What Forge's Anima.get_learned_conditioning does first: have the TE on its device."""
    mm = memory_management()
    if patcher is not None and mm is not None and hasattr(mm, "load_model_gpu"):
        mm.load_model_gpu(patcher)
