"""The "Qwen3.5 Alignment" tab (fit_tab, fit_encoders, fit_files), with the Forge stand-in as the host: a fit
through the tab logic (progress, cancel, resume, files in the pickers), the compare-with-stock readout, the
stock-file fallback, error messages, and the thin UI script. (Forge's stock-encoder wrapper:
tests/host/forge_neo/test_forge_stock_encoder.py.)"""

import os
import sys
import types

import pytest
import torch

from fits import write_fitted_alignment, write_fitted_pair
from stubs.forge_neo.harness import REPO_ROOT, forge_world, place_weights, write_alignment, write_calibration

TAB_SCRIPT = os.path.join(REPO_ROOT, "scripts", "qwen35_alignment_tab.py")


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        yield w
        sys.modules.pop("qwen35_alignment_tab.py", None)


# ---- a fit through the tab ----------------------------------------------------------------------------

def test_fit_cancel_resume_and_the_files_reach_the_pickers(world):
    from lib_qwen35.host import fit_tab
    from lib_qwen35.model.output_stage import Alignment, Calibration

    place_weights(world)
    request = fit_tab.FitRequest(name="mine", limit=150, batch_size=16, device="cpu", allow_underdetermined=True)
    seen = []

    def cancel_in_the_06b_stage(p):
        seen.append((p.stage, p.done))
        if p.stage == "embed 0.6B":
            tab.cancel()

    tab = fit_tab.FitTab(on_progress=cancel_in_the_06b_stage)
    started = tab.start(request)
    assert started.running, started.message
    view = tab.wait(60)
    assert view.state == "cancelled", view.message
    assert "resume" in view.message and 0.5 <= view.fraction < 1.0
    # counts what is on disk for both encoders: the finished 4B pass, nothing yet of the 0.6B one
    assert "Cached on disk and reused when you run it again: 4B 150/150 prompts, 0.6B 0/150 prompts." in view.message
    assert [s for s, _ in seen][:1] == ["embed 4B"] and seen[-1][0] == "embed 0.6B"
    out_dir = os.path.join(world.models_dir, "qwen35", "mine")
    assert not os.path.exists(os.path.join(out_dir, "rotation_mine.safetensors"))

    tab = fit_tab.FitTab()  # a fresh tab (e.g. after a restart) resumes from the disk cache
    assert tab.start(request).running
    views = list(tab.watch(interval=0.05))
    done = views[-1]
    assert done.state == "done", done.message
    assert done.fraction == 1.0 and done.alignment_name == "rotation_mine.safetensors"
    assert "| **overall** |" in done.report_md and "strength 1.0 + calibration" in done.report_md
    assert "150 from the cache" in done.report_md  # the 4B chunk finished before the cancel was reused
    assert "(150 prompt encodings computed" in done.report_md  # only the 0.6B pass ran again

    # the new files load, are listed by the accordion's pickers, and the cache is not offered as weights
    alignment = Alignment.load(os.path.join(out_dir, "rotation_mine.safetensors"))
    calibration = Calibration.load(os.path.join(out_dir, "calibration_mine.safetensors"))
    # its provenance: a tab fit on the stand-in's random 4B weights is a demo; both hashes recorded and named
    assert alignment.metadata["synthetic"] == "yes" and alignment.metadata["tool"] == "lib_qwen35.fit"
    assert alignment.metadata["content_hash"] == alignment.content_hash
    assert calibration.metadata["alignment_hash"] == alignment.content_hash
    assert f"rotation_mine.safetensors ({alignment.content_hash}) and calibration_mine.safetensors " \
           f"({calibration.content_hash})" in done.message
    assert f"`rotation_mine.safetensors` (hash `{alignment.content_hash}`)" in done.report_md
    assert "SYNTHETIC DEMO" in done.report_md
    assert torch.allclose(alignment.rotation @ alignment.rotation.T, torch.eye(1024), atol=1e-4)
    ctl = world.controller
    assert "rotation_mine.safetensors" in ctl.alignment_choices()
    assert "calibration_mine.safetensors" in ctl.calibration_choices()
    assert ctl.weight_choices() == ["Automatic", "qwen35_4b.safetensors"]
    assert os.listdir(os.path.join(world.models_dir, "qwen35_fit_cache", "mine"))

    processed = world.txt2img("1girl", "lowres", enabled=True, use_alignment=True, alignment_file="rotation_mine.safetensors",
                              use_calibration=True, calibration_file="calibration_mine.safetensors")
    assert "Qwen35 TE alignment file: rotation_mine.safetensors" in processed.info


