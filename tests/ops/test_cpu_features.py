"""The CPU's native bf16, read from torch's capability flags (never from the vendor's name)."""

import pytest
import torch

from lib_qwen35.ops import cpu_features


@pytest.fixture
def amx_granted(monkeypatch):
    monkeypatch.setattr(cpu_features, "_amx_granted", lambda: True)


@pytest.mark.parametrize("caps, label", [
    ({"cpu_name": "Intel Xeon", "avx512_f": True, "avx512_bf16": True, "amx_tile": True, "amx_bf16": True}, "AMX"),
    ({"cpu_name": "AMD EPYC", "avx512_f": True, "avx512_bf16": True}, "AVX512-BF16"),        # Zen 4
    ({"cpu_name": "Intel Xeon", "avx512_f": True}, None),           # Skylake-SP: oneDNN emulates bf16 there
    ({"cpu_name": "AMD EPYC", "avx2": True}, None),                  # this development VM (Zen 3)
    ({"architecture": "arm64", "bf16": True}, "ARM BF16"),
    ({"architecture": "x86_64", "bf16": True}, None),
    ({}, None),
])
def test_native_bf16_from_the_flags(caps, label, amx_granted):
    assert cpu_features.native_bf16(caps) == label


def test_amx_that_linux_does_not_grant_is_not_amx(monkeypatch):
    monkeypatch.setattr(cpu_features, "_amx_granted", lambda: False)
    assert cpu_features.native_bf16({"amx_bf16": True, "avx512_bf16": True}) == "AVX512-BF16"


def test_isa_and_the_description_line():
    assert cpu_features.isa({"avx2": True}) == "AVX2"
    assert cpu_features.isa({"avx2": True, "avx512_f": True}) == "AVX-512"
    line = cpu_features.describe({"cpu_name": "AMD EPYC", "avx2": True})
    assert line.startswith("AMD EPYC (AVX2): avx2 yes, avx512_f no") and line.endswith("native bf16: none")


def test_this_machine_answers_without_raising():
    caps = cpu_features.capabilities()
    assert isinstance(caps, dict)
    assert cpu_features.native_bf16(caps) in (None, "AMX", "AVX512-BF16", "ARM BF16")


def test_older_torch_without_get_capabilities_uses_the_is_supported_functions(monkeypatch):
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    for name, value in (("_is_avx2_supported", True), ("_is_avx512_supported", True),
                        ("_is_avx512_bf16_supported", True), ("_is_amx_tile_supported", False)):
        monkeypatch.setattr(torch.cpu, name, lambda value=value: value, raising=False)
    caps = cpu_features.capabilities()
    assert caps == {"avx2": True, "avx512_f": True, "avx512_bf16": True, "amx_tile": False}
    assert cpu_features.native_bf16(caps) == "AVX512-BF16"
