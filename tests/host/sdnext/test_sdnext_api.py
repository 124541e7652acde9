"""SD.Next's API hands an always-on script exactly the request's args (p.per_script_args), not padded with
the UI defaults: a short or partial list gets our defaults, a wrong type gets our message."""

import pytest
import torch

from stubs.forge_neo.harness import place_weights
from stubs.sdnext.harness import TITLE, sdnext_world


@pytest.fixture
def world(tmp_path):
    with sdnext_world(tmp_path) as w:
        place_weights(w)
        yield w


def test_a_short_args_list_gets_our_defaults(world):
    ui = world.txt2img("1girl", "lowres", enabled=True)
    for name in (TITLE, TITLE.lower(), TITLE.upper()):
        api = world.api_txt2img("1girl", "lowres", alwayson={name: {"args": [True]}})
        assert torch.equal(api.images[0], ui.images[0]) and api.info == ui.info
    partial = world.api_txt2img("1girl", "lowres", alwayson={TITLE: {"args": [True, "Automatic", False, 1.0, "Automatic", False, "Automatic"]}})
    assert torch.equal(partial.images[0], ui.images[0])


def test_no_args_or_false_is_stock(world):
    stock = world.txt2img("1girl", "lowres")
    for alwayson in (None, {TITLE: {"args": []}}, {TITLE: {"args": [False]}}, {TITLE: {}}):
        result = world.api_txt2img("1girl", "lowres", alwayson=alwayson)
        assert torch.equal(result.images[0], stock.images[0]) and "Qwen35" not in result.info


@pytest.mark.parametrize("args, wanted", [
    ([True, "Automatic", True, "strong"], "alignment_strength: 'strong' is not a number"),
    ([True, "Automatic", True, 1.5], "alignment_strength: 1.5 is out of range"),
    ([True, "Automatic", False, 1.0, "Automatic", False, "Automatic", -1], "output_scale: -1 is out of range"),
    ([True, "Automatic", "maybe"], "use_alignment"),
    ([True, 5], "encoder weights file '5' not found"),
])
def test_a_wrong_value_stops_with_our_message(world, args, wanted):
    from lib_qwen35.errors import Qwen35Error

    with pytest.raises(Qwen35Error) as error:
        world.api_txt2img("1girl", "lowres", alwayson={TITLE: {"args": args}})
    assert wanted in str(error.value) and str(error.value).startswith("Qwen3.5-4B text encoder (Anima): ")
    assert world.api_txt2img("1girl", "lowres").images   # the next request is served


def test_an_on_off_value_that_is_neither_is_an_error_not_a_silent_default():
    from lib_qwen35.host.params import GenerationParams, InvalidSetting

    with pytest.raises(InvalidSetting, match="use_calibration: 'sometimes' is not on/off"):
        GenerationParams.from_args([True, "Automatic", False, 1.0, "Automatic", "sometimes"])
    assert GenerationParams.requested_enabled(["maybe"], None) is True   # asked for: its error is reported
    assert GenerationParams.requested_enabled(["off"], None) is False and GenerationParams.requested_enabled([], None) is False