def test_errors_in_the_fit_thread_end_as_messages(world):
    from lib_qwen35.host import fit_tab

    place_weights(world)
    tab = fit_tab.FitTab()
    assert tab.start(fit_tab.FitRequest(name="small", limit=40, device="cpu")).running
    view = tab.wait(60)
    assert view.state == "error" and not view.running
    assert view.message.startswith("Qwen3.5-4B text encoder (Anima): ") and "too few prompts" in view.message
    assert tab.cancel().message == "No fit is running."


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "..", " ", "x" * 80])
def test_bad_output_name_is_refused(world, name):
    from lib_qwen35.host import fit_tab

    place_weights(world)
    view = fit_tab.FitTab().start(fit_tab.FitRequest(name=name, limit=10))
    assert view.state == "error" and "cannot be used as a folder name" in view.message and "Fix:" in view.message
    assert sorted(os.listdir(os.path.join(world.models_dir, "qwen35"))) == ["qwen35_4b.safetensors"]


def test_unwritable_output_folder_and_missing_inputs(world):
    from backend.diffusion_engine.anima import NotAnima
    from modules import shared

    from lib_qwen35.host import fit_tab

    tab = fit_tab.FitTab()
    view = tab.start(fit_tab.FitRequest(name="a", limit=10))
    assert view.state == "error" and "'qwen35_4b.safetensors' not found" in view.message

    place_weights(world)
    with open(os.path.join(world.models_dir, "qwen35", "taken"), "w") as f:
        f.write("a file where the folder should go")
    view = tab.start(fit_tab.FitRequest(name="taken", limit=10))
    assert view.state == "error" and "cannot write to the output folder" in view.message and "Fix:" in view.message

    view = tab.start(fit_tab.FitRequest(name="a", limit=10, stock_file="nope.safetensors"))
    assert "stock encoder file 'nope.safetensors' not found" in view.message

    shared.sd_model = NotAnima()
    view = tab.start(fit_tab.FitRequest(name="a", limit=10))
    assert view.state == "error" and "no Anima model is loaded and no Qwen3-0.6B file was chosen" in view.message
    result = tab.compare(fit_tab.CompareRequest(prompt="1girl"))
    assert result.raw is None and "no Anima model is loaded" in result.error
    assert result.markdown().startswith("**Error:**")


# ---- compare with stock -----------------------------------------------------------------------------

def test_compare_readout_equals_the_library_function(world):
    from lib_qwen35 import load_encoder
    from lib_qwen35.alignment.compare import compare_with_stock
    from lib_qwen35.host import fit_tab, selection
    from lib_qwen35.model.output_stage import Alignment, Calibration, OutputStage

    weights = place_weights(world)
    rot = write_alignment(os.path.join(world.models_dir, "qwen35", "rot_a.safetensors"), seed=3)
    cal = write_calibration(os.path.join(world.models_dir, "qwen35", "cal_a.safetensors"), seed=4)
    request = fit_tab.CompareRequest(prompt="(1girl:1.3), from above", strength=0.5, use_calibration=True,
                                     alignment_file="rot_a.safetensors", calibration_file="cal_a.safetensors", device="cpu")
    result = fit_tab.FitTab().compare(request)
    assert result.error is None, result.error
    assert result.prompt_text == "1girl, from above"  # emphasis syntax parsed away, as in a generation

    e4 = load_encoder(weights, device="cpu", dtype=torch.float32)
    e6 = selection.current().stock_encoder(world.anima)
    text = result.prompt_text
    a, c = Alignment.load(rot), Calibration.load(cal)
    assert result.raw == pytest.approx(compare_with_stock(text, e4, e6, None), abs=1e-6)
    assert result.aligned == pytest.approx(compare_with_stock(text, e4, e6, OutputStage(a, strength=0.5)), abs=1e-6)
    assert result.calibrated == pytest.approx(compare_with_stock(text, e4, e6, OutputStage(a, strength=0.5, calibration=c)), abs=1e-6)
    assert len({round(result.raw, 4), round(result.aligned, 4), round(result.calibrated, 4)}) == 3
    stronger = fit_tab.FitTab().compare(fit_tab.CompareRequest(prompt="(1girl:1.3), from above", strength=1.0,
                                                               alignment_file="rot_a.safetensors", device="cpu"))
    assert stronger.aligned != pytest.approx(result.aligned, abs=1e-6) and stronger.calibrated is None
    md = result.markdown()
    assert f"{result.aligned:.4f}" in md and "rot_a.safetensors" in md and "cal_a.safetensors" in md


