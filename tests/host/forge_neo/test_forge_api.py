"""alwayson_scripts arguments, as Forge's API builds script_args for /sdapi/v1/txt2img and /img2img."""

import json

import pytest
import torch
from stubs.forge_neo.harness import forge_world, place_weights

API_NAME = "qwen3.5-4b text encoder (anima)"


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        place_weights(w)
        yield w


def api_generate(world, alwayson, tab="txt2img", prompt="1girl", negative="lowres"):
    from modules import processing
    from modules.api import api

    runner = world.runners[tab]
    args = api.init_script_args(alwayson, api.init_default_script_args(runner), runner)
    p = world.make_p(prompt, negative, tab=tab, script_args=args)
    return processing.process_images(p)


def test_title_resolves_case_insensitively_and_defaults_follow_arg_names(world):
    from modules.api import api

    from lib_qwen35.host.params import ARG_NAMES, GenerationParams

    runner = world.runners["txt2img"]
    script = runner.scripts[api.script_name_to_index("Qwen3.5-4B Text Encoder (Anima)", runner.scripts)]
    assert script.title().lower() == API_NAME
    defaults = api.init_default_script_args(runner)[script.args_from : script.args_to]
    assert len(defaults) == len(ARG_NAMES) == 8
    assert defaults == GenerationParams().as_args()
    assert [c.label for c in script.controls] == ["Qwen3.5-4B text encoder (Anima)", "Encoder file", "Use alignment",
                                                  "Alignment strength", "Alignment file", "Use calibration",
                                                  "Calibration file", "Output scale"]


def test_readme_example_payload_works_on_both_endpoints(world):
    payload = json.loads('{"%s": {"args": [true, "qwen35_4b.safetensors", false, 1.0, "Automatic", false, "Automatic", 1.0]}}' % API_NAME)
    stock = api_generate(world, {})
    for tab in ("txt2img", "img2img"):
        on = api_generate(world, payload, tab=tab)
        assert "Qwen35 TE: on" in on.info
        assert not torch.equal(on.c[0], stock.c[0])


def test_partial_and_string_typed_args_are_coerced(world):
    on = api_generate(world, {API_NAME: {"args": ["true"]}})  # the rest keeps the UI defaults
    assert "Qwen35 TE: on" in on.info and on.info.endswith("Qwen35 TE scale: 1")
    scaled = api_generate(world, {API_NAME: {"args": [1, "Automatic", "false", "0.5", None, 0, "", "1.5"]}})
    assert "Qwen35 TE scale: 1.5" in scaled.info and "Qwen35 TE alignment: off" in scaled.info
    off = api_generate(world, {API_NAME: {"args": [False]}})
    assert "Qwen35" not in off.info


def test_unknown_script_name_is_a_422(world):
    from modules.api import api

    with pytest.raises(api.HTTPException) as err:
        api_generate(world, {"qwen35 anima": {"args": [True]}})
    assert err.value.status_code == 422
