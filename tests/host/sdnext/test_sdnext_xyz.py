"""X/Y/Z axes in the stand-in SD.Next: registered with SD.Next's AxisOption(label, tipe, apply, fmt=...)
into its axis_options list; an On/Off grid gives the stock image and ours; the alignment- and calibration-file axes
give one cell per file, each equal to its single generation."""

import os

import pytest
import torch

from fits import write_fitted_pair
from stubs.forge_neo.harness import place_weights
from stubs.sdnext.harness import sdnext_world


@pytest.fixture
def world(tmp_path):
    with sdnext_world(tmp_path) as w:
        place_weights(w)
        yield w


def test_our_axes_are_in_sdnexts_list_once(world):
    labels = [o.label for o in world.xyz.axis_options]
    ours = [label for label in labels if label.startswith("[Qwen3.5 TE] ")]
    assert ours == ["[Qwen3.5 TE] On/Off", "[Qwen3.5 TE] Alignment strength", "[Qwen3.5 TE] Use alignment",
                    "[Qwen3.5 TE] Use calibration", "[Qwen3.5 TE] Output scale", "[Qwen3.5 TE] Encoder file",
                    "[Qwen3.5 TE] Alignment file", "[Qwen3.5 TE] Calibration file"]
    assert world.controller.register_xyz_axes() == 0   # on_before_ui again: nothing added twice
    on_off = next(o for o in world.xyz.axis_options if o.label == "[Qwen3.5 TE] On/Off")
    assert on_off.type is str and on_off.choices() == ["Off", "On"] and on_off.format_value is world.xyz.format_value_add_label


def test_an_on_off_grid_gives_stock_then_ours(world):
    stock = world.txt2img("1girl", "lowres")
    on = world.txt2img("1girl", "lowres", enabled=True)
    p = world.make_p("1girl", "lowres")   # the accordion left off: the axis decides
    off_cell, on_cell = world.xyz.run_cells(p, "[Qwen3.5 TE] On/Off", ["Off", "On"])
    assert torch.equal(off_cell.images[0], stock.images[0]) and "Qwen35" not in off_cell.info
    assert torch.equal(on_cell.images[0], on.images[0]) and "Qwen35 TE: on" in on_cell.info


def test_an_output_scale_sweep_follows_each_value(world):
    cells = world.xyz.run_cells(world.make_p("1girl", "lowres", enabled=True), "[Qwen3.5 TE] Output scale", ["0.5", "1", "1.5"])
    assert [c.info.split("Qwen35 TE scale: ")[1] for c in cells] == ["0.5", "1", "1.5"]
    assert not torch.equal(cells[0].images[0], cells[1].images[0]) and not torch.equal(cells[1].images[0], cells[2].images[0])


def test_file_axes_give_one_cell_per_file_equal_to_its_single_generation(world):
    from lib_qwen35.errors import OutputStageFileError

    encoder = os.path.join(world.models_dir, "qwen35", "qwen35_4b.safetensors")
    hashes = [write_fitted_pair(os.path.join(world.models_dir, "qwen35", n, f"rotation_{n}.safetensors"),
                                os.path.join(world.models_dir, "qwen35", n, f"calibration_{n}.safetensors"), encoder, seed=i)
              for i, n in enumerate(("a", "b"))]
    alignments = ["None", "rotation_a.safetensors", "rotation_b.safetensors"]
    opt = next(o for o in world.xyz.axis_options if o.label == "[Qwen3.5 TE] Alignment file")
    assert opt.choices() == alignments
    cells = world.xyz.run_cells(world.make_p("1girl", "lowres", enabled=True), opt.label, alignments)
    assert "Qwen35 TE alignment: off" in cells[0].info and "hash: " + hashes[0][0] not in cells[0].info
    for i, value in enumerate(alignments):
        if i:
            assert f"Qwen35 TE alignment file: {value}, Qwen35 TE alignment hash: {hashes[i - 1][0]}" in cells[i].info
        single = world.txt2img("1girl", "lowres", enabled=True, use_alignment=i > 0, alignment_file=value if i else "Automatic")
        assert torch.equal(single.images[0], cells[i].images[0]) and single.info == cells[i].info
    assert not torch.equal(cells[1].images[0], cells[2].images[0]) and not torch.equal(cells[0].images[0], cells[1].images[0])

    settings = {"enabled": True, "use_alignment": True, "alignment_file": "rotation_a.safetensors"}
    calibrations = ["calibration_a.safetensors", "calibration_b.safetensors"]
    cells = world.xyz.run_cells(world.make_p("1girl", "lowres", **settings), "[Qwen3.5 TE] Calibration file", calibrations)
    for cell, value, digest in zip(cells, calibrations, (hashes[0][1], hashes[1][1])):
        assert f"Qwen35 TE calibration: {value}, Qwen35 TE calibration hash: {digest}" in cell.info
        single = world.txt2img("1girl", "lowres", use_calibration=True, calibration_file=value, **settings)
        assert torch.equal(single.images[0], cell.images[0])
    os.remove(os.path.join(world.models_dir, "qwen35", "b", "calibration_b.safetensors"))
    opt = next(o for o in world.xyz.axis_options if o.label == "[Qwen3.5 TE] Calibration file")
    with pytest.raises(OutputStageFileError, match="'calibration_b.safetensors' not found, so no cell was generated"):
        opt.confirm(world.make_p("1girl", "lowres", **settings), ["None"] + calibrations[1:])   # as process_axis does
