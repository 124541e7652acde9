"""Provenance where the files are used, with the Forge stand-in as the host: the accordion's status says which 4B
file an alignment or calibration was fitted on and whether it is the one picked now; a fit for another file, or
one without provenance, warns in the status and once in the console, and the generation runs; a synthetic demo fit
with a real (unmarked) encoder stops the generation through Forge's stop (on each engine tree); a calibration is
checked against the alignment it is used after."""

import os

import pytest
import torch

from fits import fit_metadata, fitted_tensors, unmarked_copy, write_fitted_alignment, write_fitted_pair
from stubs.forge_neo.harness import forge_world, place_weights, write_alignment

from lib_qwen35.host.params import ARG_NAMES, GenerationParams


@pytest.fixture
def world(tmp_path):
    """The status and console logic do not touch the text engine: one engine tree."""
    with forge_world(tmp_path, generation="legacy") as w:
        place_weights(w)
        yield w


def encoder_path(world, name="qwen35_4b.safetensors"):
    return os.path.join(world.models_dir, "qwen35", name)


def qwen35_dir(world, *parts):
    return os.path.join(world.models_dir, "qwen35", *parts)


def status(world, **ours):
    values = dict(zip(ARG_NAMES, GenerationParams().as_args()), enabled=True, **ours)
    return world.controller.status_text(*[values[n] for n in ARG_NAMES])


def console_count(capsys, text):
    return capsys.readouterr().out.count(text)


def test_a_fit_of_the_picked_encoder_says_so_and_warns_nothing(world, capsys):
    from lib_qwen35.files.checkpoint import encoder_hash

    digest = write_fitted_alignment(qwen35_dir(world, "mine", "rotation_mine.safetensors"), encoder_path(world))
    text = status(world, use_alignment=True, alignment_file="rotation_mine.safetensors")
    assert text.splitlines()[1] == (f"Alignment rotation_mine.safetensors ({digest}): fitted on qwen35_4b.safetensors "
                                    f"({encoder_hash(encoder_path(world))}), the encoder file picked now.")
    world.txt2img("1girl", "lowres", enabled=True, use_alignment=True, alignment_file="rotation_mine.safetensors")
    assert "Warning" not in capsys.readouterr().out


def test_a_fit_for_another_encoder_file_warns_once_and_runs(world, capsys):
    from lib_qwen35.host import status as status_mod

    digest = write_fitted_alignment(qwen35_dir(world, "rotation_foreign.safetensors"), encoder_path(world),
                                    encoder_hash="0000000000")
    settings = {"use_alignment": True, "alignment_file": "rotation_foreign.safetensors"}
    text = status(world, **settings)
    assert text.splitlines()[0].startswith("On: the next generation encodes with")
    assert (f"Warning: alignment rotation_foreign.safetensors ({digest}) was fitted on qwen35_4b.safetensors "
            f"(0000000000), not on the encoder file picked now, qwen35_4b.safetensors (") in text
    capsys.readouterr()
    first = world.txt2img("1girl", "lowres", enabled=True, **settings)
    second = world.txt2img("1girl, smile", "lowres", enabled=True, **settings)
    assert f"Qwen35 TE alignment hash: {digest}" in first.info and f"Qwen35 TE alignment hash: {digest}" in second.info
    out = capsys.readouterr().out
    assert out.count("[Qwen3.5 TE] Warning: alignment rotation_foreign.safetensors") == 1
    assert "; warning: alignment rotation_foreign.safetensors fitted on another encoder file" in status_mod.line()


def test_a_file_without_provenance_warns_once_and_runs(world, capsys):
    write_alignment(qwen35_dir(world, "rotation_matrix.safetensors"))        # the earlier ComfyUI node's format
    text = status(world, use_alignment=True)
    assert "has no fit provenance" in text and "ComfyUI" in text
    for _ in range(2):
        assert "Qwen35 TE alignment hash" in world.txt2img("1girl", "lowres", enabled=True, use_alignment=True).info
    assert console_count(capsys, "has no fit provenance") == 1


