"""X/Y/Z axes registered into the (stand-in) xyz_grid module with its own AxisOption class."""

import pytest
import torch
from stubs.forge_neo.harness import forge_world, place_weights

OUR_LABELS = ["[Qwen3.5 TE] On/Off", "[Qwen3.5 TE] Alignment strength", "[Qwen3.5 TE] Use alignment",
              "[Qwen3.5 TE] Use calibration", "[Qwen3.5 TE] Output scale", "[Qwen3.5 TE] Encoder file"]


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        place_weights(w)
        place_weights(w, name="other_qwen35.safetensors", folder="qwen35", seed=1)
        yield w


def axis(world, label):
    return next(o for o in world.xyz.axis_options if o.label == label)


def test_axes_are_registered_once_with_the_modules_own_class_on_both_tabs(world):
    from lib_qwen35.host import xyz_axes

    labels = [o.label for o in world.xyz.axis_options]
    assert [l for l in labels if l.startswith("[Qwen3.5 TE]")] == OUR_LABELS
    assert all(type(axis(world, l)) is world.xyz.AxisOption for l in OUR_LABELS)
    assert xyz_axes.register(lambda: []) == 0  # on_before_ui again: nothing added twice
    for is_img2img in (False, True):
        assert set(OUR_LABELS) <= {o.label for o in world.xyz.options_for_tab(is_img2img)}
    assert xyz_axes.find_xyz_module() is world.xyz  # found through scripts.scripts_data


def test_apply_functions_set_a_fresh_override_dict_on_each_copy(world):
    from copy import copy

    from lib_qwen35.host.params import OVERRIDE_ATTR

    p = world.make_p()
    strength = axis(world, "[Qwen3.5 TE] Alignment strength")
    onoff = axis(world, "[Qwen3.5 TE] On/Off")
    pc1, pc2 = copy(p), copy(p)
    onoff.apply(pc1, "On", ["Off", "On"])
    strength.apply(pc1, 0.25, [0.25])
    onoff.apply(pc2, "Off", ["Off", "On"])
    assert getattr(pc1, OVERRIDE_ATTR) == {"enabled": True, "alignment_strength": 0.25}
    assert getattr(pc2, OVERRIDE_ATTR) == {"enabled": False}
    assert getattr(p, OVERRIDE_ATTR, None) is None  # the parent is untouched


def test_value_parsing_and_choices(world):
    xyz = world.xyz
    assert xyz.process_axis(axis(world, "[Qwen3.5 TE] On/Off"), "Off, On") == ["Off", "On"]
    assert xyz.process_axis(axis(world, "[Qwen3.5 TE] Alignment strength"), "0, 0.5, 1") == [0.0, 0.5, 1.0]
    assert xyz.process_axis(axis(world, "[Qwen3.5 TE] Output scale"), "0.8,1.2") == [0.8, 1.2]
    files = axis(world, "[Qwen3.5 TE] Encoder file").choices()
    assert files == ["Automatic", "other_qwen35.safetensors", "qwen35_4b.safetensors"]
    with pytest.raises(RuntimeError):
        xyz.process_axis(axis(world, "[Qwen3.5 TE] Use alignment"), "maybe")


def test_on_off_sweep_is_stock_then_qwen35(world):
    stock = world.txt2img("1girl", "lowres")
    p = world.make_p("1girl", "lowres")  # accordion left off: the axis decides
    off_cell, on_cell = world.xyz.run_cells(p, axis(world, "[Qwen3.5 TE] On/Off"), ["Off", "On"])
    assert torch.equal(off_cell.c[0], stock.c[0]) and "Qwen35" not in off_cell.info
    assert not torch.equal(on_cell.c[0], stock.c[0]) and "Qwen35 TE: on" in on_cell.info


def test_output_scale_sweep_encodes_each_prompt_once(world):
    from lib_qwen35.model import embedding_cache as cache

    cache.EMBEDDINGS.clear()
    p = world.make_p("1girl, smile", "lowres", enabled=True)
    cells = world.xyz.run_cells(p, axis(world, "[Qwen3.5 TE] Output scale"), [0.5, 1.0, 2.0])
    (encoder,) = world.controller.holder.loaded()
    assert encoder.stats["backbone_runs"] == 2  # prompt and negative, each once for three cells
    assert "Qwen35 TE scale: 0.5" in cells[0].info and "Qwen35 TE scale: 2" in cells[2].info
    adapter_in = [c.c[0] for c in cells]
    assert not torch.equal(adapter_in[0], adapter_in[2])


def test_encoder_file_sweep_uses_each_file(world):
    p = world.make_p("1girl", "", enabled=True)
    cells = world.xyz.run_cells(p, axis(world, "[Qwen3.5 TE] Encoder file"), ["qwen35_4b.safetensors", "other_qwen35.safetensors"])
    assert "Qwen35 TE file: qwen35_4b.safetensors" in cells[0].info and "Qwen35 TE file: other_qwen35.safetensors" in cells[1].info
    assert not torch.equal(cells[0].c[0], cells[1].c[0])
