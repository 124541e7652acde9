"""The "Qwen3.5 Alignment" tab in the stand-in SD.Next: the loaded pipeline's stock Qwen3-0.6B (its own
tokenizer and text encoder, never our patch), a short fit and the compare readout, and the tab's UI built."""

import pytest
import torch

from stubs.forge_neo.harness import place_weights
from stubs.sdnext.harness import sdnext_world

PROMPTS = ["1girl, from above, full body", "A witch, seen from the side.", "", "masterpiece, best quality, 2boys"]


@pytest.fixture
def world(tmp_path):
    with sdnext_world(tmp_path, load_tab=True) as w:
        place_weights(w)
        yield w


def test_the_stock_encoder_is_the_pipelines_own_even_while_ours_is_armed(world):
    from modules import call_queue

    from lib_qwen35.host import active_state, selection

    active_state.arm(lambda texts, **kw: [torch.full((3, 1024), 7.0) for _ in texts])
    try:
        stock = selection.current().stock_encoder(world.anima)
        ids = [stock.tokenize(p) for p in PROMPTS]
        locked = []
        forward = world.anima.text_encoder.forward
        world.anima.text_encoder.forward = lambda *a, **k: (locked.append(call_queue.queue_lock.locked()), forward(*a, **k))[1]
        outs = stock.encode_batch(ids)
    finally:
        active_state.disarm()
    assert locked == [True] and ids[2] == [151643]
    assert ids[0] == world.anima.tokenizer(["1girl, from above, full body"])["input_ids"][0]
    for row, out in zip(ids, outs):
        alone = world.anima.text_encoder(input_ids=torch.tensor([row]), attention_mask=torch.ones(1, len(row), dtype=torch.long)).last_hidden_state[0]
        assert out.dtype == torch.float32 and torch.equal(out, alone)   # padding changes nothing; never the 7s
    assert stock.generation_text("(x:1.2) [a:b:0.5] BREAK") == "(x:1.2) [a:b:0.5] BREAK"   # SD.Next parses nothing
    assert stock.identity.startswith("sdnext-stock-qwen3|") and stock.identity == selection.current().stock_encoder(world.anima).identity


def test_compare_and_a_short_fit_run_against_the_sdnext_pipeline(world):
    from lib_qwen35.host import fit_tab

    result = fit_tab.FitTab().compare(fit_tab.CompareRequest(prompt="1girl, smile", device="cpu"))
    assert result.error is None and -1.0 <= result.raw <= 1.0 and result.prompt_text == "1girl, smile"
    tab = fit_tab.FitTab()
    assert tab.start(fit_tab.FitRequest(name="sdn", limit=40, batch_size=16, device="cpu", allow_underdetermined=True)).running
    done = list(tab.watch(interval=0.05))[-1]
    assert done.state == "done", done.message
    assert "rotation_sdn.safetensors" in world.controller.alignment_choices()


def test_the_tab_builds_in_sdnexts_ui(world):
    from modules import script_callbacks

    ((block, title, elem_id),) = script_callbacks.ui_tabs_callback()
    assert (title, elem_id) == ("Qwen3.5 Alignment", "qwen35_alignment_tab") and block.children