def test_compare_puts_two_alignment_files_side_by_side(world):
    from lib_qwen35.host import fit_tab

    weights = place_weights(world)
    hashes_a = write_fitted_pair(os.path.join(world.models_dir, "qwen35", "a", "rotation_a.safetensors"),
                                 os.path.join(world.models_dir, "qwen35", "a", "calibration_a.safetensors"), weights, seed=1)
    hash_b = write_fitted_alignment(os.path.join(world.models_dir, "qwen35", "b", "rotation_b.safetensors"), weights,
                                    seed=2, encoder_hash="0000000000")
    tab = fit_tab.FitTab()
    base = {"prompt": "1girl, from above", "device": "cpu", "use_calibration": True,
            "calibration_file": "calibration_a.safetensors"}
    only_a = tab.compare(fit_tab.CompareRequest(alignment_file="rotation_a.safetensors", **base))
    only_b = tab.compare(fit_tab.CompareRequest(alignment_file="rotation_b.safetensors", **{**base, "use_calibration": False}))
    both = tab.compare(fit_tab.CompareRequest(alignment_file="rotation_a.safetensors", alignment_file_b="rotation_b.safetensors",
                                              **base))
    assert both.error is None and len(both.columns) == 2 and len(only_a.columns) == 1
    assert both.raw == only_a.raw == only_b.raw
    a, b = both.columns
    assert (a.aligned, a.calibrated) == (only_a.aligned, only_a.calibrated) and a.aligned != b.aligned
    assert b.aligned == only_b.aligned and b.calibrated is None              # no second calibration picked
    md = both.markdown()
    assert f"| 4B output | A: rotation_a.safetensors ({hashes_a[0]}) | B: rotation_b.safetensors ({hash_b}) |" in md
    assert f"| aligned + calibrated | {a.calibrated:.4f} | – |" in md
    assert "- A: Alignment rotation_a.safetensors" in md and "the encoder file picked above" in md
    assert "- B: Warning: alignment rotation_b.safetensors" in md and "(0000000000)" in md
    single = only_a.markdown()
    assert "| 4B output | cosine with stock 0.6B |" in single and "fitted on qwen35_4b.safetensors" in single


def test_compare_without_alignment_file_and_with_a_broken_one(world):
    from lib_qwen35.host import fit_tab

    place_weights(world)
    result = fit_tab.FitTab().compare(fit_tab.CompareRequest(prompt="1girl", device="cpu"))
    assert result.error is None and result.raw is not None and result.aligned is None
    assert "No alignment file found" in result.markdown()

    write_alignment(os.path.join(world.models_dir, "qwen35", "bad.safetensors"), orthogonal=False)
    result = fit_tab.FitTab().compare(fit_tab.CompareRequest(prompt="1girl", alignment_file="bad.safetensors", device="cpu"))
    assert "cannot use the alignment file" in result.error and "orthogonal" in result.error


