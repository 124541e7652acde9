"""Forge Neo and SD.Next alike (shared host code): on the CPU the setting "auto" takes the library's choice
(model/devices.py: bf16 matmuls where native and faster, else fp32), and the status line names the dtype and why."""

import pytest
import torch

from stubs.forge_neo.harness import forge_world, place_weights
from stubs.sdnext.harness import sdnext_world

from lib_qwen35.model import devices

AMX = devices.CpuChoice(torch.bfloat16, "AMX, 4.0x fp32's speed", "AMX", 4.0)
AVX2 = devices.CpuChoice(torch.float32, "no native bf16: AVX2")


@pytest.fixture(params=["forge_neo", "sdnext"])
def world(request, tmp_path):
    with (forge_world(tmp_path) if request.param == "forge_neo" else sdnext_world(tmp_path)) as w:
        place_weights(w)
        yield w


@pytest.mark.parametrize("choice, dtype, line", [(AMX, torch.bfloat16, "cpu bf16 (AMX, 4.0x fp32's speed)"),
                                                 (AVX2, torch.float32, "cpu fp32 (no native bf16: AVX2)")])
def test_auto_on_the_cpu_is_the_librarys_choice_and_the_status_says_why(world, monkeypatch, choice, dtype, line):
    from lib_qwen35.host import ext_settings, placement, status

    monkeypatch.setattr(devices, "_cpu_choice", {"choice": choice})
    auto = placement.resolve(ext_settings.ExtensionSettings(device="cpu"))
    assert auto.dtype == dtype and auto.describe() == line
    exact = placement.resolve(ext_settings.ExtensionSettings(device="cpu", dtype="fp32"))
    assert exact.dtype == torch.float32                       # fp32 as set stays fp32
    world.txt2img("1girl, smile", "lowres", enabled=True)
    assert f"on {line} (" in status.line()                     # the generation ran with it and says so
