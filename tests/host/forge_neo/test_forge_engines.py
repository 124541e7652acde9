"""Finding Anima's text engine on every Forge Neo generation, telling Anima from other models that share
the attribute, and stopping (never silently stock) on an Anima engine no adapter knows."""

import pytest
import torch

from stubs.forge_neo.fakes import UnknownAnimaEngine, unknown_anima
from stubs.forge_neo.harness import forge_world, place_weights

EXPECTED = {  # stand-in world -> (generation adapter, attribute)
    "legacy": ("legacy", "text_processing_engine_anima"),
    "qwen06-anima": ("qwen06", "text_processing_engine_anima"),
    "qwen06": ("qwen06", "text_processing_engine_qwen"),
}


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        place_weights(w)
        yield w


def test_each_generation_is_found_by_what_the_engine_offers(world):
    from lib_qwen35.host.forge_neo import detection

    located = detection.locate(world.anima)
    assert located.kind == "anima" and located.engine is world.engine()
    assert (located.generation.name, located.attribute) == EXPECTED[world.generation]


def test_a_model_sharing_the_qwen_attribute_is_not_anima(world):
    """2.29.2+: Z-Image, Flux2/Klein, Krea2, Qwen-Image keep their engine on text_processing_engine_qwen too."""
    from backend.diffusion_engine.anima import ZImage
    from modules import shared

    from lib_qwen35.host import active_state, status
    from lib_qwen35.host.forge_neo import detection

    zimage = ZImage(world.text_encoder, world.qwen_tokenizer)
    assert detection.locate(zimage).kind == "not_anima"
    shared.sd_model = zimage
    processed = world.txt2img("1girl", "lowres", enabled=True)
    assert processed.c[0].shape == (1, 8, 2560) and "Qwen35" not in processed.info
    assert not active_state.is_armed() and "not Anima" in status.line() and "zimage_stub" in status.line()
    assert "encode_token_weights" not in vars(zimage.text_processing_engine_qwen)


@pytest.mark.parametrize("attribute", ["text_processing_engine_qwen", "text_processing_engine_anima", "text_processing_engine_t5"])
def test_unknown_anima_engine_stops_the_generation_with_the_specifics(world, attribute):
    from modules import shared

    from lib_qwen35.errors import Qwen35Error
    from lib_qwen35.host import active_state, status
    from lib_qwen35.host.forge_neo import detection

    shared.sd_model = unknown_anima(world, attribute)
    assert detection.locate(shared.sd_model).kind == "unsupported"
    with pytest.raises(Qwen35Error) as err:
        world.txt2img("1girl", "lowres", enabled=True)
    text = str(err.value)
    for part in ("UnknownAnimaEngine", f"module {UnknownAnimaEngine.__module__}", f"sd_model.{attribute}", "neo 2.26",
                 "AnimaTextProcessingEngine.process_tokens", "Qwen06Engine.encode_token_weights", "Fix:", "untick"):
        assert part in text, (part, text)
    assert status.line().startswith("error:") and "UnknownAnimaEngine" in status.line()
    assert not active_state.is_armed()
    off = world.txt2img("1girl", "lowres")  # off: the stock engine runs untouched
    assert "Qwen35" not in off.info and off.c[0].shape == (1, 512, 1024)
    assert "get_learned_conditioning" not in vars(shared.sd_model)  # the guard took itself off


def test_anima_model_without_any_engine_is_unsupported_not_stock(world):
    from modules import shared

    from lib_qwen35.errors import Qwen35Error

    model = world.new_anima("anima_bare")
    delattr(model, model.engine_attr)
    model.get_learned_conditioning = lambda prompts: [torch.zeros(1, 512, 1024) for _ in prompts]
    shared.sd_model = model
    with pytest.raises(Qwen35Error, match="no text engine was found on it"):
        world.txt2img("1girl", "lowres", enabled=True)
    assert "Qwen35" not in world.txt2img("1girl", "lowres").info


