"""SD.Next specifics of settings, files and placement: the settings section, files found in SD.Next's
models/qwen35/, its text-encoder folder (te_dir) and the extra folders; the encoder on SD.Next's device and
dtype; room made through SD.Next's balanced offload, none in its "none" mode."""

import os

import pytest
import torch

from stubs.forge_neo.harness import place_weights, synthetic_checkpoint
from stubs.sdnext.harness import sdnext_world


@pytest.fixture
def world(tmp_path):
    with sdnext_world(tmp_path) as w:
        yield w


def test_settings_section_is_registered(world):
    from modules import shared

    from lib_qwen35.host import ext_settings

    for key in (ext_settings.KEY_SEARCH_DIRS, ext_settings.KEY_DEVICE, ext_settings.KEY_DTYPE, ext_settings.KEY_KEEP_RESIDENT):
        assert shared.opts.data_labels[key].section == ext_settings.SECTION
    shared.opts.data[ext_settings.KEY_DEVICE] = "cpu"
    assert ext_settings.read().device == "cpu"


def test_files_are_found_where_an_sdnext_user_puts_them(world, tmp_path):
    from modules import shared

    from lib_qwen35.host import ext_settings, file_locator

    place_weights(world, "in_qwen35.safetensors", "qwen35")
    place_weights(world, "in_te_dir.safetensors", "Text-encoder")
    extra = tmp_path / "extra"
    extra.mkdir()
    os.symlink(synthetic_checkpoint(), extra / "in_extra.safetensors")
    shared.opts.data[ext_settings.KEY_SEARCH_DIRS] = str(extra)
    names = [f.name for f in file_locator.list_weights(ext_settings.read().search_dirs)]
    assert names == ["in_qwen35.safetensors", "in_te_dir.safetensors", "in_extra.safetensors"]
    searched = [d for d, _ in file_locator.weights_search_dirs()]
    assert searched == [os.path.join(world.models_dir, "qwen35"), os.path.join(world.models_dir, "Text-encoder")]
    shared.opts.data["te_dir"] = str(tmp_path / "my_te")   # SD.Next's "Text encoder" folder setting
    assert [d for d, _ in file_locator.weights_search_dirs()][1] == str(tmp_path / "my_te")


def test_auto_is_sdnexts_device_and_dtype(world):
    from modules import devices

    from lib_qwen35.host import ext_settings, placement
    from lib_qwen35.model.devices import describe as describe_placement

    cpu_fp32 = describe_placement("cpu", torch.float32)     # "cpu fp32 (why: model/devices.py)"
    assert placement.resolve(ext_settings.read()).describe() == cpu_fp32   # a CPU install: fp32, as SD.Next
    devices.device, devices.dtype = torch.device("cuda", 1), torch.float16   # SD.Next on a GPU, precision FP16
    auto = placement.resolve(ext_settings.ExtensionSettings())
    assert (auto.device, auto.dtype) == (torch.device("cuda", 1), torch.float16)
    gpu_bf16 = placement.resolve(ext_settings.ExtensionSettings(device="gpu", dtype="bf16"))
    assert (gpu_bf16.device, gpu_bf16.dtype) == (torch.device("cuda", 1), torch.bfloat16)
    assert placement.resolve(ext_settings.ExtensionSettings(device="cpu")).describe() == cpu_fp32


def test_room_is_made_through_sdnexts_balanced_offload_only(world):
    from modules import devices, sd_offload, shared

    from lib_qwen35.host import placement, selection

    world.anima.llm_adapter.to("meta")   # a component that sits on an accelerator
    selection.current().make_room(torch.device("cuda"), 5 << 30)
    assert sd_offload.calls == [] and devices.gc_calls[-1] == (True, "qwen35")   # "none": SD.Next keeps everything placed
    shared.opts.data["diffusers_offload_mode"] = "balanced"
    sd_offload.offload_hook_instance = object()
    selection.current().make_room(torch.device("cuda"), 5 << 30)
    assert sd_offload.calls == [("AnimaLLMAdapter", "qwen35", False)]   # only what is on the GPU, SD.Next's own way
    placement.empty_cache()
    assert devices.gc_calls[-1] == (True, "qwen35")


def test_a_generation_on_sdnexts_gpu_moves_the_encoder_there_and_back(world):
    """SD.Next on a GPU with precision BF16 and balanced offload: our encoder is loaded for bf16, SD.Next
    offloads its components on the GPU, the weights go to SD.Next's device for the encode and back to RAM."""
    from modules import devices, sd_offload, shared

    from stubs.forge_neo.fakes import ScriptedEncoder

    place_weights(world)
    loads, encoder = [], ScriptedEncoder()
    world.controller.holder._load_encoder = lambda path, dtype, on_cpu=True: (loads.append((dtype, on_cpu)), encoder)[1]
    devices.device, devices.dtype = torch.device("cuda", 0), torch.bfloat16
    shared.opts.data["diffusers_offload_mode"] = "balanced"
    sd_offload.offload_hook_instance = object()
    world.anima.transformer = torch.nn.Linear(2, 2, device="meta")   # SD.Next's DiT, sitting on the accelerator
    world.txt2img("1girl", "lowres", enabled=True)
    assert loads == [(torch.bfloat16, False)]
    assert encoder.moves == ["cuda:0", "cpu", "cuda:0", "cpu"]   # prompt, then negative: there and back each time
    assert sd_offload.calls == [("Linear", "qwen35", False)] * 2 and devices.gc_calls[-1] == (True, "qwen35")

    encoder.moves.clear()
    shared.opts.data["qwen35_te_keep_resident"] = True
    world.txt2img("1girl", "lowres", enabled=True)
    assert encoder.moves == ["cuda:0"]   # resident: moved once, kept there
