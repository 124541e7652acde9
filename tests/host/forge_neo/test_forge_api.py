"""alwayson_scripts arguments, as Forge's API builds script_args for /sdapi/v1/txt2img and /img2img, and its
`infotext` field, which runs our paste functions (finding the alignment file by its hash)."""

import json
import os

import pytest
import torch

from fits import write_fitted_alignment
from stubs.forge_neo.harness import forge_world, place_weights

API_NAME = "qwen3.5-4b text encoder (anima)"


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        place_weights(w)
        yield w


def api_generate(world, alwayson, tab="txt2img", prompt="1girl", negative="lowres", infotext=None):
    from modules import processing
    from modules.api import api

    runner = world.runners[tab]
    mentioned = {}
    api.apply_infotext(infotext, runner.infotext_fields, runner, mentioned)
    args = api.init_script_args(alwayson, api.init_default_script_args(runner), runner, input_script_args=mentioned)
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


def test_the_infotext_field_finds_the_alignment_by_hash(world, capsys):
    """A request with `infotext` and no alwayson_scripts entry of ours runs with the pasted args; a file found by its
    hash is used (and said in the console, the only place the API path has), and the response names it."""
    encoder = os.path.join(world.models_dir, "qwen35", "qwen35_4b.safetensors")
    shared = os.path.join(world.models_dir, "qwen35", "rotation_shared.safetensors")
    wanted = write_fitted_alignment(shared, encoder, seed=1)
    alwayson = {API_NAME: {"args": [True, "Automatic", True, 1.0, "rotation_shared.safetensors"]}}
    made = api_generate(world, alwayson)
    os.makedirs(os.path.join(world.models_dir, "qwen35", "old"))
    os.replace(shared, os.path.join(world.models_dir, "qwen35", "old", "rotation_old.safetensors"))
    other = write_fitted_alignment(shared, encoder, seed=2)          # a refit took the name
    capsys.readouterr()
    again = api_generate(world, {}, infotext=made.info)
    assert f"Qwen35 TE alignment file: rotation_old.safetensors, Qwen35 TE alignment hash: {wanted}" in again.info
    assert torch.equal(again.c[0], made.c[0])
    assert "rotation_old.safetensors, which has those contents, was picked by its hash" in capsys.readouterr().out
    os.remove(os.path.join(world.models_dir, "qwen35", "old", "rotation_old.safetensors"))
    differs = api_generate(world, {}, infotext=made.info)             # no file with that hash: by name, and said
    assert f"Qwen35 TE alignment file: rotation_shared.safetensors, Qwen35 TE alignment hash: {other}" in differs.info
    assert "the image will differ" in capsys.readouterr().out
    stock = api_generate(world, {}, infotext=world.txt2img("1girl", "lowres").info)
    assert "Qwen35" not in stock.info