def test_reload_to_an_unknown_engine_between_process_and_batch_still_stops(world):
    from modules import processing, shared

    from lib_qwen35.errors import Qwen35Error

    future = unknown_anima(world)
    reloads = []

    def reload():
        reloads.append(1)
        if len(reloads) == 2:   # after Script.process, before this batch's conditioning
            shared.sd_model = future

    processing.model_reload_hook = reload
    with pytest.raises(Qwen35Error, match="UnknownAnimaEngine"):
        world.txt2img("1girl", "lowres", enabled=True)


def test_armed_error_follows_a_model_reload(world, tmp_path):
    """A missing file found in process() must stop the generation on the model Forge reloads afterwards."""
    from modules import processing, shared

    from lib_qwen35.errors import Qwen35Error

    new = world.new_anima("anima_reloaded")
    reloads = []

    def reload():
        reloads.append(1)
        if len(reloads) == 2:
            shared.sd_model = new

    processing.model_reload_hook = reload
    with pytest.raises(Qwen35Error, match="not found"):
        world.txt2img("1girl", "lowres", enabled=True, encoder_file="missing.safetensors")
    assert "get_learned_conditioning" not in vars(new) and "get_learned_conditioning" not in vars(world.anima)


def test_stop_restores_another_extensions_patch(world):
    from modules import shared

    from lib_qwen35.errors import Qwen35Error

    calls = []
    original = shared.sd_model.get_learned_conditioning

    def other_patch(prompts):
        calls.append(prompts)
        return original(prompts)

    shared.sd_model.get_learned_conditioning = other_patch
    with pytest.raises(Qwen35Error):
        world.txt2img("1girl", "lowres", enabled=True, encoder_file="missing.safetensors")
    assert vars(shared.sd_model)["get_learned_conditioning"] is other_patch
    world.txt2img("1girl", "lowres")
    assert calls


def test_a_new_generation_is_one_more_adapter(world, monkeypatch):
    """The controller, hook, caches and infotext do not care which generation is live: an adapter for a
    made-up engine, registered in GENERATIONS, is all it takes."""
    from modules import shared

    from lib_qwen35.host.forge_neo import engines
    from lib_qwen35.host.forge_neo.engines.base import EngineGeneration
    from lib_qwen35.host.forge_neo.text_recovery import recover_text

    class FutureEngine(EngineGeneration):
        name, engine_class, versions, seam_name = "future", "UnknownAnimaEngine", "a future Forge", "__call__"

        def matches(self, engine):
            return isinstance(engine, UnknownAnimaEngine)

        def seam_owner(self, engine):
            return engine

        def replace(self, engine, encode, texts):
            ids = [world.qwen_tokenizer(t)["input_ids"] for t in texts]
            return [s.unsqueeze(0) for s in encode([recover_text(i, world.qwen_tokenizer) for i in ids])]

    monkeypatch.setattr(engines, "GENERATIONS", engines.GENERATIONS + (FutureEngine(),))
    shared.sd_model = unknown_anima(world)
    # the model calls its engine as engine(prompts): route it through the instance attribute we patch
    shared.sd_model.get_learned_conditioning = lambda prompts: shared.sd_model.text_processing_engine_qwen.__dict__.get(
        "__call__", shared.sd_model.text_processing_engine_qwen)(prompts)
    on = world.txt2img("1girl", "lowres", enabled=True)
    assert "Qwen35 TE: on" in on.info and on.c[0].shape[0] == 1 and on.c[0].abs().sum() > 0
    off = world.txt2img("1girl", "lowres")
    assert "Qwen35" not in off.info and torch.count_nonzero(off.c[0]) == 0


def test_alignment_tab_names_an_unknown_anima_engine_instead_of_using_another_stock(world):
    from modules import shared

    from lib_qwen35.host import fit_tab, selection

    assert selection.current().stock_encoder(world.anima).generation.name == EXPECTED[world.generation][0]
    shared.sd_model = unknown_anima(world)
    tab = fit_tab.FitTab()
    result = tab.compare(fit_tab.CompareRequest(prompt="1girl", device="cpu"))
    assert result.error and "UnknownAnimaEngine" in result.error and "Supported engines" in result.error
    view = tab.start(fit_tab.FitRequest(name="try1", device="cpu"))
    assert view.state == "error" and "UnknownAnimaEngine" in view.message
