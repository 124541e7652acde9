"""X/Y/Z axes registered into the (stand-in) xyz_grid module with its own AxisOption class: the six setting axes
and, appended after them (their API indexes stay), the alignment- and calibration-file axes, whose cells each use
their file and equal a single generation with it."""

import os

import pytest
import torch

from fits import write_fitted_pair
from stubs.forge_neo.harness import forge_world, place_weights

OUR_LABELS = ["[Qwen3.5 TE] On/Off", "[Qwen3.5 TE] Alignment strength", "[Qwen3.5 TE] Use alignment",
              "[Qwen3.5 TE] Use calibration", "[Qwen3.5 TE] Output scale", "[Qwen3.5 TE] Encoder file",
              "[Qwen3.5 TE] Alignment file", "[Qwen3.5 TE] Calibration file"]


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
    assert [label for label in labels if label.startswith("[Qwen3.5 TE]")] == OUR_LABELS
    assert labels.index(OUR_LABELS[0]) + 7 == labels.index(OUR_LABELS[-1])   # appended in this order: indexes stay
    assert all(type(axis(world, label)) is world.xyz.AxisOption for label in OUR_LABELS)
    assert [axis(world, label).confirm is not None for label in OUR_LABELS] == [False] * 6 + [True, True]
    assert xyz_axes.register(list) == 0  # on_before_ui again: nothing added twice
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


# ---- the alignment- and calibration-file axes ---------------------------------------------------------------

@pytest.fixture
def fits(world):
    """Two fits on the placed encoder, and a same-named copy of fit a's files with fit c's numbers."""
    encoder = os.path.join(world.models_dir, "qwen35", "qwen35_4b.safetensors")
    hashes = {}
    for name, seed in (("a", 1), ("b", 2)):
        hashes[name] = write_fitted_pair(os.path.join(world.models_dir, "qwen35", name, f"rotation_{name}.safetensors"),
                                         os.path.join(world.models_dir, "qwen35", name, f"calibration_{name}.safetensors"),
                                         encoder, seed=seed)
    hashes["copy"] = write_fitted_pair(os.path.join(world.models_dir, "qwen35", "z", "rotation_a.safetensors"), None,
                                       encoder, seed=3)
    return hashes


def test_file_axes_offer_none_and_the_files_found(world, fits):
    assert axis(world, "[Qwen3.5 TE] Alignment file").choices() == [
        "None", "rotation_a.safetensors", "rotation_b.safetensors", f"rotation_a.safetensors [{fits['copy'][0]}]"]
    assert axis(world, "[Qwen3.5 TE] Calibration file").choices() == ["None", "calibration_a.safetensors",
                                                                      "calibration_b.safetensors"]


def test_file_axis_apply_turns_its_stage_on_or_off_on_a_fresh_dict(world, fits):
    from copy import copy

    from lib_qwen35.host.params import OVERRIDE_ATTR

    p = world.make_p()
    cells = [copy(p), copy(p)]
    axis(world, "[Qwen3.5 TE] Alignment file").apply(cells[0], "rotation_b.safetensors", [])
    axis(world, "[Qwen3.5 TE] Calibration file").apply(cells[1], "None", [])
    assert getattr(cells[0], OVERRIDE_ATTR) == {"use_alignment": True, "alignment_file": "rotation_b.safetensors"}
    assert getattr(cells[1], OVERRIDE_ATTR) == {"use_calibration": False}
    assert getattr(p, OVERRIDE_ATTR, None) is None


def test_a_file_that_is_not_here_stops_the_grid_before_any_cell(world, fits):
    from lib_qwen35.errors import OutputStageFileError

    opt = axis(world, "[Qwen3.5 TE] Alignment file")
    assert world.xyz.process_axis(opt, "None, rotation_b.safetensors") == ["None", "rotation_b.safetensors"]
    os.remove(os.path.join(world.models_dir, "qwen35", "b", "rotation_b.safetensors"))   # gone since it was listed
    with pytest.raises(OutputStageFileError) as err:
        opt.confirm(world.make_p(), ["rotation_a.safetensors", "rotation_b.safetensors"])  # as both grids call it
    assert "'rotation_b.safetensors' not found, so no cell was generated" in str(err.value)
    assert "Offered: None, rotation_a.safetensors, rotation_a.safetensors [" in str(err.value)
    with pytest.raises(OutputStageFileError):
        opt.confirm(None, ["gone.safetensors"])        # the API's dropdown values are not checked against the list
    assert world.controller.holder.loads == 0


def test_alignment_file_axis_cells_equal_their_single_generations(world, fits, capsys):
    from lib_qwen35.model import embedding_cache

    embedding_cache.EMBEDDINGS.clear()
    values = ["None", "rotation_a.safetensors", "rotation_b.safetensors", f"rotation_a.safetensors [{fits['copy'][0]}]"]
    p = world.make_p("1girl, smile", "lowres", enabled=True)
    cells = world.xyz.run_cells(p, axis(world, "[Qwen3.5 TE] Alignment file"), values)
    (encoder,) = world.controller.holder.loaded()
    assert encoder.stats["backbone_runs"] == 2          # prompt and negative once for the whole grid
    assert "Qwen35 TE alignment: off" in cells[0].info and "alignment hash" not in cells[0].info
    for cell, name, digest in zip(cells[1:], ["rotation_a.safetensors", "rotation_b.safetensors", "rotation_a.safetensors"],
                                  [fits["a"][0], fits["b"][0], fits["copy"][0]]):
        assert f"Qwen35 TE alignment file: {name}, Qwen35 TE alignment hash: {digest}," in cell.info
    for i, j in ((0, 1), (1, 2), (1, 3), (0, 2)):
        assert not torch.equal(cells[i].c[0], cells[j].c[0])
    for cell, value in zip(cells, values):
        use = value != "None"
        single = world.txt2img("1girl, smile", "lowres", enabled=True, use_alignment=use,
                               alignment_file=value if use else "Automatic")
        assert torch.equal(single.c[0], cell.c[0]) and single.info == cell.info
    assert "Warning" not in capsys.readouterr().out       # fits of this encoder: nothing to warn about


def test_calibration_file_axis_with_alignment_on(world, fits):
    values = ["calibration_a.safetensors", "calibration_b.safetensors"]
    settings = {"enabled": True, "use_alignment": True, "alignment_file": "rotation_a.safetensors"}
    cells = world.xyz.run_cells(world.make_p("1girl", "lowres", **settings), axis(world, "[Qwen3.5 TE] Calibration file"), values)
    for cell, value, digest in zip(cells, values, (fits["a"][1], fits["b"][1])):
        assert f"Qwen35 TE calibration: {value}, Qwen35 TE calibration hash: {digest}," in cell.info
        single = world.txt2img("1girl", "lowres", use_calibration=True, calibration_file=value, **settings)
        assert torch.equal(single.c[0], cell.c[0]) and single.info == cell.info
    assert not torch.equal(cells[0].c[0], cells[1].c[0])
