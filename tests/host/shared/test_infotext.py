"""Infotext keys, and the paste round trip: infotext -> Forge's parser -> our PasteFields -> accordion."""

import os

import pytest

from stubs.forge_neo.harness import forge_world, place_weights, write_alignment, write_calibration


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        place_weights(w)
        yield w


def pasted_values(world, infotext, tab="txt2img"):
    """Run Forge's paste over our script's infotext_fields; {ARG name: new value or 'skip'}."""
    from modules import infotext_utils

    from lib_qwen35.host.params import ARG_NAMES

    script = next(s for s in world.runners[tab].alwayson_scripts if type(s).__module__ == "qwen35_anima.py")
    updates = infotext_utils.paste(script.infotext_fields, infotext)    # the ninth field is the status
    return {name: (u["value"] if "value" in u else "skip") for name, u in zip(ARG_NAMES, updates)}


def test_infotext_records_every_setting_and_pastes_back(world):
    from modules import infotext_utils

    write_alignment(os.path.join(world.models_dir, "qwen35", "fit, v2.safetensors"), seed=1)  # comma: quoted
    write_calibration(os.path.join(world.models_dir, "qwen35", "calib.safetensors"), seed=2)
    settings = dict(enabled=True, encoder_file="qwen35_4b.safetensors", use_alignment=True, alignment_strength=0.65,
                    alignment_file="fit, v2.safetensors", use_calibration=True, calibration_file="calib.safetensors", output_scale=1.1)
    processed = world.txt2img("1girl", "lowres", **settings)
    params = infotext_utils.parse_generation_parameters(processed.info)
    assert params["Qwen35 TE"] == "on"
    assert params["Qwen35 TE file"] == "qwen35_4b.safetensors"
    assert len(params["Qwen35 TE hash"]) == 10
    assert params["Qwen35 TE alignment"] == "0.65" and params["Qwen35 TE alignment file"] == "fit, v2.safetensors"
    assert params["Qwen35 TE calibration"] == "calib.safetensors" and params["Qwen35 TE scale"] == "1.1"
    assert params["Steps"] == "2"  # Forge's own parameters still parse
    for tab in ("txt2img", "img2img"):
        assert pasted_values(world, processed.info, tab) == settings


def test_infotext_without_our_keys_pastes_as_off(world):
    stock = world.txt2img("1girl", "lowres")
    assert "Qwen35" not in stock.info
    values = pasted_values(world, stock.info)
    assert values["enabled"] is False
    assert all(v == "skip" for k, v in values.items() if k != "enabled")  # the rest is left as it was


def test_alignment_and_calibration_off_are_recorded_as_off(world):
    from modules import infotext_utils

    from lib_qwen35.host import infotext

    processed = world.txt2img("1girl", "lowres", enabled=True, use_alignment=False, output_scale=0.9)
    params = infotext_utils.parse_generation_parameters(processed.info)
    assert params["Qwen35 TE alignment"] == "off" and params["Qwen35 TE calibration"] == "off"
    assert "Qwen35 TE alignment file" not in params
    restored = infotext.params_from_infotext(params)
    assert restored.enabled and not restored.use_alignment and not restored.use_calibration and restored.output_scale == 0.9


def test_our_keys_are_removed_from_shared_params_when_a_later_cell_is_off(world):
    from lib_qwen35.host import infotext

    p = world.make_p(enabled=True)
    world.controller.process(p, *p.script_args[world.script.args_from : world.script.args_to])
    stage_keys = {infotext.KEY_ALIGNMENT_FILE, infotext.KEY_ALIGNMENT_HASH, infotext.KEY_CALIBRATION_HASH}
    assert set(infotext.ALL_KEYS) - stage_keys <= set(p.extra_generation_params)
    p.extra_generation_params["Other"] = 1
    world.controller.process(p, *world.script_args()[world.script.args_from : world.script.args_to])  # off
    assert p.extra_generation_params == {"Other": 1}
