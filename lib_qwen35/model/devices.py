"""Where the encoders compute and in which dtype: the rules that the library, the command line and the WebUI host
layer share.

    device  "auto" -> a CUDA GPU when torch sees one, else the CPU; anything else is checked, with the fix
    dtype   "auto" (or None) -> default_dtype(device); otherwise fp32, bf16 or fp16 (names or torch dtypes)

On the CPU the dtype is the matmuls' only (activation_dtype): activations, norms, the convolution, the delta rule
and attention stay fp32, because a CPU's bf16 units (AMX, AVX512-BF16) speed up matmuls and nothing else, and
elsewhere bf16 arithmetic is emulated: slower than fp32 as well as less exact. "auto" on the CPU (cpu_choice) is
bf16 where the CPU multiplies bf16 natively (ops/cpu_features.py) AND a one-time measurement finds it faster than
fp32; fp32 elsewhere, at no cost (nothing is measured where the flags say no). QWEN35_CPU_BF16=auto|on|off
overrides "auto" (users, tests); an explicit fp32 or bf16 is always kept.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import threading
import time

import torch

from ..errors import InvalidArgumentError, Qwen35Error
from ..ops import cpu_features, cpu_linear, fp8_recode

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
    """The compute dtype 'auto' gives on `device`: on the CPU cpu_choice()'s (bf16 matmuls where they are native and
    measured faster, else fp32); bf16 on a CUDA GPU that supports it, else fp16; fp16 on any other accelerator."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return cpu_choice().dtype
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


def activation_dtype(device, dtype: torch.dtype) -> torch.dtype:
    """The dtype everything but the matmuls computes in: fp32 on the CPU (see the top), `dtype` elsewhere."""
    return torch.float32 if torch.device(device).type == "cpu" else dtype


def numerics_tag(device, dtype: torch.dtype) -> str:
    """'' where everything computes in `dtype`; else a name for the mixed arithmetic (bf16 matmuls in an fp32 model),
    which differs from both all-fp32 and all-bf16: caches of results (the fit's chunks) must tell them apart."""
    act = activation_dtype(device, dtype)
    return "" if act == dtype else f"{dtype_name(dtype)}-matmuls-{dtype_name(act)}-rest-v1"


# -- "auto" on the CPU -------------------------------------------------------------------------------------------

CPU_BF16_ENV = "QWEN35_CPU_BF16"
CPU_BF16_SETTINGS = ("auto", "on", "off")
MIN_SPEEDUP = 1.25        # bf16 only when clearly faster: t_bf16 <= 0.8 t_fp32 (a tie is not worth the precision)


@dataclasses.dataclass(frozen=True)
class CpuChoice:
    dtype: torch.dtype         # what "auto" gives on the CPU
    why: str                   # for the status line: "AMX, 3.2x fp32's speed", "no native bf16: AVX2", ...
    native: str | None = None  # the CPU's native bf16 instructions (ops/cpu_features.native_bf16)
    speedup: float | None = None   # t_fp32 / t_bf16 measured at load, where measured


def measure_bf16_speedup(repeats: int = 3) -> float:
    """t_fp32 / t_bf16 of the model's own CPU linear (FP8 weights in the CPU's own code, decoded in blocks:
    ops/cpu_linear.py, ops/fp8_recode.py) on one 9216 x 2560 weight (an MLP matrix's shape) at 77 tokens: a
    fraction of a second where bf16 is native. One warm-up each (oneDNN builds its kernels on the first call), then
    the two alternate (fair under load); medians."""
    g = torch.Generator().manual_seed(0)
    w = torch.randint(0, 256, (9216, 2560), dtype=torch.uint8, generator=g)
    w = (w & 0x80) | (w & 0x7F) % (fp8_recode.MAX_MAGNITUDE_CODE + 1)             # the codes the CPU's code takes
    w = fp8_recode.recode_(w.view(torch.float8_e4m3fn))                            # as the encoder holds them
    x = torch.randn(77, 2560, generator=g)
    times = {torch.float32: [], torch.bfloat16: []}
    with torch.inference_mode():
        for run in range(repeats + 1):
            for dtype, spent in times.items():
                t0 = time.perf_counter()
                cpu_linear.linear(x, w, gemm_dtype=dtype)
                if run:
                    spent.append(time.perf_counter() - t0)
    return statistics.median(times[torch.float32]) / statistics.median(times[torch.bfloat16])


def decide_cpu_dtype(setting: str = "auto", caps: dict | None = None, measure=measure_bf16_speedup) -> CpuChoice:
    """What "auto" means on this CPU. `setting` is QWEN35_CPU_BF16's value; `caps` and `measure` (-> t_fp32 / t_bf16)
    are this machine's unless given (tests). `measure` runs only where the CPU has native bf16 and setting is auto."""
    caps = cpu_features.capabilities() if caps is None else caps
    native, isa = cpu_features.native_bf16(caps), cpu_features.isa(caps)
    setting = (setting or "auto").strip().lower()
    if setting == "off":
        return CpuChoice(torch.float32, f"{CPU_BF16_ENV}=off", native)
    if setting == "on":
        where = native or f"no native bf16: {isa}, emulated, slower than fp32"
        return CpuChoice(torch.bfloat16, f"{CPU_BF16_ENV}=on; {where}", native)
    note = "" if setting == "auto" else f"; {CPU_BF16_ENV}={setting!r} is not one of {', '.join(CPU_BF16_SETTINGS)}"
    if native is None:
        return CpuChoice(torch.float32, f"no native bf16: {isa}{note}")
    try:
        speedup = float(measure())
    except Exception as e:   # noqa: BLE001 - a bf16 matmul that fails here is a reason to stay in fp32
        return CpuChoice(torch.float32, f"{native} bf16 failed: {type(e).__name__}{note}", native)
    if speedup >= MIN_SPEEDUP:
        return CpuChoice(torch.bfloat16, f"{native}, {speedup:.1f}x fp32's speed{note}", native, speedup)
    return CpuChoice(torch.float32, f"{native} bf16 measured {speedup:.2f}x fp32's speed{note}", native, speedup)


_cpu_choice: dict = {}
_cpu_choice_lock = threading.Lock()


def cpu_choice() -> CpuChoice:
    """decide_cpu_dtype for this process, decided once (the first load on the CPU pays the measurement, if any)."""
    if "choice" not in _cpu_choice:
        with _cpu_choice_lock:
            if "choice" not in _cpu_choice:
                _cpu_choice["choice"] = decide_cpu_dtype(os.environ.get(CPU_BF16_ENV, "auto"))
    return _cpu_choice["choice"]


def describe(device, dtype: torch.dtype) -> str:
    """Device and dtype for status lines, on the CPU with the reason: 'cpu bf16 (AMX, 3.2x fp32's speed)',
    'cpu fp32 (no native bf16: AVX2)', 'cpu fp32 (as set; auto: bf16, AMX ...)'."""
    dev = torch.device(device)
    text = f"{dev} {dtype_name(dtype)}"
    if dev.type != "cpu":
        return text
    choice = cpu_choice()
    if dtype == choice.dtype:
        return f"{text} ({choice.why})"
    if dtype == torch.float32:
        return f"{text} (as set; auto would pick bf16: {choice.why})"
    speed = choice.native or f"no native bf16 ({cpu_features.isa()}): slower than fp32 here"
    return f"{text} (matmuls only, as set; {speed})"
