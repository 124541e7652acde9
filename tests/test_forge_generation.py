"""Generations through the stand-in Forge with a synthetic Qwen3.5 checkpoint: what reaches Anima's LLM
adapter, Forge's conditioning caches, weights reuse, the non-Anima case."""

import os

import pytest
import torch

from forge_stubs.harness import forge_world, place_weights, write_alignment, write_calibration


@pytest.fixture
def world(tmp_path):
    with forge_world(tmp_path) as w:
        place_weights(w)
        yield w


def lib_states(world, prompt, **stage):
    from lib_qwen35 import OutputStage, load_encoder

    encoder = load_encoder(os.path.join(world.models_dir, "qwen35", "qwen35_4b.safetensors"))
    return OutputStage(**stage).apply(encoder.encode_ids(encoder.tokenize(prompt)))


def hooked_states(world, prompt):
    engine = world.engine()
    (chunk,) = engine.tokenize_line(prompt)
    return engine.process_tokens([chunk.qwen_tokens], [chunk.qwen_multipliers])


def test_enabled_conditioning_comes_from_the_qwen35_encoder(world):
    from lib_qwen35.forge import active_state

    stock = world.txt2img("1girl, from side", "lowres")
    p = world.make_p("1girl, from side", "lowres", enabled=True)
    world.controller.process(p, *p.script_args[world.script.args_from : world.script.args_to])
    z = hooked_states(world, "1girl, from side")  # [1, T, 1024], T = Qwen3.5 tokens
    ref = lib_states(world, "1girl, from side")
    assert z.shape == (1, ref.shape[0], 1024)
    assert torch.allclose(z[0], ref, atol=1e-6)
    active_state.disarm()

    on = world.txt2img("1girl, from side", "lowres", enabled=True)
    for cond in (on.c[0], on.uc[0]):
        assert cond.shape == (1, 512, 1024) and torch.isfinite(cond).all()
    assert not torch.equal(on.c[0], stock.c[0]) and not torch.equal(on.uc[0], stock.uc[0])


def test_output_matches_the_stock_device_and_dtype(world):
    from lib_qwen35.forge import replacement

    world.text_encoder.to(torch.float16)  # Forge's TE dtype on this "machine"
    p = world.make_p(enabled=True)
    world.controller.process(p, *p.script_args[world.script.args_from : world.script.args_to])
    engine = world.engine()
    (chunk,) = engine.tokenize_line("1girl")
    stock = type(engine).process_tokens(engine, [chunk.qwen_tokens], [chunk.qwen_multipliers])
    ours = engine.process_tokens([chunk.qwen_tokens], [chunk.qwen_multipliers])
    assert (ours.device, ours.dtype) == (stock.device, stock.dtype) == (torch.device("cpu"), torch.float16)
    assert replacement.stock_output_format(engine) == (torch.device("cpu"), torch.float16)


def test_text_is_recovered_from_qwen3_ids_with_emphasis_syntax_removed(world):
    from lib_qwen35.forge import text_recovery

    engine = world.engine()
    for prompt, text in [("(cat:1.3) on a [mat], 日本語 ✨", "cat on a mat, 日本語 ✨"), ("", ""), ("a BREAK b", "aBREAKb")]:  # Forge drops the spaces around BREAK
        (chunk,) = engine.tokenize_line(prompt)
        assert text_recovery.recover_text(chunk.qwen_tokens, engine.qwen_tokenizer) == text
    assert text_recovery.recover_text([151643], engine.qwen_tokenizer) == ""  # Forge's pad for empty prompts


def test_empty_negative_and_weighted_prompt_encode(world):
    p = world.make_p("(1girl:1.4), (blue hair)", "", enabled=True)
    world.controller.process(p, *p.script_args[world.script.args_from : world.script.args_to])
    assert torch.allclose(hooked_states(world, "")[0], lib_states(world, ""), atol=1e-6)  # "" -> <|endoftext|>
    assert torch.allclose(hooked_states(world, "(1girl:1.4), (blue hair)")[0], lib_states(world, "1girl, blue hair"), atol=1e-6)


def test_t5_side_emphasis_still_applies(world):
    plain = world.txt2img("cat", "", enabled=True, cfg_scale=1.0)
    weighted = world.txt2img("(cat:1.5)", "", enabled=True, cfg_scale=1.0)
    assert plain.uc is None  # CFG 1: no negative conditioning, as in Forge
    # same Qwen text "cat" and T5 ids [cat, </s>]; only the T5 weights differ: rows scaled by [1.5, 1.0]
    assert torch.allclose(weighted.c[0][0, :2], plain.c[0][0, :2] * torch.tensor([[1.5], [1.0]]), atol=1e-5)
    assert torch.count_nonzero(plain.c[0][0, 2:]) == 0  # zero-padded to 512 rows


