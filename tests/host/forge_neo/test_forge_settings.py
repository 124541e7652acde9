"""Forge Neo specifics of settings and placement: the device and dtype from Forge's memory manager and the
settings, the weights moved to the GPU to encode and back (Forge making room), the accordion (Forge's
InputAccordion), install.py. (The settings section and file discovery: tests/host/shared/.)"""

import os
import runpy

import pytest
import torch

from stubs.forge_neo.fakes import ScriptedEncoder
from stubs.forge_neo.harness import REPO_ROOT, forge_world, place_weights


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        yield w


def test_placement_follows_forge_and_the_settings(world):
    from backend import memory_management as mm

    from lib_qwen35.host import ext_settings, placement

    auto = placement.resolve(ext_settings.DEFAULTS)
    assert auto.device == torch.device("cpu") and auto.dtype == torch.float32  # --cpu machine
    mm.fake_gpu, mm.cpu_state_cpu, mm.te_device = True, False, torch.device("cuda")
    assert placement.resolve(ext_settings.DEFAULTS).device == torch.device("cuda")
    assert placement.resolve(ext_settings.ExtensionSettings(device="cpu")).device == torch.device("cpu")
    gpu = placement.resolve(ext_settings.ExtensionSettings(device="gpu", dtype="bf16"))
    assert (gpu.device, gpu.dtype) == (torch.device("cuda"), torch.bfloat16)
    from modules import shared

    shared.cmd_opts.cpu = True  # --cpu wins over a "gpu" setting
    assert placement.resolve(ext_settings.ExtensionSettings(device="gpu")).device == torch.device("cpu")


def test_weights_go_to_the_gpu_to_encode_and_back_unless_resident(world):
    from backend import memory_management as mm
    from modules import shared

    place_weights(world)
    mm.fake_gpu, mm.cpu_state_cpu = True, False
    shared.opts.qwen35_te_device = "gpu"  # Forge's TE stays on the CPU here; our encoder computes on "cuda"
    scripted = ScriptedEncoder()
    loads = []
    world.controller.holder._load_encoder = lambda path, dtype, on_cpu: loads.append((dtype, on_cpu)) or scripted
    world.txt2img("1girl", "lowres", enabled=True)
    assert loads == [(torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float16, False)]
    assert scripted.moves == ["cuda", "cpu", "cuda", "cpu"]  # negative and prompt: moved in, released
    assert [c[0] for c in mm.calls].count("free_memory") == 2  # Forge asked to make room each time
    shared.opts.qwen35_te_keep_resident = True
    scripted.moves.clear()
    world.txt2img("2girls", "lowres", enabled=True)
    assert scripted.moves == ["cuda"] and scripted.device == torch.device("cuda")
    shared.opts.qwen35_te_keep_resident = False
    world.txt2img("3girls", "lowres", enabled=True)  # turning it off releases the resident weights
    assert scripted.moves[:2] == ["cuda", "cpu"] and scripted.device == torch.device("cpu")


def test_accordion_ui(world):
    from lib_qwen35.host.params import ARG_NAMES

    script = world.script
    controls = script.controls
    assert len(controls) == len(ARG_NAMES)
    accordion = controls[0]
    assert accordion.accordion.label == "Qwen3.5-4B text encoder (Anima)" and accordion.value is False
    strength = controls[ARG_NAMES.index("alignment_strength")]
    assert (strength.minimum, strength.maximum, strength.step, strength.value) == (0.0, 1.0, 0.05, 1.0)
    # the refresh button rescans the folders and updates the three pickers and the status
    place_weights(world)
    refresh = next(b for b in _walk(accordion.accordion) if b.elem_id and b.elem_id.endswith("_refresh"))
    (event, fn, inputs, outputs) = refresh.listeners[0]
    weights_update, _, _, status = fn()
    assert "qwen35_4b.safetensors" in weights_update["choices"] and isinstance(status, str)
    # the status line refreshes when a generation ends (Forge's html_info box changes)
    import gradio as gr

    html_info = gr.HTML(elem_id="html_info_txt2img")
    world.runners["txt2img"].component_created(html_info)
    assert html_info.listeners and html_info.listeners[0][0] == "change"


def _walk(block):
    for child in block.children:
        yield child
        yield from _walk(child)


def test_install_py_installs_only_what_is_missing_and_never_torch(world):
    import launch

    runpy.run_path(os.path.join(REPO_ROOT, "install.py"))
    assert launch.pip_calls == []
    launch.pretend_missing.update({"tokenizers", "torch"})
    runpy.run_path(os.path.join(REPO_ROOT, "install.py"))
    assert len(launch.pip_calls) == 1 and "tokenizers" in launch.pip_calls[0][0]
    assert not any("torch" in cmd for cmd, _ in launch.pip_calls)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_real_encoder_computes_on_the_gpu_and_goes_back_to_ram(world):
    from backend import memory_management as mm
    from modules import shared

    place_weights(world)
    on_cpu = world.txt2img("1girl, smile", "lowres", enabled=True)
    mm.cpu_state_cpu = False  # Forge on a GPU machine; its TE stays on the CPU in this stand-in
    shared.opts.qwen35_te_device, shared.opts.qwen35_te_dtype = "gpu", "fp32"
    on_gpu = world.txt2img("1girl, smile", "lowres", enabled=True)
    assert torch.allclose(on_gpu.c[0], on_cpu.c[0], atol=1e-3) and torch.allclose(on_gpu.uc[0], on_cpu.uc[0], atol=1e-3)
    (encoder,) = world.controller.holder.loaded()
    assert encoder.device.type == "cpu"  # released after encoding
    shared.opts.qwen35_te_keep_resident = True
    world.txt2img("2girls", "lowres", enabled=True)
    assert encoder.device.type == "cuda"
