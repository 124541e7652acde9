"""What this CPU multiplies natively, as torch reports it: the static half of the choice of a CPU compute dtype
(model/devices.py confirms it with a one-time measurement before choosing bf16).

    capabilities()    torch.cpu.get_capabilities() (cpuinfo: Linux, Windows, macOS) where this torch has it, else
                      the same keys from the older torch.cpu._is_*_supported, else {}
    native_bf16(c)    'AMX' | 'AVX512-BF16' | 'ARM BF16' | None: the bf16 multiply instructions the CPU has
    isa(c)            the widest vector instruction set, for the status line ('AVX2', 'AVX-512', ...)

Deliberately not used: the vendor's name; torch.backends.cpu.get_cpu_capability() (ATen's dispatch level, which says
nothing about bf16: a Zen 4 reports AVX512 with or without it); torch.ops.mkldnn._is_mkldnn_bf16_supported()
(true on AVX-512 CPUs that only emulate bf16, slower than fp32 there). A flag can also be advertised and unusable
(an old Linux kernel that does not grant AMX, a VM hiding its state), which is why a flag alone never picks bf16.
"""

from __future__ import annotations

import torch

# the keys older torch can answer, each with the function that answers it
_OLD_API = {"avx2": "_is_avx2_supported", "avx512_f": "_is_avx512_supported",
            "avx512_bf16": "_is_avx512_bf16_supported", "amx_tile": "_is_amx_tile_supported"}


def capabilities() -> dict:
    """The CPU's feature flags as torch sees them ({} where this torch cannot say)."""
    get = getattr(torch.cpu, "get_capabilities", None)
    if callable(get):
        try:
            return dict(get())
        except Exception:     # noqa: BLE001 - an unreadable CPU is one without known features
            return {}
    caps = {key: _ask(name) for key, name in _OLD_API.items()}
    caps = {key: value for key, value in caps.items() if value is not None}
    if caps.get("amx_tile") and caps.get("avx512_bf16"):   # old torch has no amx_bf16 key: AMX CPUs have both
        caps["amx_bf16"] = True
    return caps


def _ask(name: str) -> bool | None:
    """torch.cpu.<name>() as a bool, or None where this torch lacks it or it fails."""
    probe = getattr(torch.cpu, name, None)
    try:
        return bool(probe()) if callable(probe) else None
    except Exception:     # noqa: BLE001 - a failing probe is an unknown answer
        return None


def _amx_granted() -> bool:
    """Linux grants AMX's tile state per process on request (torch.cpu._init_amx asks); elsewhere, and in torch
    without the call, assume yes: the measurement that follows finds out."""
    init = getattr(torch.cpu, "_init_amx", None)
    try:
        return bool(init()) if callable(init) else True
    except Exception:     # noqa: BLE001 - a refused request means no AMX for this process
        return False


def native_bf16(caps: dict | None = None) -> str | None:
    """The CPU's native bf16 matmul instructions, or None where bf16 arithmetic would be emulated."""
    caps = capabilities() if caps is None else caps
    if caps.get("amx_bf16") and _amx_granted():
        return "AMX"
    if caps.get("avx512_bf16"):
        return "AVX512-BF16"
    if caps.get("bf16") and str(caps.get("architecture", "")).lower() in ("arm64", "aarch64"):
        return "ARM BF16"
    return None


def isa(caps: dict | None = None) -> str:
    """The widest vector instruction set among those torch reports."""
    caps = capabilities() if caps is None else caps
    for key, name in (("avx512_f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sve", "SVE"), ("neon", "NEON")):
        if caps.get(key):
            return name
    try:
        return torch.backends.cpu.get_cpu_capability()
    except Exception:     # noqa: BLE001 - a torch that cannot say leaves the CPU unnamed, nothing more
        return "unknown"


def describe(caps: dict | None = None) -> str:
    """One line for benchmarks and bug reports: the CPU's name and its bf16-relevant flags."""
    caps = capabilities() if caps is None else caps
    flags = ", ".join(f"{k} {'yes' if caps.get(k) else 'no'}" for k in ("avx2", "avx512_f", "avx512_bf16", "amx_tile",
                                                                         "amx_bf16"))
    return f"{caps.get('cpu_name') or 'unknown CPU'} ({isa(caps)}): {flags}; native bf16: {native_bf16(caps) or 'none'}"
