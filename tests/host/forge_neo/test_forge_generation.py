"""Generations through the stand-in Forge with a synthetic Qwen3.5 checkpoint: what reaches Anima's LLM
adapter, Forge's conditioning caches, weights reuse, the non-Anima case."""

import os

import pytest
import torch

from stubs.forge_neo.harness import forge_world, place_weights, write_alignment, write_calibration


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        place_weights(w)
        yield w


def lib_states(world, prompt, **stage):
    from lib_qwen35 import OutputStage, load_encoder

    encoder = load_encoder(os.path.join(world.models_dir, "qwen35", "qwen35_4b.safetensors"))
    return OutputStage(**stage).apply(encoder.encode_ids(encoder.tokenize(prompt)))


def hooked_states(world, prompt):
    return world.seam_states(prompt)  # [1, T, 1024] through the instance: our hook


def arm(world, **ours):
    p = world.make_p(enabled=True, **ours)
    return world.controller.process(p, *p.script_args[world.script.args_from : world.script.args_to])


def test_enabled_conditioning_comes_from_the_qwen35_encoder(world):
    from lib_qwen35.host import active_state

    stock = world.txt2img("1girl, from side", "lowres")
    arm(world)
    z = hooked_states(world, "1girl, from side")  # [1, T, 1024], T = Qwen3.5 tokens
    ref = lib_states(world, "1girl, from side")
    assert z.shape == (1, ref.shape[0], 1024)
    assert torch.allclose(z[0].float(), ref, atol=1e-6)
    active_state.disarm()

    on = world.txt2img("1girl, from side", "lowres", enabled=True)
    for cond in (on.c[0], on.uc[0]):
        assert cond.shape == (1, 512, 1024) and torch.isfinite(cond).all()
    assert not torch.equal(on.c[0], stock.c[0]) and not torch.equal(on.uc[0], stock.uc[0])


def test_output_matches_the_stock_device_and_dtype(world):
    from lib_qwen35.host.forge_neo import engines

    world.text_encoder.to(torch.float16)  # Forge's TE dtype on this "machine"
    arm(world)
    ids = world.qwen_ids("1girl")
    stock, ours = world.seam_states(ids=ids, stock=True), world.seam_states(ids=ids)
    want = (torch.device("cpu"), torch.float16 if world.generation == "legacy" else torch.float32)  # qwen06: .float() on intermediate_device
    assert (ours.device, ours.dtype) == (stock.device, stock.dtype) == want
    assert engines.generation_of(world.engine()).output_format(world.engine()) == want


def test_qwen06_seam_returns_the_stock_container_and_mask(world):
    """qwen06: (z [1, T, 1024] float32, None, {"attention_mask": int64 [1, T]}); empty prompt: mask [0] as stock."""
    if world.generation == "legacy":
        pytest.skip("legacy process_tokens returns a plain tensor (test above)")
    arm(world)
    for prompt, mask_value in (("1girl, smile", 1), ("", 0)):
        ids = world.qwen_ids(prompt)
        stock, ours = world.seam_output(ids, stock=True), world.seam_output(ids)
        assert len(ours) == len(stock) == 3 and ours[1] is None and stock[1] is None
        assert set(ours[2]) == set(stock[2]) == {"attention_mask"}
        mask, z = ours[2]["attention_mask"], ours[0]
        assert mask.dtype == stock[2]["attention_mask"].dtype == torch.int64 and mask.device == z.device
        assert mask.shape == (1, z.shape[1]) and bool((mask == mask_value).all())
        assert z.shape[1] == lib_states(world, prompt).shape[0]
    assert world.qwen_ids("") == [151643] and stock[2]["attention_mask"].tolist() == [[0]]  # stock's empty prompt


def test_engines_per_line_cache_never_serves_a_result_from_other_settings(world):
    """Forge's engine caches per line inside one call; across calls and settings it must recompute."""
    engine = world.engine()
    arm(world, output_scale=1.0)
    first = engine(["1girl", "1girl"])
    assert torch.equal(first[0], first[1])
    arm(world, output_scale=2.0)
    second = engine(["1girl"])[0]
    assert not torch.equal(first[0], second)
    from lib_qwen35.host import active_state

    active_state.disarm()
    stock = engine(["1girl"])[0]
    assert not torch.equal(stock, second) and not torch.equal(stock, first[0])


def test_text_is_recovered_from_qwen3_ids_with_emphasis_syntax_removed(world):
    from lib_qwen35.host.forge_neo import engines, text_recovery

    engine = world.engine()
    tokenizer = engines.generation_of(engine).qwen3_tokenizer(engine)
    if world.generation == "legacy":  # Forge's parse_prompt_attention: () [] (x:w) parsed; spaces around BREAK dropped
        cases = [("(cat:1.3) on a [mat], 日本語 ✨", "cat on a mat, 日本語 ✨"), ("", ""), ("a BREAK b", "aBREAKb")]
    else:  # the rewritten engine: only (x) / (x:w) parsed; [x], BREAK and \( stay text
        cases = [("(cat:1.3) on a [mat], 日本語 ✨", "cat on a [mat], 日本語 ✨"), ("", ""), ("a BREAK b", "a BREAK b"),
                 ("((deep)) \\(literal\\)", "deep (literal)")]
    for prompt, text in cases:
        assert text_recovery.recover_text(world.qwen_ids(prompt), tokenizer) == text
    assert text_recovery.recover_text([151643], tokenizer) == ""  # Forge's pad for empty prompts


def test_empty_negative_and_weighted_prompt_encode(world):
    arm(world)
    assert torch.allclose(hooked_states(world, "")[0].float(), lib_states(world, ""), atol=1e-6)  # "" -> <|endoftext|>
    assert torch.allclose(hooked_states(world, "(1girl:1.4), (blue hair)")[0].float(), lib_states(world, "1girl, blue hair"), atol=1e-6)


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

    arm(world, use_alignment=True, alignment_strength=0.5, alignment_file="my_rotation.safetensors",
        use_calibration=True, calibration_file="my_calibration.safetensors", output_scale=1.25)
    got = hooked_states(world, "1girl")[0].float()
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
    from lib_qwen35.model import embedding_cache as cache

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
    from modules import shared

    from lib_qwen35.host import active_state, status

    shared.sd_model = NotAnima("sdxl_base")
    processed = world.txt2img("1girl", "lowres", enabled=True)
    assert processed.c[0].shape == (1, 77, 2048)
    assert "Qwen35" not in processed.info
    assert not active_state.is_armed()
    assert "not Anima" in status.line() and "sdxl_base" in status.line()