def test_calibration_pairing(world):
    encoder = encoder_path(world)
    _a, ca = write_fitted_pair(qwen35_dir(world, "a", "rotation_a.safetensors"), qwen35_dir(world, "a", "calibration_a.safetensors"),
                              encoder, seed=1)
    b, _ = write_fitted_pair(qwen35_dir(world, "b", "rotation_b.safetensors"), None, encoder, seed=2,
                             date="2026-12-05T00:00:00Z")
    same = status(world, use_alignment=True, alignment_file="rotation_a.safetensors", use_calibration=True,
                  calibration_file="calibration_a.safetensors")
    assert f"Calibration calibration_a.safetensors ({ca}): fitted after rotation_a.safetensors (the same fit)." in same
    assert "Warning" not in same
    other = status(world, use_alignment=True, alignment_file="rotation_b.safetensors", use_calibration=True,
                   calibration_file="calibration_a.safetensors")
    assert (f"Warning: calibration calibration_a.safetensors ({ca}) was fitted after another alignment than "
            f"rotation_b.safetensors ({b})") in other
    alone = status(world, use_calibration=True, calibration_file="calibration_a.safetensors")
    assert "Note: calibration calibration_a.safetensors" in alone and "no alignment is used" in alone
    # a pair written before fits recorded hashes: the same date and inputs make it one fit
    from lib_qwen35.model.output_stage import Alignment, Calibration

    tensors_a, tensors_c = fitted_tensors(7)
    meta = fit_metadata(encoder)
    os.makedirs(qwen35_dir(world, "old"))
    Alignment(**tensors_a).save(qwen35_dir(world, "old", "rotation_old.safetensors"), {**meta, "kind": "alignment"})
    Calibration(**tensors_c).save(qwen35_dir(world, "old", "calibration_old.safetensors"), {**meta, "kind": "calibration"})
    old = status(world, use_alignment=True, alignment_file="rotation_old.safetensors", use_calibration=True,
                 calibration_file="calibration_old.safetensors")
    assert "calibration_old.safetensors" in old and "(the same fit)" in old and "Warning" not in old


def test_an_xyz_grid_over_a_foreign_file_warns_once(world, capsys):
    write_fitted_alignment(qwen35_dir(world, "rotation_foreign.safetensors"), encoder_path(world), encoder_hash="0000000000")
    xyz_axis = next(o for o in world.xyz.axis_options if o.label == "[Qwen3.5 TE] Alignment file")
    p = world.make_p("1girl", "lowres", enabled=True)
    capsys.readouterr()
    cells = world.xyz.run_cells(p, xyz_axis, ["rotation_foreign.safetensors", "None", "rotation_foreign.safetensors"])
    assert len(cells) == 3 and console_count(capsys, "Warning: alignment rotation_foreign.safetensors") == 1


@pytest.fixture
def engine_world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        place_weights(w)
        yield w


def test_a_synthetic_demo_fit_with_a_real_encoder_stops_the_generation(engine_world, capsys):
    """The tests' encoder is synthetic; an unmarked copy of it stands for a real download."""
    from lib_qwen35.errors import OutputStageFileError

    world = engine_world
    demo = qwen35_dir(world, "demo", "rotation_demo.safetensors")
    write_fitted_alignment(demo, encoder_path(world))                      # fitted on the synthetic file: a demo
    unmarked_copy(encoder_path(world), encoder_path(world, "qwen35_real.safetensors"))
    settings = {"enabled": True, "use_alignment": True, "alignment_file": "rotation_demo.safetensors"}
    text = status(world, encoder_file="qwen35_real.safetensors", **{k: v for k, v in settings.items() if k != "enabled"})
    assert text.startswith("On, but the next generation will stop: Qwen3.5-4B text encoder (Anima): the alignment file")
    with pytest.raises(OutputStageFileError) as err:
        world.txt2img("1girl", "lowres", encoder_file="qwen35_real.safetensors", **settings)
    message = str(err.value)
    assert demo in message and "SYNTHETIC DEMO" in message and "Fix:" in message and "qwen35_real.safetensors" in message
    assert world.controller.holder.loads == 0                                # stopped before the encoder was loaded
    assert "Qwen35 TE: on" in world.txt2img("1girl", "lowres", enabled=True, encoder_file="qwen35_real.safetensors").info
    with_its_encoder = world.txt2img("1girl", "lowres", **settings)          # the synthetic file it was fitted on
    assert "Qwen35 TE alignment file: rotation_demo.safetensors" in with_its_encoder.info
    stock = world.txt2img("1girl", "lowres")
    assert not torch.equal(stock.c[0], with_its_encoder.c[0])