def test_stock_file_fallback_when_no_anima_model_is_loaded(world):
    from backend.diffusion_engine.anima import NotAnima
    from modules import shared

    from lib_qwen35.alignment.compare import compare_with_stock
    from lib_qwen35.files.tokenizer import load_qwen3_tokenizer
    from lib_qwen35.host import fit_tab
    from lib_qwen35.model.qwen3 import Qwen3Encoder
    from lib_qwen35.synthetic.qwen3 import SmallVocabTokenizer, write_checkpoint

    place_weights(world)
    shared.sd_model = NotAnima()
    stock_path = write_checkpoint(os.path.join(world.models_dir, "text_encoder", "qwen_3_06b_base.safetensors"),
                                  vocab_size=512, hidden_size=1024, intermediate_size=64, num_layers=1,
                                  num_attention_heads=4, num_key_value_heads=2, head_dim=32)
    loaded = []

    def loader(path, placement):  # a tiny vocabulary needs folded ids; a real file uses load_qwen3_encoder
        loaded.append((path, placement.device.type))
        return Qwen3Encoder(path, tokenizer=SmallVocabTokenizer(load_qwen3_tokenizer(), 512))

    tab = fit_tab.FitTab(stock_file_loader=loader)
    assert tab.stock_choices() == [fit_tab.STOCK_AUTOMATIC, "qwen_3_06b_base.safetensors"]
    assert "qwen_3_06b_base.safetensors" not in tab.weight_choices()
    result = tab.compare(fit_tab.CompareRequest(prompt="1girl, smile", device="cpu"))
    assert result.error is None, result.error
    assert loaded == [(stock_path, "cpu")]
    from lib_qwen35 import load_encoder
    e4 = load_encoder(os.path.join(world.models_dir, "qwen35", "qwen35_4b.safetensors"), device="cpu", dtype=torch.float32)
    e6 = loader(stock_path, types.SimpleNamespace(device=torch.device("cpu")))
    assert result.raw == pytest.approx(compare_with_stock("1girl, smile", e4, e6, None), abs=1e-6)

    chosen = tab.compare(fit_tab.CompareRequest(prompt="1girl", stock_file="qwen_3_06b_base.safetensors", device="cpu"))
    assert chosen.error is None and loaded[-1][0] == stock_path


# ---- the UI script -----------------------------------------------------------------------------------

def test_tab_script_registers_the_tab_and_its_handlers_never_raise(world):
    from modules import script_callbacks, scripts

    from lib_qwen35.host import fit_tab

    fit_tab._tab = None
    scripts.load_module(TAB_SCRIPT)
    (block, title, elem_id), = script_callbacks.ui_tabs_callback()
    assert title == "Qwen3.5 Alignment" and elem_id == "qwen35_alignment_tab"

    def walk(b):
        yield b
        for child in b.children:
            yield from walk(child)

    by_id = {b.elem_id: b for b in walk(block) if b.elem_id}
    for needed in ("qwen35_fit_limit", "qwen35_fit_batch_size", "qwen35_fit_device", "qwen35_fit_name", "qwen35_fit_start",
                   "qwen35_fit_cancel", "qwen35_fit_progress", "qwen35_fit_report", "qwen35_cmp_prompt",
                   "qwen35_cmp_strength", "qwen35_cmp_use_calibration", "qwen35_cmp_readout"):
        assert needed in by_id, needed

    def handler(elem):
        (_, fn, inputs, outputs), = by_id[elem].listeners
        return fn, inputs, outputs

    fn, inputs, outputs = handler("qwen35_fit_start")
    values = {c.elem_id: c.value for c in inputs}
    values["qwen35_fit_name"] = "../bad"
    yielded = list(fn(*[values[c.elem_id] for c in inputs]))  # no weights, bad name: a message, no exception
    assert len(yielded) == 1 and len(yielded[0]) == len(outputs)
    assert "cannot be used as a folder name" in yielded[0][1]

    fn, inputs, outputs = handler("qwen35_cmp_run")
    readout = fn(*[c.value for c in inputs])
    assert readout.startswith("**Error:**") and "not found" in readout

    fn, _, outputs = handler("qwen35_fit_cancel")
    assert "No fit is running." in fn()[1]


def test_a_model_change_during_the_fit_stops_it_with_a_message(world):
    from backend.diffusion_engine.anima import NotAnima
    from modules import shared

    from lib_qwen35.host import fit_tab

    place_weights(world)

    def swap_model(p):
        if p.stage == "embed 4B" and p.done >= 32:
            shared.sd_model = NotAnima()  # as if the user loaded another checkpoint

    tab = fit_tab.FitTab(on_progress=swap_model)
    assert tab.start(fit_tab.FitRequest(name="swap", limit=60, batch_size=16, device="cpu", allow_underdetermined=True)).running
    view = tab.wait(60)
    assert view.state == "error" and "loaded Anima model changed" in view.message
