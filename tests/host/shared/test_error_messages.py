"""Each error path stops that generation with a message naming the file and the fix; the next
generation (stock or fixed) works, and nothing stays armed."""

import os
import shutil

import pytest
import torch

from stubs.forge_neo.fakes import ScriptedEncoder
from stubs.forge_neo.harness import forge_world, place_weights, synthetic_checkpoint, write_alignment


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        yield w


def assert_stops(world, match, **ours):
    from lib_qwen35.errors import Qwen35Error
    from lib_qwen35.host import active_state, status

    with pytest.raises(Qwen35Error) as err:
        world.txt2img("1girl", "lowres", enabled=True, **ours)
    text = str(err.value)
    assert text.startswith("Qwen3.5-4B text encoder (Anima): ") and "Fix:" in text
    for m in match:
        assert m in text, text
    assert not active_state.is_armed()
    assert status.line().startswith("error:")
    stock = world.txt2img("1girl", "lowres")  # the WebUI keeps working
    assert "Qwen35" not in stock.info
    return err.value


def assert_next_generation_works(world, **ours):
    processed = world.txt2img("1girl", "lowres", enabled=True, **ours)
    assert "Qwen35 TE: on" in processed.info


def test_missing_weights_file(world):
    from lib_qwen35.errors import WeightsFileError

    error = assert_stops(world, ["qwen35_4b.safetensors", os.path.join("models", "qwen35")])
    assert isinstance(error, WeightsFileError)
    place_weights(world)
    assert_next_generation_works(world)


def test_missing_named_weights_file(world):
    place_weights(world)
    assert_stops(world, ["'gone.safetensors' not found"], encoder_file="gone.safetensors")
    assert_next_generation_works(world)


def test_error_is_raised_even_when_forge_has_the_conds_cached(world):
    world.txt2img("1girl", "lowres")  # Forge's cache now holds this prompt's (stock) conds
    assert_stops(world, ["not found"])


def test_wrong_weights_file(world):
    from safetensors.torch import save_file

    path = os.path.join(world.models_dir, "qwen35", "qwen35_4b.safetensors")
    save_file({"model.layers.0.self_attn.q_proj.weight": torch.zeros(8, 8), "model.embed_tokens.weight": torch.zeros(16, 8)}, path)
    assert_stops(world, [path, "Qwen3.5-4B Anima encoder"])


