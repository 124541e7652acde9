"""Generations through the stand-in SD.Next (tests/stubs/sdnext) with a synthetic Qwen3.5 checkpoint: off is
stock bit for bit, on replaces the prompt's and the negative's Qwen3 states in txt2img, img2img and hires,
SD.Next's prompt cache never serves a stale result, batches are padded as stock pads them, and every
failure stops the generation with our message although SD.Next swallows hook and encode exceptions."""

import os

import pytest
import torch

from stubs.forge_neo.fakes import ScriptedEncoder
from stubs.forge_neo.harness import place_weights
from stubs.sdnext.harness import OtherPipeline, sdnext_world


@pytest.fixture
def world(tmp_path):
    with sdnext_world(tmp_path) as w:
        place_weights(w)
        yield w


def lib_states(world, prompt, pad_to=None, **stage):
    """What our encoder gives for `prompt` (optionally padded with Qwen3.5's <|endoftext|> to `pad_to` ids)."""
    from lib_qwen35 import OutputStage, load_encoder
    from lib_qwen35.files.tokenizer import QWEN35_ENDOFTEXT_ID

    encoder = load_encoder(os.path.join(world.models_dir, "qwen35", "qwen35_4b.safetensors"))
    ids = encoder.tokenize(prompt)
    ids = ids + [QWEN35_ENDOFTEXT_ID] * ((pad_to or len(ids)) - len(ids))
    return OutputStage(**stage).apply(encoder.encode_ids(ids))


def adapter_sources(world):
    return world.anima.llm_adapter.sources


def unpatched(world):
    """Our class patches off, as if the extension were not installed."""
    from lib_qwen35.host.sdnext import conditioning_cache, seam, stop

    seam.restore_all()
    stop.restore_all()
    conditioning_cache.restore()


def test_off_is_stock_bit_for_bit(world):
    from lib_qwen35.host.sdnext import seam

    assert seam.is_installed(type(world.anima))   # installed at model load, routing to stock while off
    off = world.txt2img("1girl, masterpiece", "lowres")
    off_img2img = world.img2img("1girl, masterpiece", "lowres")
    unpatched(world)
    assert not seam.is_installed(type(world.anima))
    from modules import sd_hijack_te

    sd_hijack_te.prompt_cache.cache.clear()
    stock = world.txt2img("1girl, masterpiece", "lowres")
    assert torch.equal(off.images[0], stock.images[0]) and off.info == stock.info and "Qwen35" not in off.info
    assert torch.equal(off_img2img.images[0], world.img2img("1girl, masterpiece", "lowres").images[0])


def test_enabled_prompt_and_negative_reach_the_adapter_from_qwen35(world):
    stock = world.txt2img("1girl, from side", "lowres, blurry")
    adapter_sources(world).clear()
    on = world.txt2img("1girl, from side", "lowres, blurry", enabled=True)
    positive, negative = adapter_sources(world)
    assert torch.allclose(positive[0], lib_states(world, "1girl, from side"), atol=1e-6)
    assert torch.allclose(negative[0], lib_states(world, "lowres, blurry"), atol=1e-6)
    assert positive.dtype == world.anima.text_encoder.dtype and positive.device.type == "cpu"
    assert not torch.equal(on.images[0], stock.images[0])
    assert "Qwen35 TE: on" in on.info and "Qwen35 TE hash: " in on.info
    assert world.anima.text_encoder.calls[-1] == ((1, 1), True)   # the stock 0.6B ran on one token only


def test_empty_negative_stays_stock_zeros(world):
    """SD.Next returns zeros for all-empty prompts without running an encoder; so do we."""
    scripted = ScriptedEncoder()
    world.controller.holder._load_encoder = lambda path, dtype, on_cpu=True: scripted
    world.txt2img("1girl", "", enabled=True)
    assert scripted.seen_texts == ["1girl"] and len(adapter_sources(world)) == 1


def test_img2img_and_hires_use_ours_on_the_switched_pipelines(world, monkeypatch):
    from modules import sd_models

    switched = []
    real_switch = sd_models.set_diffuser_pipe

    def set_diffuser_pipe(pipe, task):
        new = real_switch(pipe, task)
        if new is not pipe:
            switched.append(type(new).__name__)
        return new

    monkeypatch.setattr(sd_models, "set_diffuser_pipe", set_diffuser_pipe)
    adapter_sources(world).clear()
    world.img2img("1girl, smile", "lowres", enabled=True)
    assert [s.shape[1] for s in adapter_sources(world)] == [lib_states(world, t).shape[0] for t in ("1girl, smile", "lowres")]
    assert torch.allclose(adapter_sources(world)[0][0], lib_states(world, "1girl, smile"), atol=1e-6)

    adapter_sources(world).clear()
    switched.clear()
    world.txt2img("1girl, smile", "lowres", enabled=True, enable_hr=True, refiner_negative="bad hands")
    assert switched == ["AnimaImageToImagePipeline", "AnimaTextToImagePipeline"]   # hires ran on a new pipeline object
    sources = adapter_sources(world)
    assert len(sources) == 4   # base prompt + negative, hires prompt + negative
    assert torch.allclose(sources[2][0], lib_states(world, "1girl, smile"), atol=1e-6)
    assert torch.allclose(sources[3][0], lib_states(world, "bad hands"), atol=1e-6)   # hires' own negative, not a cache hit


