"""Infotext in the stand-in SD.Next: written by a generation, restored by SD.Next's paste ("PNG Info ->
Send to"), whose conversion and skip-list check would break plain values from function keys."""

import pytest
from stubs.forge_neo.harness import place_weights, write_alignment
from stubs.sdnext.harness import sdnext_world


@pytest.fixture
def world(tmp_path):
    with sdnext_world(tmp_path) as w:
        place_weights(w)
        yield w


def our_updates(world, text, tab="txt2img"):
    """The values SD.Next's paste applies to our controls (None: left unchanged)."""
    from modules import generation_parameters_copypaste

    from lib_qwen35.host.params import ARG_NAMES

    fields = world.runners[tab].infotext_fields
    updates = generation_parameters_copypaste.paste(text, fields)
    script = world.our_script(tab)
    ours = world.runners[tab].inputs[script.args_from:script.args_to]
    by_component = {id(component): update for (component, _), update in zip(fields, updates)}
    return {name: by_component[id(component)].get("value") for name, component in zip(ARG_NAMES, ours)}


def test_a_generation_writes_and_paste_restores_every_control(world):
    write_alignment(f"{world.models_dir}/qwen35/rot_a.safetensors")
    on = world.txt2img("1girl", "lowres", enabled=True, use_alignment=True, alignment_strength=0.5,
                       alignment_file="rot_a.safetensors", output_scale=1.25)
    assert "Qwen35 TE alignment: 0.5" in on.info and "Qwen35 TE alignment file: rot_a.safetensors" in on.info
    for tab in ("txt2img", "img2img"):
        restored = our_updates(world, on.info, tab)
        assert restored == {"enabled": True, "encoder_file": "qwen35_4b.safetensors", "use_alignment": True,
                            "alignment_strength": 0.5, "alignment_file": "rot_a.safetensors", "use_calibration": False,
                            "calibration_file": None, "output_scale": 1.25}


def test_a_stock_infotext_pastes_as_off_and_leaves_the_rest(world):
    stock = world.txt2img("1girl", "lowres")
    assert "Qwen35" not in stock.info
    assert our_updates(world, stock.info) == {"enabled": False, "encoder_file": None, "use_alignment": None, "alignment_strength": None,
                                              "alignment_file": None, "use_calibration": None, "calibration_file": None, "output_scale": None}


def test_digit_only_values_that_sdnexts_parser_turns_into_numbers_restore(world):
    text = "1girl\nSteps: 2, Seed: 1, Qwen35 TE: on, Qwen35 TE file: 2024, Qwen35 TE hash: 0123456789, Qwen35 TE alignment: 1, Qwen35 TE alignment file: 77, Qwen35 TE calibration: off, Qwen35 TE scale: 2"
    restored = our_updates(world, text)
    assert restored["encoder_file"] == "2024" and restored["alignment_strength"] == 1.0 and restored["alignment_file"] == "77"
    assert restored["output_scale"] == 2.0 and restored["use_calibration"] is False


def test_the_accordion_is_usable_in_sdnext(world):
    """Ours is a plain accordion with a visible Enable checkbox, as SD.Next's own always-on scripts (its
    InputAccordion, unused by SD.Next, hides its checkbox); the checkbox's value is the first API arg."""
    import gradio as gr

    script = world.our_script("txt2img")
    enabled = world.runners["txt2img"].inputs[script.args_from]
    assert type(enabled) is gr.Checkbox and enabled.visible and enabled.label == "Enable" and enabled.value is False
    assert enabled.elem_id == "script_txt2img_qwen354b_text_encoder_anima_enabled_checkbox"


def test_the_status_follows_the_generation_info_box(world):
    html_info = world.build_html_info("txt2img")
    (event, fn, inputs, outputs), = html_info.listeners
    assert event == "change" and outputs[-1].label == "Status" and "Last generation" in fn(*[c.value for c in inputs])
    assert len(inputs) == 8 and inputs[0].label == "Enable"
