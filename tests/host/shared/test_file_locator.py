"""Where the pickers find files and how a picked name resolves (file_locator), with the Forge stand-in as the
host: models/qwen35/, the text-encoder folder (Qwen3.5 headers only), the extra folders, "Automatic", the fit's
cache chunks never offered as weights, a sharded checkpoint offered through its index. (Unusable files:
tests/files/test_safe_reading.py and test_hostile_headers.py; SD.Next's folders: test_sdnext_settings.py.)"""

import os

import pytest
import torch

from stubs.forge_neo.harness import forge_world, place_weights, write_alignment, write_calibration


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        yield w


def test_file_discovery_and_automatic_choice(world, tmp_path):
    from modules import shared

    from lib_qwen35.host import file_locator

    te_dir = os.path.join(world.models_dir, "text_encoder")
    place_weights(world, name="qwen35_4b.safetensors", folder="text_encoder")
    place_weights(world, name="anima_qwen35_variant.safetensors", folder="qwen35", seed=1)
    from safetensors.torch import save_file

    save_file({"model.layers.0.self_attn.q_proj.weight": torch.zeros(4, 4)}, os.path.join(te_dir, "qwen_3_06b_base.safetensors"))
    extra = tmp_path / "extra"
    extra.mkdir()
    write_alignment(str(extra / "my_fit.safetensors"))
    write_calibration(str(extra / "my_calib.safetensors"))
    shared.opts.qwen35_te_search_dirs = str(extra)

    names = world.controller.weight_choices()
    assert names == ["Automatic", "anima_qwen35_variant.safetensors", "qwen35_4b.safetensors"]  # 0.6B not offered
    assert world.controller.alignment_choices() == ["Automatic", "my_fit.safetensors"]
    assert world.controller.calibration_choices() == ["Automatic", "my_calib.safetensors"]
    found = file_locator.list_weights()
    assert file_locator.resolve("Automatic", found, file_locator.PREFERRED_WEIGHTS).endswith(os.path.join("text_encoder", "qwen35_4b.safetensors"))
    assert file_locator.resolve("nope.safetensors", found, file_locator.PREFERRED_WEIGHTS) is None


def test_fit_cache_chunks_are_not_offered_as_weights(world):
    from safetensors.torch import save_file

    place_weights(world, name="qwen35_4b.safetensors", folder="qwen35")
    cache_dir = os.path.join(world.models_dir, "qwen35", "my_fit", "embedding_cache", "e4-abc")
    os.makedirs(cache_dir)
    save_file({"pooled": torch.zeros(3, 1024)}, os.path.join(cache_dir, "chunk-00000.safetensors"))
    assert world.controller.weight_choices() == ["Automatic", "qwen35_4b.safetensors"]


def test_sharded_checkpoint_is_offered_through_its_index(world):
    from lib_qwen35.synthetic.qwen35 import write_checkpoint

    write_checkpoint(os.path.join(world.models_dir, "qwen35", "official"), layout="official", shards=2)
    assert "official/model.safetensors.index.json" in world.controller.weight_choices()