def test_sdnexts_prompt_cache_never_serves_a_stale_result(world):
    first_stock = world.txt2img("1girl, cat ears", "AAA negative")
    stock_b = world.txt2img("1girl, cat ears", "BBB other words")
    assert torch.equal(first_stock.images[0], stock_b.images[0])   # SD.Next's own bug, off: the negative is ignored
    on_a = world.txt2img("1girl, cat ears", "AAA negative", enabled=True)
    assert not torch.equal(on_a.images[0], first_stock.images[0])   # not the cached stock conditioning
    on_b = world.txt2img("1girl, cat ears", "BBB other words", enabled=True)
    assert not torch.equal(on_a.images[0], on_b.images[0])   # while ours is on, the negative is followed
    on_a_again = world.txt2img("1girl, cat ears", "AAA negative", enabled=True)
    assert torch.equal(on_a.images[0], on_a_again.images[0])
    scaled = world.txt2img("1girl, cat ears", "AAA negative", enabled=True, output_scale=0.5)
    assert not torch.equal(scaled.images[0], on_a.images[0])   # other settings of ours: re-encoded
    off_again = world.txt2img("1girl, cat ears", "AAA negative")
    assert torch.equal(off_again.images[0], first_stock.images[0])   # off: stock, bit for bit, never ours from the cache


def test_a_batch_of_different_lengths_is_padded_as_stock_pads(world):
    """Stock pads the Qwen3 ids to the longest with <|endoftext|> and the adapter attends to the encoder's
    states there; ours pads the Qwen3.5 ids with Qwen3.5's <|endoftext|> and keeps our states there."""
    prompts = ["1girl", "1girl, long silver hair, school uniform, cherry blossoms, looking back"]
    stock_tokenizer_calls = world.anima.tokenizer.calls
    world.txt2img(prompts, ["", ""], cfg_scale=1.0, batch_size=2)
    assert len(set(map(len, (world.anima.tokenizer._tok.encode(p) for p in prompts)))) == 2   # stock padded them too
    assert stock_tokenizer_calls[-1] == prompts
    adapter_sources(world).clear()
    world.txt2img(prompts, ["", ""], cfg_scale=1.0, batch_size=2, enabled=True)
    (source,) = adapter_sources(world)
    lengths = [lib_states(world, p).shape[0] for p in prompts]
    assert source.shape == (2, max(lengths), 1024)
    short = lib_states(world, prompts[0], pad_to=max(lengths))
    assert torch.allclose(source[0], short, atol=1e-6)   # padded rows are the encoder's states at <|endoftext|>
    assert torch.allclose(source[0, : lengths[0]], lib_states(world, prompts[0]), atol=1e-4)   # causal: real positions as alone
    assert torch.allclose(source[1], lib_states(world, prompts[1]), atol=1e-6)


def test_an_unknown_seam_stops_the_generation_with_class_method_and_version(world, monkeypatch):
    import installer
    from pipelines.anima.pipeline import AnimaTextToImagePipeline

    from lib_qwen35.errors import Qwen35Error
    from lib_qwen35.host.sdnext import detection

    unpatched(world)
    stock = world.txt2img("1girl", "lowres")

    def _encode_prompt(self, prompt, device, dtype, max_length=512):   # SD.Next renamed a parameter
        return torch.zeros(len(prompt), 512, 1024)

    monkeypatch.setattr(AnimaTextToImagePipeline, "_encode_prompt", _encode_prompt)
    monkeypatch.setitem(installer.version, "updated", "2027-01-02")
    monkeypatch.setitem(installer.version, "commit", "abc1234")
    assert detection.locate(world.anima).kind == "unsupported"
    from modules import sd_hijack_te

    sd_hijack_te.encodes.clear()
    with pytest.raises(Qwen35Error) as error:
        world.txt2img("1girl", "lowres", enabled=True)
    text = str(error.value)
    for part in ("this SD.Next (2027-01-02 abc1234)", "AnimaTextToImagePipeline._encode_prompt(prompt, device, dtype, max_length)",
                 "does not know", "Supported: AnimaTextToImagePipeline._encode_prompt(prompt, device, dtype, max_sequence_length)",
                 "Nothing was generated"):
        assert part in text, part
    assert not sd_hijack_te.encodes   # stopped as the pipeline was called, before it encoded anything
    monkeypatch.undo()
    again = world.txt2img("1girl", "lowres")   # off: the stock path still works afterwards
    assert torch.equal(again.images[0], stock.images[0])


