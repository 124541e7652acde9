"""Forge's loaded stock Qwen3-0.6B behind the alignment fit's interface (forge_neo/stock_encoder.py), on every
engine generation: the stock seam's states even with our patch armed, batches padded without changing a
prompt's states, the TE loaded and the generation lock held, an identity that follows the weights."""

import types

import pytest
import torch

from stubs.forge_neo.harness import forge_world

PROMPTS = ["1girl, from above, full body", "A witch, seen from the side.", "", "masterpiece, best quality, 2boys"]


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        yield w


def stock_reference(world, ids):
    """The stock 0.6B hidden states of one prompt, straight from the class method: [T, 1024]."""
    return world.seam_states(ids=ids, stock=True)[0].float()


def test_wrapper_runs_the_stock_path_even_with_our_patch_armed(world):
    from lib_qwen35.host import active_state, selection
    from lib_qwen35.host.forge_neo import seam

    engine = world.engine()
    seam.install(engine)
    replaced = []

    def replacement(texts):
        replaced.append(texts)
        return [torch.full((4, 1024), 7.0) for _ in texts]

    active_state.arm(replacement)
    try:
        wrapper = selection.current().stock_encoder(world.anima)
        ids = [wrapper.tokenize(p) for p in PROMPTS]
        outs = wrapper.encode_batch(ids)  # right-padded batch of different lengths
        assert world.seam_states(ids=ids[0]).eq(7.0).all()  # the hook is live
    finally:
        active_state.disarm()
    assert len(replaced) == 1  # only our own direct call above went through the hook
    assert ids[2] == [151643]  # empty prompt -> <|endoftext|>, as Forge
    assert ids[0] == world.qwen_tokenizer(["1girl, from above, full body"])["input_ids"][0]
    for i, out in zip(ids, outs):
        assert out.dtype == torch.float32 and out.shape == (len(i), 1024)
        assert torch.equal(out, stock_reference(world, i))  # batching and padding change nothing
    assert not outs[0].is_inference()


def test_wrapper_identity_loads_the_te_and_holds_the_generation_lock(world):
    from backend import memory_management
    from modules import call_queue

    from lib_qwen35.host import selection

    patcher = object()
    world.anima.forge_objects = types.SimpleNamespace(clip=types.SimpleNamespace(patcher=patcher))
    seen_locked = []
    original = world.text_encoder.forward
    world.text_encoder.forward = lambda *a, **k: (seen_locked.append(call_queue.queue_lock.locked()), original(*a, **k))[1]
    wrapper = selection.current().stock_encoder(world.anima)
    memory_management.calls.clear()
    wrapper.encode_batch([wrapper.tokenize("1girl")])
    assert ("load_model_gpu", patcher) in memory_management.calls
    assert seen_locked == [True] and not call_queue.queue_lock.locked()

    again = selection.current().stock_encoder(world.anima)
    assert again.identity == wrapper.identity and wrapper.identity.startswith("forge-stock-qwen3|")
    with torch.no_grad():
        world.text_encoder.embed.weight[0, 0] += 1.0  # other weights: another cache key
    assert selection.current().stock_encoder(world.anima).identity != wrapper.identity

    from backend.diffusion_engine.anima import NotAnima
    assert selection.current().stock_encoder(NotAnima()) is None
