"""Stand-in for backend/memory_management.py: devices, dtype, free_memory / soft_empty_cache (recorded),
is_oom, cpu_mode. Tests change `te_device` / `cpu_state_cpu` to simulate other machines."""

import torch

te_device = torch.device("cpu")
cpu_state_cpu = True
fake_gpu = False  # tests: pretend a CUDA device exists (nothing is really moved by the scripted encoder)
calls = []  # ("free_memory", bytes, device) / ("soft_empty_cache",) / ("load_model_gpu", model)


def get_torch_device():
    if fake_gpu or (torch.cuda.is_available() and not cpu_state_cpu):
        return torch.device("cuda")
    return torch.device("cpu")


def text_encoder_device():
    return te_device


def text_encoder_offload_device():
    return torch.device("cpu")


def text_encoder_dtype(device=None):
    return torch.float16


def cpu_mode():
    return cpu_state_cpu


def free_memory(memory_required, device, keep_loaded=()):
    calls.append(("free_memory", memory_required, device))
    return []


def soft_empty_cache(force=False):
    calls.append(("soft_empty_cache",))


def load_model_gpu(model):
    calls.append(("load_model_gpu", model))


def is_oom(e):
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


def intermediate_device():
    return torch.device("cpu")