def test_an_encode_failure_stops_the_generation_although_sdnext_swallows_it(world):
    from modules import errors

    from lib_qwen35.errors import Qwen35Error
    from lib_qwen35.host import active_state

    world.controller.holder._load_encoder = lambda path, dtype, on_cpu=True: ScriptedEncoder(fail_with=RuntimeError("boom"))
    with pytest.raises(Qwen35Error) as error:
        world.txt2img("1girl", "lowres", enabled=True)
    assert "encoding failed" in str(error.value) and "boom" in str(error.value)
    assert not isinstance(error.value, (ValueError, RuntimeError))   # SD.Next's process_base would only log those
    assert [task for task, _ in errors.displayed] == ["Encode prompt"]   # SD.Next's hijack logged it and went on
    assert not active_state.is_armed()
    world.controller.holder._load_encoder = lambda path, dtype, on_cpu=True: ScriptedEncoder()
    assert world.txt2img("1girl", "lowres").images   # the next generation works


def test_a_failing_batch_of_two_is_stopped_too(world):
    """Batch 2: the hijack's fallback (the prompt strings) unpacks fine and fails later, elsewhere."""
    from lib_qwen35.errors import Qwen35Error

    world.controller.holder._load_encoder = lambda path, dtype, on_cpu=True: ScriptedEncoder(fail_with=KeyError("bad"))
    with pytest.raises(Qwen35Error, match="encoding failed"):
        world.txt2img(["1girl", "2girls"], ["lowres", "lowres"], batch_size=2, enabled=True)


def test_an_armed_error_stops_before_any_work(world):
    from modules import sd_hijack_te

    from lib_qwen35.errors import WeightsFileError

    sd_hijack_te.encodes.clear()
    with pytest.raises(WeightsFileError) as error:
        world.txt2img("1girl", "lowres", enabled=True, encoder_file="nope.safetensors")
    assert "'nope.safetensors' not found" in str(error.value) and os.path.join(world.models_dir, "Text-encoder") in str(error.value)
    assert not adapter_sources(world) and not sd_hijack_te.encodes
    assert world.txt2img("1girl", "lowres").images


def test_a_pipeline_that_no_longer_calls_the_seam_is_an_error(world):
    from lib_qwen35.errors import Qwen35Error

    world.anima.orig_encode_prompt = lambda *a, **k: (torch.zeros(1, 512, 1024), torch.zeros(1, 512, 1024))   # encoded some other way
    with pytest.raises(Qwen35Error, match=r"AnimaTextToImagePipeline.__call__ .* ran without calling _encode_prompt"):
        world.txt2img("1girl", "lowres", enabled=True)


def test_a_seam_calling_the_text_encoder_twice_is_an_error(world, monkeypatch):
    from pipelines.anima.pipeline import AnimaTextToImagePipeline

    from lib_qwen35.errors import Qwen35Error

    unpatched(world)
    original = AnimaTextToImagePipeline._encode_prompt

    def _encode_prompt(self, prompt, device, dtype, max_sequence_length=512):   # a changed SD.Next
        original(self, prompt, device, dtype, max_sequence_length)
        return original(self, prompt, device, dtype, max_sequence_length)

    monkeypatch.setattr(AnimaTextToImagePipeline, "_encode_prompt", _encode_prompt)
    world.controller.on_model_loaded(world.anima)
    with pytest.raises(Qwen35Error, match="called its text_encoder 2 times"):
        world.txt2img("1girl", "lowres", enabled=True)


def test_a_model_that_is_not_anima_is_left_alone(world):
    from modules import shared

    from lib_qwen35.host import status

    shared.sd_model = OtherPipeline()
    off = world.txt2img("1girl", "lowres")
    on = world.txt2img("1girl", "lowres", enabled=True)
    assert torch.equal(off.images[0], on.images[0]) and "Qwen35" not in on.info
    assert "not Anima (sdxl-base (OtherPipeline))" in status.line()


def test_status_names_the_sdnext_seam(world):
    from lib_qwen35.host import preview, status
    from lib_qwen35.host.params import GenerationParams

    world.txt2img("1girl", "lowres", enabled=True)
    assert "SD.Next AnimaTextToImagePipeline._encode_prompt" in status._state["text"]
    assert "exactly as in stock SD.Next" in preview.describe(world.controller, GenerationParams().as_args())


def test_after_process_disarms_when_postprocess_is_skipped(world):
    """SD.Next skips postprocess for an interrupted generation; its after-process callback still runs."""
    from modules import shared

    from lib_qwen35.host import active_state

    def interrupted(*args, **kwargs):
        shared.state.interrupted = True
        raise RuntimeError("CUDA error: something")   # process_base catches it, marks the generation interrupted

    world.anima.transformer = None
    original = type(world.anima).check_inputs
    type(world.anima).check_inputs = interrupted
    try:
        result = world.txt2img("1girl", "lowres", enabled=True)
    finally:
        type(world.anima).check_inputs = original
    assert result.images == [] and not active_state.is_armed()
