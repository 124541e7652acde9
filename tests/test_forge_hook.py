"""Hook install / restore on the stand-in AnimaTextProcessingEngine, routing, stock path, model reloads."""

import gc
import weakref

import pytest
import torch

from forge_stubs.fakes import ScriptedEncoder
from forge_stubs.harness import forge_world, place_weights


@pytest.fixture
def world(tmp_path):
    with forge_world(tmp_path) as w:
        yield w


def stock_z(engine, prompt):
    (chunk,) = engine.tokenize_line(prompt)
    return type(engine).process_tokens(engine, [chunk.qwen_tokens], [chunk.qwen_multipliers])


def test_install_is_idempotent_and_restore_removes_the_instance_attribute(world):
    from lib_qwen35.forge import hook

    engine = world.engine()
    assert "process_tokens" not in vars(engine)
    assert hook.install(engine) is True
    assert hook.install(engine) is False  # once per engine
    assert hook.is_installed(engine)
    assert hook.restore(engine) is True
    assert "process_tokens" not in vars(engine)  # back to the class method
    assert engine.process_tokens.__func__ is type(engine).process_tokens
    assert hook.restore(engine) is False


def test_disarmed_hook_is_bit_identical_to_stock(world):
    from lib_qwen35.forge import active_state, hook

    engine = world.engine()
    prompts = ["1girl, (masterpiece:1.2), [blurry]", "", "long prompt BREAK second part, 日本語"]
    before = [stock_z(engine, p) for p in prompts]
    conds_before = world.anima.get_learned_conditioning(prompts)
    hook.install(engine)
    assert not active_state.is_armed()
    for p, z in zip(prompts, before):
        (chunk,) = engine.tokenize_line(p)
        assert torch.equal(engine.process_tokens([chunk.qwen_tokens], [chunk.qwen_multipliers]), z)
    for a, b in zip(conds_before, world.anima.get_learned_conditioning(prompts)):
        assert a.shape == (1, 512, 1024) and torch.equal(a, b)


def test_generation_with_extension_off_is_bit_identical_and_leaves_no_trace(world):
    place_weights(world)
    stock = world.txt2img("1girl, from side", "lowres, bad hands")
    world.txt2img("1girl, from side", "lowres, bad hands", enabled=True)  # on once in between
    again = world.txt2img("1girl, from side", "lowres, bad hands")
    assert torch.equal(stock.c[0], again.c[0]) and torch.equal(stock.uc[0], again.uc[0])
    assert stock.info == again.info and "Qwen35" not in again.info


def test_hook_wraps_and_restores_another_extensions_patch(world):
    from lib_qwen35.forge import hook

    engine = world.engine()
    seen = []
    original = engine.process_tokens

    def other_patch(batch_tokens, batch_multipliers):
        seen.append(len(batch_tokens))
        return original(batch_tokens, batch_multipliers) * 0

    engine.process_tokens = other_patch
    hook.install(engine)
    z = engine.process_tokens([[16, 17]], [[1.0, 1.0]])
    assert seen == [1] and torch.count_nonzero(z) == 0  # disarmed: the previous patch still runs
    hook.restore(engine)
    assert vars(engine)["process_tokens"] is other_patch


def test_exception_in_the_replacement_disarms_it(world):
    from lib_qwen35.forge import active_state, hook

    engine = world.engine()
    hook.install(engine)

    def failing(engine, batch_tokens, batch_multipliers):
        raise RuntimeError("boom")

    active_state.arm(failing)
    with pytest.raises(RuntimeError, match="boom"):
        engine.process_tokens([[16]], [[1.0]])
    assert not active_state.is_armed()
    assert torch.equal(engine.process_tokens([[16]], [[1.0]]), type(engine).process_tokens(engine, [[16]], [[1.0]]))


def test_reinstalled_on_the_new_engine_after_a_model_reload(world):
    from backend.diffusion_engine.anima import Anima
    from lib_qwen35.forge import hook
    from modules import processing, shared

    scripted = ScriptedEncoder()
    world.controller.holder._load_encoder = lambda path, dtype, on_cpu: scripted
    place_weights(world)
    old = world.anima
    new = Anima(world.text_encoder, world.qwen_tokenizer, world.t5_tokenizer, name="anima_reloaded")
    reloads = []

    def reload_between_process_and_batch():  # Forge reloads per batch, after Script.process
        reloads.append(1)
        if len(reloads) == 2:
            shared.sd_model = new

    processing.model_reload_hook = reload_between_process_and_batch
    world.txt2img("1girl", "", enabled=True)
    assert hook.is_installed(new.text_processing_engine_anima)
    assert hook.is_installed(old.text_processing_engine_anima)
    assert scripted.seen_texts == ["", "1girl"]  # the new engine's conds came from our encoder


def test_model_loaded_callback_installs_and_script_unload_restores(world):
    from backend.diffusion_engine.anima import Anima, NotAnima
    from lib_qwen35.forge import hook
    from modules import script_callbacks

    fresh = Anima(world.text_encoder, world.qwen_tokenizer, world.t5_tokenizer)
    script_callbacks.model_loaded_callback(fresh)
    script_callbacks.model_loaded_callback(NotAnima())  # ignored
    assert hook.is_installed(fresh.text_processing_engine_anima)
    script_callbacks.script_unloaded_callback()
    assert "process_tokens" not in vars(fresh.text_processing_engine_anima)


def test_hook_keeps_no_strong_reference_to_the_engine(world):
    from backend.text_processing.anima_engine import AnimaTextProcessingEngine
    from lib_qwen35.forge import hook

    engine = AnimaTextProcessingEngine(world.text_encoder, world.qwen_tokenizer, world.t5_tokenizer)
    hook.install(engine)
    ref = weakref.ref(engine)
    del engine
    gc.collect()
    assert ref() is None  # old models are freed on reload
