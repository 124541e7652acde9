"""Stand-in for SD.Next's modules/devices.py: the compute device and dtype (set by set_dtype at start-up:
fp32 on the CPU), torch_gc(force, fast, reason)."""

import torch

cpu = torch.device("cpu")
device = torch.device("cpu")
dtype = torch.float32
dtype_vae = torch.float32
inference_context = torch.no_grad
gc_calls = []


def torch_gc(force: bool = False, fast: bool = False, reason: str | None = None):
    gc_calls.append((force, reason))
    return 0, 0
