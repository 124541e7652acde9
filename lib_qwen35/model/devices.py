"""Where the encoders compute and in which dtype: the rules that the library, the command line and the WebUI host
layer share.

    device  "auto" -> a CUDA GPU when torch sees one, else the CPU; anything else is checked, with the fix
    dtype   "auto" (or None) -> default_dtype(device); otherwise fp32, bf16 or fp16 (names or torch dtypes)
"""

from __future__ import annotations

import torch

from ..errors import InvalidArgumentError, Qwen35Error

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}
NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}   # as settings and status lines say


def dtype_name(dtype) -> str:
    """fp32 / bf16 / fp16 for the compute dtypes; any other dtype without its 'torch.'."""
    return NAMES.get(dtype, str(dtype).replace("torch.", ""))


def gpu_or_cpu() -> torch.device:
    """A CUDA GPU when torch sees one, else the CPU: the device to use where nobody names one."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def auto_device(device) -> str:
    """The command lines' --device: 'auto' (or None) -> gpu_or_cpu(); any other choice as given (check_device
    judges it)."""
    if device not in (None, "auto"):
        return device
    return str(gpu_or_cpu())


def check_device(device) -> torch.device:
    """A usable torch device, or a Qwen35Error that says what to use instead."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise Qwen35Error(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise Qwen35Error(f"device {device!r} asked for, but CUDA is not available here (torch "
                          f"{torch.__version__}); use --device cpu / device='cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise Qwen35Error(f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s)")
    return dev


def default_dtype(device) -> torch.dtype:
    """The compute dtype 'auto' gives on `device`: fp32 on the CPU (exact, and what a CPU without bf16 units runs
    fastest); bf16 on a CUDA GPU that supports it, else fp16; fp16 on any other accelerator."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return torch.float32
    if dev.type == "cuda":
        try:
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        except Exception:    # noqa: BLE001 - a driver that cannot say: the dtype every CUDA GPU runs
            return torch.float16
    return torch.float16


def resolve_dtype(dtype, device) -> torch.dtype:
    """None/'auto' -> default_dtype(device). Compute dtypes are float32, bfloat16 and float16 (as torch dtypes or
    names); anything else is an InvalidArgumentError."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise InvalidArgumentError(f"compute dtype {dtype} is not supported; use torch.float32, "
                                       f"torch.bfloat16 or torch.float16 (or 'auto', 'fp32', 'bf16', 'fp16')")
        return dtype
    if dtype is None or (isinstance(dtype, str) and dtype.lower() == "auto"):
        return default_dtype(device)
    if not isinstance(dtype, str) or dtype.lower() not in DTYPES:
        raise InvalidArgumentError(f"unknown dtype {dtype!r}; use auto, fp32, bf16 or fp16")
    return DTYPES[dtype.lower()]
