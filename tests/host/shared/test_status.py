"""The accordion's status box: it follows the controls as soon as they change (no generation needed), keeps
the whole text readable, and after a generation says what that generation did, errors in full (the same
text Forge shows under the gallery)."""

import os

import pytest
import torch

from stubs.forge_neo.harness import forge_world, place_weights, write_alignment

from lib_qwen35.model.devices import describe

CPU_FP32 = describe("cpu", torch.float32)      # "cpu fp32 (" and why fp32 on this CPU ")": model/devices.py


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        yield w


def status_box(world, tab="txt2img"):
    script = next(s for s in world.runners[tab].alwayson_scripts if type(s).__module__ == "qwen35_anima.py")
    box = next(b for b in _walk(script.controls[0].accordion) if b.elem_id and b.elem_id.endswith("_status"))
    return script, box


def change(world, tab="txt2img", **ours):
    """What the status box shows after the user changes controls to `ours` (the other controls at their
    defaults): runs the control's own change listener, as gradio does."""
    from lib_qwen35.host.params import ARG_NAMES, GenerationParams

    script, box = status_box(world, tab)
    values = dict(zip(ARG_NAMES, GenerationParams().as_args()), **ours)
    name = next(iter(ours)) if ours else "enabled"
    control = script.controls[ARG_NAMES.index(name)]
    ((event, fn, inputs, outputs),) = [entry for entry in control.listeners if entry[3] == [box]]
    assert event == "change" and inputs == script.controls
    return fn(*[values[n] for n in ARG_NAMES])


def _walk(block):
    for child in block.children:
        yield child
        yield from _walk(child)


def test_every_control_updates_the_status_and_the_box_shows_several_lines(world):
    script, box = status_box(world)
    assert box.kwargs["lines"] >= 2 and box.kwargs["max_lines"] >= 8 and box.interactive is False
    assert box.value.startswith("Off: prompts are encoded by the stock Qwen3-0.6B encoder")
    assert box.value.endswith("Last generation: none yet in this session")
    for control in script.controls:
        assert [entry[0] for entry in control.listeners if entry[3] == [box]] == ["change"]


def test_status_follows_tick_file_and_alignment_without_a_generation(world):
    from lib_qwen35.files.checkpoint import short_hash

    text = change(world, enabled=True)
    assert text.startswith("On, but the next generation will stop: Qwen3.5-4B text encoder (Anima): encoder weights file 'qwen35_4b.safetensors' not found.")
    assert os.path.join("models", "qwen35") in text and "Fix:" in text

    path = place_weights(world)
    text = change(world, enabled=True)
    first = text.splitlines()[0]
    assert first == f"On: the next generation encodes with qwen35_4b.safetensors ({short_hash(path)}) on {CPU_FP32}."

    text = change(world, encoder_file="other.safetensors", enabled=True)
    assert "encoder weights file 'other.safetensors' not found" in text

    text = change(world, use_alignment=True, enabled=True, alignment_strength=0.5)
    assert "alignment file 'rotation_matrix.safetensors (Automatic)' not found" in text
    write_alignment(os.path.join(world.models_dir, "qwen35", "rotation_mine.safetensors"))
    text = change(world, use_alignment=True, enabled=True, alignment_strength=0.5, output_scale=1.2)
    assert ", alignment 0.5 (rotation_mine.safetensors), scale 1.2." in text.splitlines()[0]

    broken = os.path.join(world.models_dir, "qwen35", "rotation_bad.safetensors")
    write_alignment(broken, orthogonal=False)
    text = change(world, alignment_file="rotation_bad.safetensors", enabled=True, use_alignment=True)
    assert "cannot use the alignment file" in text and "not orthogonal" in text

    assert change(world, enabled=False).startswith("Off:")
    assert world.controller.holder.loads == 0  # a preview never loads the encoder weights
    assert text.endswith("Last generation: none yet in this session")


def test_status_says_inactive_for_a_model_that_is_not_anima(world):
    from backend.diffusion_engine.anima import NotAnima
    from modules import shared

    place_weights(world)
    shared.sd_model = NotAnima("sdxl_base")
    text = change(world, enabled=True)
    assert text.startswith("On, but inactive: the loaded model is not Anima (") and "sdxl_base" in text


def test_status_after_generations_and_errors_in_full(world):
    from lib_qwen35.errors import Qwen35Error

    script, box = status_box(world)
    import gradio as gr

    html_info = gr.HTML(elem_id="html_info_txt2img")
    world.runners["txt2img"].component_created(html_info)
    ((event, after_generation, inputs, outputs),) = html_info.listeners
    assert event == "change" and inputs == script.controls and outputs == [box]

    with pytest.raises(Qwen35Error) as err:  # what Forge shows under the gallery
        world.txt2img("1girl", "lowres", enabled=True)
    text = after_generation(True, "Automatic", False, 1.0, "Automatic", False, "Automatic", 1.0)
    assert text.endswith(f"Last generation: error: {err.value}")  # the whole message, fix included
    assert len(str(err.value)) > 200 and "Fix:" in str(err.value)

    place_weights(world)
    world.txt2img("1girl, smile", "lowres", enabled=True)
    text = after_generation(True, "Automatic", False, 1.0, "Automatic", False, "Automatic", 1.0)
    now, last = text.splitlines()
    assert now.startswith("On: the next generation encodes with qwen35_4b.safetensors")
    assert last.startswith("Last generation: active: qwen35_4b.safetensors (") and "tokens per prompt" in last

    world.txt2img("1girl, smile", "lowres")
    text = after_generation(False, "Automatic", False, 1.0, "Automatic", False, "Automatic", 1.0)
    assert text.splitlines() == [text.splitlines()[0], "Last generation: off: the stock Qwen3-0.6B encoder is used"]


def test_status_names_an_invalid_value(world):
    place_weights(world)
    text = change(world, output_scale=-1, enabled=True)
    assert text.startswith("On, but the next generation will stop: Qwen3.5-4B text encoder (Anima): invalid setting: output_scale")


def test_the_img2img_accordion_has_its_own_live_status(world):
    place_weights(world)
    assert change(world, tab="img2img", enabled=True).startswith("On: the next generation encodes with qwen35_4b.safetensors")


def test_before_forge_loads_a_model_the_status_says_so_instead_of_not_anima(world):
    from modules import shared

    class FakeInitialModel:  # Forge's placeholder (modules/sd_models.py) until the first generation loads one
        pass

    place_weights(world)
    for placeholder in (None, FakeInitialModel()):
        shared.sd_model = placeholder
        text = change(world, enabled=True)
        assert text.startswith("On: the next generation encodes with qwen35_4b.safetensors (")
        assert text.splitlines()[0].endswith(f"on {CPU_FP32} (no model is loaded yet; it must be an Anima model).")


def test_an_unknown_anima_engine_is_announced_before_the_generation(world):
    from modules import shared

    from stubs.forge_neo.fakes import unknown_anima

    place_weights(world)
    shared.sd_model = unknown_anima(world)
    text = change(world, enabled=True)
    assert text.startswith("On, but the next generation will stop:") and "UnknownAnimaEngine" in text


def test_status_line_reports_file_device_dtype_time_and_tokens(world):
    from lib_qwen35.host import status

    place_weights(world)
    world.txt2img("1girl, smile", "lowres", enabled=True)
    line = status.line()
    assert line.startswith("active: qwen35_4b.safetensors (")
    assert CPU_FP32 in line and " ms" in line and "tokens per prompt" in line
    world.txt2img("1girl, smile", "lowres")
    assert status.line().startswith("off")