def test_truncated_weights_file(world):
    path = os.path.join(world.models_dir, "qwen35", "qwen35_4b.safetensors")
    with open(synthetic_checkpoint(), "rb") as src, open(path, "wb") as dst:
        dst.write(src.read(os.path.getsize(synthetic_checkpoint()) // 2))
    assert_stops(world, [path, "re-download"])
    os.remove(path)
    place_weights(world)
    assert_next_generation_works(world)


def test_missing_alignment_file(world):
    from lib_qwen35.errors import OutputStageFileError

    place_weights(world)
    error = assert_stops(world, ["alignment file", "rotation_matrix.safetensors", "Use alignment"], use_alignment=True)
    assert isinstance(error, OutputStageFileError)


def test_bad_alignment_file(world):
    place_weights(world)
    bad = write_alignment(os.path.join(world.models_dir, "qwen35", "bad_rotation.safetensors"), orthogonal=False)
    assert_stops(world, [bad, "not orthogonal", "Use alignment"], use_alignment=True, alignment_file="bad_rotation.safetensors")
    good = write_alignment(os.path.join(world.models_dir, "qwen35", "good_rotation.safetensors"))
    assert os.path.exists(good)
    assert_next_generation_works(world, use_alignment=True, alignment_file="good_rotation.safetensors")


def test_bad_calibration_file(world):
    from lib_qwen35 import Calibration

    place_weights(world)
    path = os.path.join(world.models_dir, "qwen35", "calibration_params.safetensors")
    Calibration(torch.ones(1024), torch.zeros(512)).save(path)  # bias of the wrong size
    assert_stops(world, [path, "calibration"], use_calibration=True)


def test_encode_failure(world):
    place_weights(world)
    world.controller.holder._load_encoder = lambda path, dtype, on_cpu: ScriptedEncoder(fail_with=RuntimeError("kaboom"))
    assert_stops(world, ["encoding failed", "kaboom", "qwen35_4b.safetensors"])


@pytest.mark.parametrize("dtype, fix, wrong_fix", [("fp16", "bf16 or fp32", "damaged or another model"),
                                                    ("fp32", "re-download", "bf16 or fp32")])
def test_non_finite_output_names_the_fix_for_its_dtype(world, dtype, fix, wrong_fix):
    from modules import shared

    place_weights(world)
    shared.opts.qwen35_te_dtype = dtype
    world.controller.holder._load_encoder = lambda path, dtype, on_cpu: ScriptedEncoder(output=lambda n: torch.full((n, 1024), float("nan")))
    error = assert_stops(world, ["NaN/Inf", dtype, fix])
    assert wrong_fix not in str(error)  # an fp32 run is not told to switch to fp32


def test_out_of_memory_gives_a_hint_and_puts_weights_back_in_ram(world):
    from backend import memory_management as mm

    place_weights(world)
    mm.fake_gpu, mm.cpu_state_cpu, mm.te_device = True, False, torch.device("cuda")
    scripted = ScriptedEncoder(fail_with=torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    world.controller.holder._load_encoder = lambda path, dtype, on_cpu: scripted
    with pytest.raises(Exception) as err:
        world.txt2img("1girl", "lowres", enabled=True)
    error = err.value
    assert "out of memory" in str(error) and "'cpu'" in str(error) and "Fix:" in str(error)
    assert scripted.moves == ["cuda", "cpu"]
    frees = [c for c in mm.calls if c[0] == "free_memory"]
    assert frees and frees[0][2] == torch.device("cuda") and frees[0][1] >= os.path.getsize(synthetic_checkpoint())
    assert ("soft_empty_cache",) in mm.calls


def test_a_failing_file_does_not_break_the_other_tab_or_later_runs(world, tmp_path):
    place_weights(world)
    shutil.copy(synthetic_checkpoint(), os.path.join(world.models_dir, "qwen35", "second.safetensors"))
    assert_stops(world, ["missing.safetensors"], encoder_file="missing.safetensors")
    from modules import processing

    p = world.make_p(tab="img2img", enabled=True, encoder_file="second.safetensors")
    assert "Qwen35 TE file: second.safetensors" in processing.process_images(p).info


def test_unexpected_error_while_preparing_still_stops_the_generation(world, monkeypatch):
    from lib_qwen35.host import file_locator

    place_weights(world)

    def broken(*args, **kwargs):
        raise PermissionError("models/qwen35: permission denied")

    monkeypatch.setattr(file_locator, "list_weights", broken)
    assert_stops(world, ["unexpected error", "PermissionError", "permission denied"])  # not silently stock
    monkeypatch.undo()
    assert_next_generation_works(world)


def test_unexpected_error_while_encoding_names_the_file(world):
    place_weights(world)

    def decode(*args, **kwargs):  # e.g. a tokenizer whose decode changed in a newer Forge
        raise ValueError("cannot decode these ids")

    from lib_qwen35.host.forge_neo import engines

    engines.generation_of(world.engine()).qwen3_tokenizer(world.engine()).decode = decode
    assert_stops(world, ["encoding failed", "qwen35_4b.safetensors", "ValueError", "cannot decode"])


def test_library_errors_raised_while_encoding_get_the_extension_format(world):
    """The real library raises its own errors (NaN output, prompt limits): they must still name the
    extension and the file and say the fix, like the extension's own messages."""
    from lib_qwen35.errors import NonFiniteOutputError, PromptError

    place_weights(world)
    world.controller.holder._load_encoder = lambda path, dtype, on_cpu: ScriptedEncoder(
        fail_with=NonFiniteOutputError("the encoder produced NaN/Inf in torch.float16"))
    err = assert_stops(world, ["NaN/Inf", "qwen35_4b.safetensors", "re-download"])  # this world computes in fp32
    assert isinstance(err, NonFiniteOutputError)
    world.controller.holder._encoders.clear()
    world.controller.holder._load_encoder = lambda path, dtype, on_cpu: ScriptedEncoder(
        fail_with=PromptError("prompt has 200000 tokens; the limit is 131072."))
    err = assert_stops(world, ["200000 tokens", "qwen35_4b.safetensors"])
    assert isinstance(err, PromptError)


def test_invalid_api_values_stop_the_generation_and_are_ignored_when_off(world):
    from lib_qwen35.errors import Qwen35Error

    place_weights(world)
    with pytest.raises(Qwen35Error, match=r"invalid setting: output_scale: -1 is out of range.*Fix:"):
        world.txt2img("1girl", "lowres", enabled=True, output_scale=-1)
    with pytest.raises(Qwen35Error, match=r"alignment_strength: 'abc' is not a number"):
        world.txt2img("1girl", "lowres", enabled=True, alignment_strength="abc")
    off = world.txt2img("1girl", "lowres", enabled=False, output_scale=-1)     # off: stock, untouched
    assert "Qwen35" not in off.info
