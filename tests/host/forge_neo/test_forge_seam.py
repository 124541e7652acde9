"""Hook install / restore on each stand-in engine generation, routing, stock path, model reloads."""

import gc
import weakref

import pytest
import torch

from stubs.forge_neo.fakes import ScriptedEncoder
from stubs.forge_neo.harness import forge_world, place_weights

PROMPTS = ["1girl, (masterpiece:1.2), [blurry]", "", "long prompt BREAK second part, 日本語"]


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        yield w


def test_install_is_idempotent_and_restore_removes_the_instance_attribute(world):
    from lib_qwen35.host.forge_neo import seam

    engine, owner, name = world.engine(), world.seam_owner(), world.seam_name()
    assert name not in vars(owner)
    assert seam.install(engine) is True
    assert name in vars(owner)
    assert seam.install(engine) is False  # once per engine
    assert seam.is_installed(engine)
    assert seam.restore(engine) is True
    assert name not in vars(owner)  # back to the class method
    assert getattr(owner, name).__func__ is getattr(type(owner), name)
    assert seam.restore(engine) is False


def test_only_the_engines_instance_is_patched(world):
    from lib_qwen35.host.forge_neo import seam

    owner = world.seam_owner()
    before = dict(vars(type(owner)))
    seam.install(world.engine())
    assert dict(vars(type(owner))) == before  # never the class
    other = world.new_anima("second")
    assert world.seam_name() not in vars(world.seam_owner(world.engine(other)))


def test_disarmed_hook_is_bit_identical_to_stock(world):
    from lib_qwen35.host import active_state
    from lib_qwen35.host.forge_neo import seam

    engine = world.engine()
    before = [world.seam_output(world.qwen_ids(p), stock=True) for p in PROMPTS]
    conds_before = world.anima.get_learned_conditioning(PROMPTS)
    seam.install(engine)
    assert not active_state.is_armed()
    for p, stock in zip(PROMPTS, before):
        hooked = world.seam_output(world.qwen_ids(p))
        if isinstance(stock, tuple):  # qwen06: (z, pooled, {"attention_mask"}) all identical
            assert torch.equal(hooked[0], stock[0]) and hooked[1] is stock[1] is None
            assert torch.equal(hooked[2]["attention_mask"], stock[2]["attention_mask"])
        else:
            assert torch.equal(hooked, stock)
    for a, b in zip(conds_before, world.anima.get_learned_conditioning(PROMPTS)):
        assert a.shape == (1, 512, 1024) and torch.equal(a, b)


def test_generation_with_extension_off_is_bit_identical_and_leaves_no_trace(world):
    place_weights(world)
    stock = world.txt2img("1girl, from side", "lowres, bad hands")
    world.txt2img("1girl, from side", "lowres, bad hands", enabled=True)  # on once in between
    again = world.txt2img("1girl, from side", "lowres, bad hands")
    assert torch.equal(stock.c[0], again.c[0]) and torch.equal(stock.uc[0], again.uc[0])
    assert stock.info == again.info and "Qwen35" not in again.info


def test_hook_wraps_and_restores_another_extensions_patch(world):
    from lib_qwen35.host.forge_neo import seam

    owner, name = world.seam_owner(), world.seam_name()
    seen = []
    original = getattr(owner, name)

    def other_patch(*args):
        seen.append(len(args[0]))
        out = original(*args)
        return out * 0 if torch.is_tensor(out) else (out[0] * 0,) + tuple(out[1:])

    setattr(owner, name, other_patch)
    seam.install(world.engine())
    z = world.seam_states(ids=[16, 17])
    assert seen == [1] and torch.count_nonzero(z) == 0  # disarmed: the previous patch still runs
    seam.restore(world.engine())
    assert vars(owner)[name] is other_patch


def test_exception_in_the_replacement_disarms_it(world):
    from lib_qwen35.host import active_state
    from lib_qwen35.host.forge_neo import seam

    seam.install(world.engine())

    def failing(texts):
        raise RuntimeError("boom")

    active_state.arm(failing)
    with pytest.raises(RuntimeError, match="boom"):
        world.seam_states(ids=[16])
    assert not active_state.is_armed()
    assert torch.equal(world.seam_states(ids=[16]), world.seam_states(ids=[16], stock=True))


def test_armed_hook_hands_the_recovered_texts_to_the_encoder(world):
    from lib_qwen35.host import active_state
    from lib_qwen35.host.forge_neo import seam

    seam.install(world.engine())
    seen = []

    def encode(texts):
        seen.append(list(texts))
        return [torch.full((3, 1024), 0.5) for _ in texts]

    active_state.arm(encode)
    z = world.seam_states("(cat:1.3) on a mat")
    assert seen == [["cat on a mat"]] and z.shape == (1, 3, 1024) and bool((z == 0.5).all())


def test_reinstalled_on_the_new_engine_after_a_model_reload(world):
    from modules import processing, shared

    from lib_qwen35.host.forge_neo import seam

    scripted = ScriptedEncoder()
    world.controller.holder._load_encoder = lambda path, dtype, on_cpu: scripted
    place_weights(world)
    old = world.anima
    new = world.new_anima("anima_reloaded")
    reloads = []

    def reload_between_process_and_batch():  # Forge reloads per batch, after Script.process
        reloads.append(1)
        if len(reloads) == 2:
            shared.sd_model = new

    processing.model_reload_hook = reload_between_process_and_batch
    world.txt2img("1girl", "", enabled=True)
    assert seam.is_installed(world.engine(new))
    assert seam.is_installed(world.engine(old))
    assert scripted.seen_texts == ["", "1girl"]  # the new engine's conds came from our encoder


def test_model_loaded_callback_installs_and_script_unload_restores(world):
    from backend.diffusion_engine.anima import NotAnima
    from modules import script_callbacks

    from lib_qwen35.host.forge_neo import seam

    fresh = world.new_anima("fresh")
    script_callbacks.model_loaded_callback(fresh)
    script_callbacks.model_loaded_callback(NotAnima())  # ignored
    assert seam.is_installed(world.engine(fresh))
    script_callbacks.script_unloaded_callback()
    assert world.seam_name() not in vars(world.seam_owner(world.engine(fresh)))


def test_hook_keeps_no_strong_reference_to_the_engine(world):
    from lib_qwen35.host.forge_neo import seam

    model = world.new_anima("transient")
    seam.install(world.engine(model))
    ref = weakref.ref(world.engine(model))
    del model
    gc.collect()
    assert ref() is None  # old models are freed on reload
