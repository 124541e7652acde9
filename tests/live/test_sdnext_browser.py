"""The extension as an SD.Next user meets it: real SD.Next (CPU, gradio 3.43, the harness's tiny Anima), real
web UI, driven by Debian's Chromium.

    SDNEXT_E2E_ROOT=~/.cache/sdnext_e2e flock /tmp/forge_run.lock python -m pytest tests/live/test_sdnext_browser.py -s
    (or SDNEXT_LOCK=/tmp/forge_run.lock instead of `flock`: the test takes the lock itself; never both)
    QWEN35_BROWSER_RUNS=DIR keeps the run (server log, pictures after each step) there

On one server with the extension installed (symlinked, as a clone would be) and a small synthetic Qwen3.5
checkpoint as models/qwen35/qwen35_4b.safetensors, in this order:
  - the accordion is there (txt2img, img2img, in "Extensions") and its status follows a tick and a file;
  - a stock generation with the accordion off;
  - an error (a missing weights file) reaches the error box under the gallery and the status; the next
    generation, fixed, works: our infotext keys, a different image;
  - Process (SD.Next's PNG Info) -> "Text" restores the accordion (off from a stock image, on from ours);
  - the XYZ Grid Script over [Qwen3.5 TE] On/Off: its cells are pixel-identical to the two single images;
  - the XYZ Grid Script over [Qwen3.5 TE] Alignment file (None and a fit): the None cell is our single image, the
    fit's cell differs;
  - the settings section and the alignment tab are there; compare with stock answers.
Skipped unless SDNEXT_E2E_ROOT is set (tests/live/sdnext/server.py), and without Playwright or Chromium.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import time

import pytest

from live import browser
from live.sdnext import server, ui
from repo import ROOT

REPO_ROOT = str(ROOT)
WHY_NOT = server.why_not()

pytestmark = [pytest.mark.skipif(bool(WHY_NOT), reason=WHY_NOT or "no SD.Next"), *browser.NEEDS]

ACC = browser.ACCORDION
PROMPT, NEGATIVE, SEED = "1girl, solo, cat ears, looking at viewer, masterpiece", "worst quality, low quality", 1234


@dataclasses.dataclass
class Session:
    run_dir: str
    sdnext: server.SDNextServer
    page: object
    stock: dict | None = None
    ours: dict | None = None
    timings: dict = dataclasses.field(default_factory=dict)
    error_window: tuple = (0, 0)   # where in the server log the step that must fail wrote

    def log(self, step: str, seconds: float, note: str = "") -> None:
        self.timings[step] = round(seconds, 1)
        print(f"[browser e2e] sdnext: {step} {seconds:.1f}s {note}".rstrip(), flush=True)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    keep = os.environ.get("QWEN35_BROWSER_RUNS")
    run_dir = os.path.join(keep, f"sdnext-{time.strftime('%Y%m%d-%H%M%S')}") if keep else str(tmp_path_factory.mktemp("sdnext-browser"))
    os.makedirs(run_dir, exist_ok=True)
    from lib_qwen35.synthetic.qwen35 import write_checkpoint

    weights = os.path.join(server.ROOT, "models", "qwen35", "qwen35_4b.safetensors")
    if not os.path.exists(weights):
        os.makedirs(os.path.dirname(weights), exist_ok=True)
        write_checkpoint(weights, seed=0)
    with server.machine_lock():
        sdnext = server.SDNextServer(os.path.join(run_dir, "ui"), extensions=[REPO_ROOT])
        try:
            started = sdnext.start()
            sdnext.select_anima()
            t0 = time.time()
            with browser.browser_page(sdnext.url) as page:
                s = Session(run_dir, sdnext, page)
                s.log("server start", started)
                s.log("page ready", time.time() - t0)
                yield s
                log = sdnext.log()
                print(f"[browser e2e] sdnext: timings {s.timings}; server peak RSS {sdnext.peak_rss_gib()} GiB; run folder {run_dir}", flush=True)
                start, end = s.error_window
                for part in (log[:start], log[end:]):   # our error's traceback is expected, nothing else
                    assert "Traceback" not in part and "Running script" not in part, part[part.find("Traceback"):][:3000]
        finally:
            sdnext.stop()


@pytest.fixture(autouse=True)
def _picture_after_each_step(request, session):
    yield
    browser.picture(session.page, session.run_dir, request.node.name)


def _prepare_prompt(page) -> None:
    browser.tab(page, "Text")
    browser.fill_text(page, "txt2img_prompt", PROMPT)
    browser.fill_text(page, "txt2img_neg_prompt", NEGATIVE)
    for elem_id, value in (("txt2img_width", 64), ("txt2img_height", 64), ("txt2img_steps", 2), ("txt2img_seed", SEED)):
        ui.reveal(page, elem_id)
        browser.set_number(page, elem_id, value)


def _open_ours(page) -> None:
    ui.reveal(page, f"{ACC}_status")


def test_accordion_is_there_and_its_status_follows_the_controls(session):
    page = session.page
    t0 = time.time()
    assert page.locator("#script_img2img_qwen354b_text_encoder_anima_enabled").count() >= 1
    _open_ours(page)
    assert browser.status(page).startswith("Off: prompts are encoded by the stock Qwen3-0.6B encoder, exactly as in stock SD.Next.")
    browser.set_checkbox(page, f"{ACC}_enabled_checkbox", True)
    browser.wait_text(page, f"{ACC}_status", r"^On: the next generation encodes with qwen35_4b\.safetensors \(\w{10}\) on cpu fp32")
    browser.choose(page, f"{ACC}_encoder_file", "missing.safetensors")
    browser.wait_text(page, f"{ACC}_status", r"^On, but the next generation will stop: .*'missing\.safetensors' not found.*Text-encoder.*Fix:")
    browser.choose(page, f"{ACC}_encoder_file", "Automatic")
    browser.wait_text(page, f"{ACC}_status", r"^On: the next generation encodes with qwen35_4b")
    browser.set_checkbox(page, f"{ACC}_enabled_checkbox", False)
    browser.wait_text(page, f"{ACC}_status", r"^Off: ")
    session.log("accordion + live status", time.time() - t0)


def test_stock_generation_with_the_accordion_off(session):
    page = session.page
    _prepare_prompt(page)
    result = ui.generate(page)
    assert result["images"], result["log"]
    assert f"Seed: {SEED}" in result["infotext"] and "Size: 64x64" in result["infotext"] and "Qwen35" not in result["infotext"]
    session.stock = browser.image(page, result)
    assert (session.stock["image"].width, session.stock["image"].height) == (64, 64)
    browser.wait_text(page, f"{ACC}_status", "Last generation: off")
    session.log("stock generation", result["seconds"])


def test_an_error_reaches_the_user_and_the_next_generation_works(session):
    page = session.page
    browser.need(session.stock, "the stock image")
    _open_ours(page)
    browser.set_checkbox(page, f"{ACC}_enabled_checkbox", True)
    browser.choose(page, f"{ACC}_encoder_file", "missing.safetensors")
    start = len(session.sdnext.log())
    failed = ui.generate(page)
    session.error_window = (start, len(session.sdnext.log()))
    assert "Qwen3.5-4B text encoder (Anima): encoder weights file 'missing.safetensors' not found" in failed["log"], failed
    assert "Fix:" in failed["log"]
    browser.wait_text(page, f"{ACC}_status", r"Last generation: error: Qwen3\.5-4B text encoder \(Anima\): encoder weights file 'missing\.safetensors' not found")
    session.log("failed generation", failed["seconds"])

    browser.choose(page, f"{ACC}_encoder_file", "Automatic")
    result = ui.generate(page)
    assert result["images"], result["log"]
    for key in ("Qwen35 TE: on", "Qwen35 TE file: qwen35_4b.safetensors", "Qwen35 TE hash: ", "Qwen35 TE alignment: off",
                "Qwen35 TE calibration: off", "Qwen35 TE scale: 1"):
        assert key in result["infotext"], result["infotext"]
    session.ours = browser.image(page, result)
    changed = session.ours["image"].differing_fraction(session.stock["image"])
    assert changed > 0.5, f"the 4B conditioning changed only {changed:.1%} of the pixels"
    browser.wait_text(page, f"{ACC}_status", r"Last generation: active: qwen35_4b\.safetensors")
    session.log("generation with the extension", result["seconds"], f"({changed:.1%} of pixels differ from stock)")


def test_process_tab_send_to_text_restores_the_accordion(session):
    page = session.page
    browser.need(session.ours, "our image")
    t0 = time.time()
    for source, expect_on in ((session.stock, False), (session.ours, True)):
        path = os.path.join(session.run_dir, f"pasted-{'ours' if expect_on else 'stock'}.png")
        with open(path, "wb") as f:
            f.write(source["png"])
        browser.tab(page, "Process")
        page.locator("#extras_image input[type=file]").first.set_input_files(path)
        wanted = r"Qwen35 TE: on" if expect_on else rf"^(?![\s\S]*Qwen35)[\s\S]*{SEED}"
        browser.wait_text(page, "html_info_formatted_extras", wanted, shown=True)
        page.locator("#copy_buttons_process #txt2img_tab").first.click()
        time.sleep(3)
        _open_ours(page)
        assert browser.checkbox_value(page, f"{ACC}_enabled_checkbox") is expect_on
        if expect_on:
            assert browser.dropdown_value(page, f"{ACC}_encoder_file") == "qwen35_4b.safetensors"
            browser.wait_text(page, f"{ACC}_status", r"^On: the next generation encodes with qwen35_4b\.safetensors")
        else:
            browser.wait_text(page, f"{ACC}_status", r"^Off: ")
    assert browser.text_of(page, "txt2img_prompt") == PROMPT
    session.log("Process tab -> Text paste", time.time() - t0)


def _xyz_grid(page, axis: str, values: str, enabled: bool):
    """A one-row X/Y/Z grid over `axis` (its values typed as text) with the accordion on or off, generated; returns
    the result and its two 64x64 cells. The caller puts the script list back to None."""
    _prepare_prompt(page)
    _open_ours(page)
    browser.set_checkbox(page, f"{ACC}_enabled_checkbox", enabled)
    browser.choose(page, "txt2img_script_list", "XYZ Grid Script")
    browser.choose(page, "script_txt2img_xyz_grid_script_x_type", axis)
    # an axis with choices shows a multiselect without an id; "Use text inputs" brings the values box back
    browser.set_checkbox(page, "script_txt2img_xyz_grid_script_csv_mode", True)
    browser.fill_text(page, "script_txt2img_xyz_grid_script_x_values", values)
    browser.set_checkbox(page, "script_txt2img_xyz_grid_script_include_lone_images", True)
    result = ui.generate(page)
    images = [browser.image(page, result, i)["image"] for i in range(len(result["images"]))]
    cells = [im for im in images if (im.width, im.height) == (64, 64)]
    assert len(cells) == 2, (len(result["images"]), [(im.width, im.height) for im in images])
    return result, cells


def test_xyz_grid_on_off_cells_equal_the_single_images(session):
    page = session.page
    stock, ours = browser.need(session.stock, "the stock image"), browser.need(session.ours, "our image")
    try:
        result, cells = _xyz_grid(page, "[Qwen3.5 TE] On/Off", "Off, On", enabled=False)   # the axis decides
        assert cells[0].rgb == stock["image"].rgb, "the Off cell differs from the stock image"
        assert cells[1].rgb == ours["image"].rgb, "the On cell differs from the image made with the accordion"
        session.log("XYZ On/Off grid", result["seconds"])
    finally:
        browser.choose(page, "txt2img_script_list", "None")


def test_xyz_grid_over_alignment_files(session):
    """The axis of issue 22, typed as text ("Use text inputs"): None is the accordion's own image (alignment off), a
    fit's cell uses that file. The fit is written for the server's (synthetic) encoder file, so it is no demo here."""
    from fits import write_fitted_alignment

    page = session.page
    ours = browser.need(session.ours, "our image")
    folder = os.path.join(server.ROOT, "models", "qwen35", "browser_xyz")
    os.makedirs(folder, exist_ok=True)
    write_fitted_alignment(os.path.join(folder, "rotation_browser_xyz.safetensors"),
                           os.path.join(server.ROOT, "models", "qwen35", "qwen35_4b.safetensors"), seed=21)
    try:
        result, cells = _xyz_grid(page, "[Qwen3.5 TE] Alignment file", "None, rotation_browser_xyz.safetensors",
                                  enabled=True)
        assert cells[0].rgb == ours["image"].rgb, "the None cell differs from the image made with the accordion"
        assert cells[1].rgb != ours["image"].rgb, "the alignment file's cell is the image without alignment"
        session.log("XYZ alignment-file grid", result["seconds"])
    finally:
        browser.choose(page, "txt2img_script_list", "None")
        browser.set_checkbox(page, f"{ACC}_enabled_checkbox", False)
        shutil.rmtree(folder, ignore_errors=True)


def test_settings_section_and_alignment_tab(session):
    page = session.page
    browser.need(session.stock, "a loaded Anima model")
    t0 = time.time()
    browser.tab(page, "System")
    for elem_id in ("setting_qwen35_te_search_dirs", "setting_qwen35_te_device", "setting_qwen35_te_dtype",
                    "setting_qwen35_te_keep_resident", "setting_qwen35_te_embedding_cache_size", "setting_qwen35_te_encoder_cache_size"):
        assert page.locator(f"#{elem_id}").count() >= 1, elem_id
    browser.tab(page, "Qwen3.5 Alignment")   # a small fit against SD.Next's loaded stock encoder, then compare
    browser.set_number(page, "qwen35_fit_limit", 200)
    browser.set_number(page, "qwen35_fit_batch_size", 8)
    page.locator("#qwen35_fit_device label", has_text="cpu").first.click()
    browser.fill_text(page, "qwen35_fit_name", "sdnext_fit")
    browser.set_checkbox(page, "qwen35_fit_allow_underdetermined", True)
    page.locator("#qwen35_fit_start").first.click()
    browser.wait_text(page, "qwen35_fit_message", r"^Done\.", timeout_ms=900_000)
    assert "rotation_sdnext_fit.safetensors" in browser.text_of(page, "qwen35_fit_report")
    session.log("alignment tab fit (200 prompts)", time.time() - t0)
    browser.fill_text(page, "qwen35_cmp_prompt", PROMPT)
    assert browser.dropdown_value(page, "qwen35_cmp_alignment_file") == "rotation_sdnext_fit.safetensors"
    page.locator("#qwen35_cmp_run").first.click()
    readout = browser.wait_text(page, "qwen35_cmp_readout", r"aligned\s+-?\d\.\d{4}", timeout_ms=300_000, shown=True)
    assert re.search(r"raw \(no alignment\)\s+-?\d\.\d{4}", readout), readout
    session.log("settings + alignment tab", time.time() - t0)
