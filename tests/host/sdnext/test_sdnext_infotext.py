"""Infotext in the stand-in SD.Next: written by a generation, restored by SD.Next's paste ("PNG Info ->
Send to"), whose conversion and skip-list check would break plain values from function keys."""

import os

import pytest

from fits import write_fitted_pair
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


def status_update(world, text, tab="txt2img"):
    """What SD.Next's paste puts into our status box (the ninth paste field)."""
    from modules import generation_parameters_copypaste

    fields = world.runners[tab].infotext_fields
    updates = generation_parameters_copypaste.paste(text, fields)
    script = world.our_script(tab)
    status = next(c for c, _ in script.infotext_fields if getattr(c, "label", None) == "Status")
    return next(u for (c, _), u in zip(fields, updates) if c is status).get("value")


def test_the_hashes_are_written_and_a_paste_finds_the_file_by_hash(world):
    encoder = os.path.join(world.models_dir, "qwen35", "qwen35_4b.safetensors")
    digest, calibration_digest = write_fitted_pair(f"{world.models_dir}/qwen35/fit/rotation_fit.safetensors",
                                                   f"{world.models_dir}/qwen35/fit/calibration_fit.safetensors", encoder)
    made = world.txt2img("1girl", "lowres", enabled=True, use_alignment=True, alignment_file="rotation_fit.safetensors",
                         use_calibration=True, calibration_file="calibration_fit.safetensors")
    assert (f"Qwen35 TE alignment file: rotation_fit.safetensors, Qwen35 TE alignment hash: {digest}, "
            f"Qwen35 TE calibration: calibration_fit.safetensors, Qwen35 TE calibration hash: {calibration_digest}") in made.info
    assert "Pasted" not in status_update(world, made.info)
    os.replace(f"{world.models_dir}/qwen35/fit/rotation_fit.safetensors", f"{world.models_dir}/qwen35/fit/mine.safetensors")
    restored = our_updates(world, made.info)
    assert restored["alignment_file"] == "mine.safetensors" and restored["calibration_file"] == "calibration_fit.safetensors"
    assert "so mine.safetensors, which has those contents, was picked by its hash" in status_update(world, made.info)


def test_a_digit_only_hash_that_sdnexts_parser_turns_into_a_number_finds_its_file(world, monkeypatch):
    from lib_qwen35.host import file_locator
    from lib_qwen35.host.paste_lookup import normalise_hash

    path = f"{world.models_dir}/qwen35/rotation_digits.safetensors"
    write_alignment(path)
    real = file_locator.file_content_hash
    monkeypatch.setattr(file_locator, "file_content_hash",
                        lambda p, kind: "0123456789" if os.path.basename(p) == "rotation_digits.safetensors" else real(p, kind))
    text = ("1girl\nSteps: 2, Qwen35 TE: on, Qwen35 TE file: qwen35_4b.safetensors, Qwen35 TE alignment: 1, "
            "Qwen35 TE alignment file: elsewhere.safetensors, Qwen35 TE alignment hash: 0123456789, "
            "Qwen35 TE calibration: off, Qwen35 TE scale: 1")
    from modules import infotext as sdnext_infotext

    assert sdnext_infotext.parse(text)["Qwen35 TE alignment hash"] == 123456789      # what reaches our paste
    assert our_updates(world, text)["alignment_file"] == "rotation_digits.safetensors"
    assert normalise_hash(123456789) == "0123456789" and normalise_hash("0A1B2C3D4E") == "0a1b2c3d4e"
    assert normalise_hash(True) is None and normalise_hash(10 ** 10) is None and normalise_hash("xyz") is None


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