def test_output_stage_settings_are_applied(world):
    align = write_alignment(os.path.join(world.models_dir, "qwen35", "my_rotation.safetensors"), seed=3)
    calib = write_calibration(os.path.join(world.models_dir, "qwen35", "my_calibration.safetensors"), seed=4)
    from lib_qwen35 import Alignment, Calibration

    p = world.make_p(enabled=True, use_alignment=True, alignment_strength=0.5, alignment_file="my_rotation.safetensors",
                     use_calibration=True, calibration_file="my_calibration.safetensors", output_scale=1.25)
    world.controller.process(p, *p.script_args[world.script.args_from : world.script.args_to])
    got = hooked_states(world, "1girl")[0]
    want = lib_states(world, "1girl", alignment=Alignment.load(align), strength=0.5, calibration=Calibration.load(calib), output_scale=1.25)
    assert torch.allclose(got, want, atol=1e-5)


def test_cond_cache_is_invalidated_when_settings_change_and_reused_when_not(world):
    from modules.processing import StableDiffusionProcessing

    def run(**ours):
        p = world.make_p("1girl", "lowres", **ours)
        from modules.processing import process_images

        return process_images(p), p.conds_computed

    _, n = run()
    assert n == 2  # c and uc computed
    _, n = run()
    assert n == 0  # Forge's cache: same prompt, nothing of ours changed
    on, n = run(enabled=True)
    assert n == 2  # turning on invalidates
    on_again, n = run(enabled=True)
    assert n == 0 and torch.equal(on.c[0], on_again.c[0])
    scaled, n = run(enabled=True, output_scale=2.0)
    assert n == 2 and not torch.equal(scaled.c[0], on.c[0])
    _, n = run()
    assert n == 2  # turning off invalidates: the stock conds are recomputed, not the cached 4B ones
    assert StableDiffusionProcessing.cached_c[0] is not None


def test_hires_caches_are_invalidated_too(world):
    from modules.processing import StableDiffusionProcessingTxt2Img

    off = world.txt2img("1girl", "", enable_hr=True, hr_prompt="1girl, detailed")
    assert StableDiffusionProcessingTxt2Img.cached_hr_c[0] is not None
    on = world.txt2img("1girl", "", enabled=True, enable_hr=True, hr_prompt="1girl, detailed")
    assert not torch.equal(on.hr_c[0], off.hr_c[0])  # not served from the stale hires cache
    off_again = world.txt2img("1girl", "", enable_hr=True, hr_prompt="1girl, detailed")
    assert torch.equal(off_again.hr_c[0], off.hr_c[0])


def test_weights_load_once_and_output_stage_sweeps_reuse_raw_embeddings(world):
    from lib_qwen35 import cache

    cache.EMBEDDINGS.clear()
    holder = world.controller.holder
    for scale in (1.0, 1.5, 2.0):
        world.txt2img("1girl, smile", "lowres", enabled=True, output_scale=scale)
    assert holder.loads == 1
    (encoder,) = holder.loaded()
    assert encoder.stats["backbone_runs"] == 2  # prompt + negative, once each
    assert encoder.stats["cache_hits"] == 4


def test_non_anima_model_is_left_alone_and_status_says_so(world):
    from backend.diffusion_engine.anima import NotAnima
    from lib_qwen35.forge import active_state, status
    from modules import shared

    shared.sd_model = NotAnima("sdxl_base")
    processed = world.txt2img("1girl", "lowres", enabled=True)
    assert processed.c[0].shape == (1, 77, 2048)
    assert "Qwen35" not in processed.info
    assert not active_state.is_armed()
    assert "not Anima" in status.line() and "sdxl_base" in status.line()


def test_status_line_reports_file_device_dtype_time_and_tokens(world):
    from lib_qwen35.forge import status

    world.txt2img("1girl, smile", "lowres", enabled=True)
    line = status.line()
    assert line.startswith("active: qwen35_4b.safetensors (")
    assert "cpu fp32" in line and " ms" in line and "tokens per prompt" in line
    world.txt2img("1girl, smile", "lowres")
    assert status.line().startswith("off")
