"""Provenance where the files are used, in the stand-in SD.Next: the status names the encoder file a fit was made
for, a foreign fit warns once and runs, and a synthetic demo fit with a real (unmarked) encoder is stopped by
SD.Next's stop (sdnext/stop.py), although SD.Next swallows what Script.process raises."""

import os

import pytest

from fits import unmarked_copy, write_fitted_alignment
from stubs.forge_neo.harness import place_weights
from stubs.sdnext.harness import sdnext_world

from lib_qwen35.host.params import ARG_NAMES, GenerationParams


@pytest.fixture
def world(tmp_path):
    with sdnext_world(tmp_path) as w:
        place_weights(w)
        yield w


def status(world, **ours):
    values = dict(zip(ARG_NAMES, GenerationParams().as_args()), enabled=True, **ours)
    return world.controller.status_text(*[values[n] for n in ARG_NAMES])


def test_status_console_and_the_synthetic_stop(world, capsys):
    from lib_qwen35.errors import OutputStageFileError

    encoder = os.path.join(world.models_dir, "qwen35", "qwen35_4b.safetensors")
    mine = write_fitted_alignment(os.path.join(world.models_dir, "qwen35", "rotation_mine.safetensors"), encoder)
    foreign = write_fitted_alignment(os.path.join(world.models_dir, "qwen35", "rotation_foreign.safetensors"), encoder,
                                     seed=1, encoder_hash="0000000000", synthetic=False)
    assert f"Alignment rotation_mine.safetensors ({mine}): fitted on qwen35_4b.safetensors (" in status(
        world, use_alignment=True, alignment_file="rotation_mine.safetensors")
    capsys.readouterr()
    for prompt in ("1girl", "1girl, smile"):
        done = world.txt2img(prompt, "lowres", enabled=True, use_alignment=True, alignment_file="rotation_foreign.safetensors")
        assert done.images and f"Qwen35 TE alignment hash: {foreign}" in done.info
    assert capsys.readouterr().out.count("Warning: alignment rotation_foreign.safetensors") == 1

    unmarked_copy(encoder, os.path.join(world.models_dir, "qwen35", "qwen35_real.safetensors"))
    demo = {"use_alignment": True, "alignment_file": "rotation_mine.safetensors", "encoder_file": "qwen35_real.safetensors"}
    assert status(world, **demo).startswith("On, but the next generation will stop:")
    with pytest.raises(OutputStageFileError) as err:
        world.txt2img("1girl", "lowres", enabled=True, **demo)
    assert "rotation_mine.safetensors is a SYNTHETIC DEMO fit" in str(err.value) and "Fix:" in str(err.value)
    assert world.txt2img("1girl", "lowres", enabled=True, encoder_file="qwen35_real.safetensors").images
