"""The extension as a user meets it: real Forge Neo (CPU), real web UI, driven by Debian's Chromium.

    flock /tmp/forge_run.lock env FORGE_NEO_E2E_ROOT=~/.cache/forge_neo_e2e \\
        python -m pytest tests/live/test_forge_neo_browser.py -s            # every engine tree, ~6 min each
    ... -k legacy   (-k qwen06-anima, -k "qwen06 and not anima")       # one tree
    QWEN35_SCREENSHOTS=docs (beside FORGE_NEO_E2E_ROOT) ... -k legacy  # also (re)make the README pictures
    QWEN35_BROWSER_RUNS=DIR                                           # keep logs and per-step pictures there
    FORGE_NEO_LOCK=/tmp/forge_run.lock instead of `flock`: the test takes the lock itself (never both on
    one file: the test would wait for the lock its own parent holds)

Per Forge tree (the harness's legacy neo-2.26 / qwen06 / qwen06-anima text-engine generations, or the one
tree FORGE_NEO_DIR names), in this order, on one server with the extension installed (symlinked, as a
clone would be) and a small synthetic Qwen3.5 checkpoint as models/qwen35/qwen35_4b.safetensors:
  - the accordion is there (txt2img, img2img) and its status follows a tick and a picked file at once;
  - a stock generation with the accordion off;
  - an error (a missing weights file) reaches the message under the gallery and the status, and the
    next generation, fixed, works: our infotext keys, a different image;
  - PNG Info -> Send to txt2img restores the accordion (off from a stock image, on from ours);
  - an X/Y/Z grid of [Qwen3.5 TE] On/Off whose cells are pixel-identical to the two single images;
  - the Settings section: an extra folder, applied, shows its weights file in the accordion's picker;
  - the alignment tab: a small fit, Cancel in the 0.6B stage (the message counts both encoders' cache),
    Start again resumes from the cache, the report, compare with stock, the fitted file in the accordion;
  - last, on a second server without the extension: the stock image is pixel-identical to ours.
Images come from random weights: they show the plumbing and the UI, never quality.

Skipped unless FORGE_NEO_E2E_ROOT or FORGE_NEO_DIR is set (tests/live/forge_neo/server.py), and without
Playwright for Python or Chromium. Never `playwright install`: Debian's chromium is used.
One module of some 400 lines: its steps run in this order on one server per tree, each building on the last.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import time

import pytest

from live import browser, png
from live.forge_neo import picture, server, ui
from repo import ROOT

REPO_ROOT = str(ROOT)
SETUPS, WHY_NOT = server.setups()

pytestmark = [pytest.mark.skipif(not SETUPS, reason=WHY_NOT or "no Forge Neo"), *browser.NEEDS]

ACC = browser.ACCORDION
PROMPT, NEGATIVE, SEED = "1girl, solo, cat ears, looking at viewer, masterpiece", "worst quality, low quality", 1234
FIT_PROMPTS, FIT_NAME = 200, "browser_fit"
SCREENSHOTS = os.environ.get("QWEN35_SCREENSHOTS", "")
SCREENSHOT_ENGINE = os.environ.get("QWEN35_SCREENSHOTS_ENGINE", "legacy")
PICTURE_LIMIT = 200 * 1024


@dataclasses.dataclass
class Session:
    setup: server.ForgeSetup
    run_dir: str
    forge: server.ForgeServer
    page: object
    stock: dict | None = None        # {"infotext", "image": png.Image, "png": bytes}
    ours: dict | None = None
    timings: dict = dataclasses.field(default_factory=dict)

    def pictures(self) -> str | None:
        """Where to write the README pictures, for the one engine tree that makes them."""
        if SCREENSHOTS and self.setup.engine in (SCREENSHOT_ENGINE, os.path.basename(os.environ.get("FORGE_NEO_DIR", "")) or None):
            return os.path.join(REPO_ROOT, SCREENSHOTS) if not os.path.isabs(SCREENSHOTS) else SCREENSHOTS
        return None

    def log(self, step: str, seconds: float, note: str = "") -> None:
        self.timings[step] = round(seconds, 1)
        print(f"[browser e2e] {self.setup.engine}: {step} {seconds:.1f}s {note}".rstrip(), flush=True)


@pytest.fixture(scope="module", params=SETUPS, ids=[s.engine for s in SETUPS])
def session(request, tmp_path_factory):
    setup = request.param
    keep = os.environ.get("QWEN35_BROWSER_RUNS")   # a folder to keep the runs' logs and pictures in
    if keep:
        run_dir = os.path.join(keep, f"{setup.engine}-{time.strftime('%Y%m%d-%H%M%S')}")
        os.makedirs(run_dir)
    else:
        run_dir = str(tmp_path_factory.mktemp(f"forge-browser-{setup.engine}"))
    with server.machine_lock():
        forge = server.ForgeServer(setup, os.path.join(run_dir, "ui"), extensions=[REPO_ROOT])
        weights = os.path.join(forge.data_dir, "models", "qwen35", "qwen35_4b.safetensors")
        _synthetic_weights(weights, seed=0)
        try:
            started = forge.start()
            forge.select_anima()
            t0 = time.time()
            with browser.browser_page(forge.url) as page:
                s = Session(setup, run_dir, forge, page)
                s.log("server start", started)
                s.log("page ready", time.time() - t0)
                yield s
                print(f"[browser e2e] {setup.engine}: timings {json.dumps(s.timings)}; UI server peak RSS "
                      f"{forge.peak_rss_gib()} GiB; run folder {run_dir}", flush=True)
        finally:
            forge.stop()


@pytest.fixture(autouse=True)
def _picture_after_each_step(request, session):
    """The page after every step, in the run folder: what a failure looked like."""
    yield
    browser.picture(session.page, session.run_dir, request.node.name)


def _synthetic_weights(path: str, seed: int) -> str:
    from lib_qwen35.synthetic.qwen35 import write_checkpoint

    os.makedirs(os.path.dirname(path), exist_ok=True)
    return write_checkpoint(path, seed=seed)


def _prepare_prompt(page) -> None:
    browser.tab(page, "txt2img")
    browser.fill_text(page, "txt2img_prompt", PROMPT)
    browser.fill_text(page, "txt2img_neg_prompt", NEGATIVE)
    for elem_id, value in (("txt2img_width", 64), ("txt2img_height", 64), ("txt2img_steps", 1)):
        browser.set_number(page, elem_id, value)
    browser.set_number(page, "txt2img_seed", SEED)


# ---- the accordion --------------------------------------------------------------------------------------

def test_accordion_is_there_and_its_status_follows_the_controls(session):
    page = session.page
    t0 = time.time()
    assert page.locator("#script_img2img_qwen354b_text_encoder_anima_enabled").count() == 1
    assert page.locator(f"#{ACC}_enabled .label-wrap").first.inner_text().strip().startswith("Qwen3.5-4B text encoder (Anima)")
    assert browser.status(page).startswith("Off: prompts are encoded by the stock Qwen3-0.6B encoder")
    browser.set_checkbox(page, f"{ACC}_enabled-visible-checkbox", True)   # no generation in between
    status = browser.wait_text(page, f"{ACC}_status", r"^On: the next generation encodes with qwen35_4b\.safetensors \(\w{10}\) on cpu fp32")
    # Forge loads the checkpoint at the first generation; until then the status says what it needs
    assert "(no model is loaded yet; it must be an Anima model)." in status
    assert status.endswith("Last generation: none yet in this session")
    ui.open_accordion(page, f"{ACC}_enabled")
    browser.choose(page, f"{ACC}_encoder_file", "missing.safetensors")
    browser.wait_text(page, f"{ACC}_status", r"^On, but the next generation will stop: .*'missing\.safetensors' not found.*Fix:")
    browser.choose(page, f"{ACC}_encoder_file", "Automatic")
    browser.wait_text(page, f"{ACC}_status", r"^On: the next generation encodes with qwen35_4b")
    browser.set_checkbox(page, f"{ACC}_enabled-visible-checkbox", False)
    browser.wait_text(page, f"{ACC}_status", r"^Off: ")
    session.log("accordion + live status", time.time() - t0)


def test_stock_generation_with_the_accordion_off(session):
    page = session.page
    _prepare_prompt(page)
    result = ui.generate(page)
    assert result["images"], result["log"]
    assert f"Seed: {SEED}" in result["infotext"] and "Size: 64x64" in result["infotext"]
    assert "Qwen35" not in result["infotext"]
    session.stock = browser.image(page, result)
    assert (session.stock["image"].width, session.stock["image"].height) == (64, 64)
    assert browser.wait_text(page, f"{ACC}_status", "Last generation: off").startswith("Off: ")
    session.log("stock generation (model load included)", result["seconds"])


def test_an_error_reaches_the_user_and_the_next_generation_works(session):
    page = session.page
    browser.need(session.stock, "the stock image")
    browser.set_checkbox(page, f"{ACC}_enabled-visible-checkbox", True)
    ui.open_accordion(page, f"{ACC}_enabled")
    browser.choose(page, f"{ACC}_encoder_file", "missing.safetensors")
    failed = ui.generate(page)
    # the message under the gallery, where Forge users look, and the status both carry our whole text
    assert "Qwen3.5-4B text encoder (Anima): encoder weights file 'missing.safetensors' not found" in failed["log"]
    assert "Fix:" in failed["log"]
    status = browser.wait_text(page, f"{ACC}_status", r"Last generation: error: Qwen3\.5-4B text encoder \(Anima\): encoder weights file 'missing\.safetensors' not found")
    assert status.rstrip().endswith("to generate with the stock encoder.")
    session.log("failed generation", failed["seconds"])

    browser.choose(page, f"{ACC}_encoder_file", "Automatic")
    result = ui.generate(page)
    assert result["images"], result["log"]
    info = result["infotext"]
    for key in ("Qwen35 TE: on", "Qwen35 TE file: qwen35_4b.safetensors", "Qwen35 TE hash: ", "Qwen35 TE alignment: off",
                "Qwen35 TE calibration: off", "Qwen35 TE scale: 1"):
        assert key in info, info
    session.ours = browser.image(page, result)
    changed = session.ours["image"].differing_fraction(session.stock["image"])
    assert changed > 0.5, f"the 4B conditioning changed only {changed:.1%} of the pixels"
    status = browser.wait_text(page, f"{ACC}_status", r"Last generation: active: qwen35_4b\.safetensors")
    assert "tokens per prompt" in status
    session.log("generation with the extension", result["seconds"], f"({changed:.1%} of pixels differ from stock)")


def test_png_info_send_to_txt2img_restores_the_accordion(session):
    page = session.page
    browser.need(session.ours, "our image")
    t0 = time.time()
    for source, expect_on in ((session.stock, False), (session.ours, True)):
        path = os.path.join(session.run_dir, f"pasted-{'ours' if expect_on else 'stock'}.png")
        with open(path, "wb") as f:
            f.write(source["png"])
        browser.tab(page, "PNG Info")
        page.locator("#pnginfo_image input[type=file]").set_input_files(path)
        # wait for this image's text, not the previous one's still on show
        ours_text = r"Qwen35 TE: on, Qwen35 TE file: qwen35_4b\.safetensors"
        shown = browser.wait_text(page, "tab_pnginfo", ours_text if expect_on else rf"^(?![\s\S]*Qwen35)[\s\S]*Seed: {SEED}", shown=True)
        assert f"Seed: {SEED}" in shown, shown
        page.locator("#tab_pnginfo #txt2img_tab").click()
        time.sleep(2)
        assert browser.checkbox_value(page, f"{ACC}_enabled-visible-checkbox") is expect_on
        if expect_on:
            ui.open_accordion(page, f"{ACC}_enabled")
            assert browser.dropdown_value(page, f"{ACC}_encoder_file") == "qwen35_4b.safetensors"
            assert browser.checkbox_value(page, f"{ACC}_use_alignment") is False
            browser.wait_text(page, f"{ACC}_status", r"^On: the next generation encodes with qwen35_4b\.safetensors")
        else:
            browser.wait_text(page, f"{ACC}_status", r"^Off: ")
    assert browser.text_of(page, "txt2img_prompt") == PROMPT
    session.log("PNG Info paste", time.time() - t0)


def test_xyz_grid_on_off_cells_equal_the_single_images(session):
    page = session.page
    stock, ours = browser.need(session.stock, "the stock image"), browser.need(session.ours, "our image")
    _prepare_prompt(page)
    browser.set_checkbox(page, f"{ACC}_enabled-visible-checkbox", False)   # the axis decides, per cell
    browser.choose(page, "script_list", "X/Y/Z plot")
    browser.choose(page, "script_txt2img_xyz_plot_x_type", "[Qwen3.5 TE] On/Off")
    values = page.locator("#script_txt2img_xyz_plot_x_type").locator("xpath=../..").locator(".gradio-dropdown.multiselect")
    browser.multiselect(page, values, ["Off", "On"])
    browser.set_checkbox(page, "script_txt2img_xyz_plot_include_lone_images", True)
    result = ui.generate(page)
    try:
        assert len(result["images"]) == 3, result          # the grid, then the Off and On cells
        grid = browser.download(page, result["images"][0])
        assert grid[:2] == b"\xff\xd8", "the grid is not the JPEG Forge saves grids as"   # lossy: not compared
        off, on = (browser.image(page, result, i)["image"] for i in (1, 2))
        assert off.rgb == stock["image"].rgb, "the Off cell differs from the stock image"
        assert on.rgb == ours["image"].rgb, "the On cell differs from the image made with the accordion"
        session.log("X/Y/Z On/Off grid", result["seconds"])
        pictures = session.pictures()
        if pictures:
            _xyz_picture(session, os.path.join(pictures, "ui-xyz-on-off.png"))
    finally:
        browser.choose(page, "script_list", "None")


def _xyz_picture(session, path: str) -> None:
    """The README's grid: the same On/Off axis at 256x256, where the labels Forge draws (sized from the
    cells) can be read, shown large in the gallery."""
    page = session.page
    for elem_id in ("txt2img_width", "txt2img_height"):
        browser.set_number(page, elem_id, 256)
    browser.set_checkbox(page, "script_txt2img_xyz_plot_include_lone_images", False)
    try:
        result = ui.generate(page)
        assert len(result["images"]) == 1, result     # the grid alone
        if not page.locator("#txt2img_gallery .preview").count():
            page.locator("#txt2img_gallery .thumbnail-item").first.click()
        page.wait_for_selector("#txt2img_gallery .preview img", timeout=10_000)
        time.sleep(1)
        page.locator("#txt2img_gallery").first.scroll_into_view_if_needed()
        _picture(session, path, ["#txt2img_results"])
        session.log("X/Y/Z grid at 256x256 for the picture", result["seconds"])
    finally:
        for elem_id in ("txt2img_width", "txt2img_height"):
            browser.set_number(page, elem_id, 64)


def test_settings_section_extra_folder_reaches_the_picker(session):
    page = session.page
    extra = os.path.join(session.run_dir, "extra_weights")
    _synthetic_weights(os.path.join(extra, "other_qwen35.safetensors"), seed=1)
    t0 = time.time()
    browser.tab(page, "Settings")
    page.locator("#settings_qwen35_te-button").first.click()
    section = page.locator("#column_settings_qwen35_te")
    assert "Extra folders to search for Qwen3.5-4B weights" in section.inner_text()
    for elem_id in ("setting_qwen35_te_device", "setting_qwen35_te_dtype", "setting_qwen35_te_keep_resident",
                    "setting_qwen35_te_embedding_cache_size", "setting_qwen35_te_encoder_cache_size"):
        assert page.locator(f"#{elem_id}").count() == 1
    browser.fill_text(page, "setting_qwen35_te_search_dirs", extra)
    page.locator("#settings_submit").click()
    result = browser.wait_text(page, "settings_result", r"settings changed")
    # a fresh data dir's first Apply writes every setting; ours must be among them
    assert re.match(r"\d+ settings changed: .*\bqwen35_te_search_dirs\b", result), result[:300]
    # saved (the API's options model predates extension settings, so the file is read)
    with open(os.path.join(session.forge.data_dir, "config.json"), encoding="utf-8") as f:
        assert json.load(f)["qwen35_te_search_dirs"] == extra
    browser.tab(page, "txt2img")
    ui.open_accordion(page, f"{ACC}_enabled")
    page.locator(f"#{ACC}_refresh").click()
    time.sleep(2)
    before = browser.dropdown_value(page, f"{ACC}_encoder_file")   # qwen35_4b.safetensors, from the PNG Info paste
    assert "other_qwen35.safetensors" in browser.dropdown_choices(page, f"{ACC}_encoder_file")
    assert browser.dropdown_value(page, f"{ACC}_encoder_file") == before   # listing the choices changed nothing
    session.log("Settings section", time.time() - t0)


# ---- the alignment tab ----------------------------------------------------------------------------------

def test_alignment_tab_fit_cancel_resume_report_and_compare(session):
    page = session.page
    browser.need(session.stock, "a loaded Anima model (the stock generation)")
    t0 = time.time()
    browser.tab(page, "Qwen3.5 Alignment")
    browser.set_number(page, "qwen35_fit_limit", FIT_PROMPTS)
    browser.set_number(page, "qwen35_fit_batch_size", 8)
    page.locator("#qwen35_fit_device label", has_text="cpu").first.click()
    browser.fill_text(page, "qwen35_fit_name", FIT_NAME)
    browser.set_checkbox(page, "qwen35_fit_allow_underdetermined", True)
    page.locator("#qwen35_fit_start").click()
    progress = browser.wait_text(page, "qwen35_fit_progress", r"embed 0\.6B: \d+/\d+ prompt encodings", timeout_ms=600_000)
    page.locator("#qwen35_fit_cancel").click()
    message = browser.wait_text(page, "qwen35_fit_message", r"Cancelled:", timeout_ms=300_000)
    counts = re.search(r"4B (\d+)/(\d+) prompts, 0\.6B (\d+)/(\d+) prompts", message)
    assert counts, message
    done_4b, total, done_06b, total_06b = map(int, counts.groups())
    assert done_4b == total == total_06b and done_06b < total, message   # the whole 4B pass is on disk
    assert "Press Start with the same output name to resume" in message
    session.log("fit until Cancel", time.time() - t0, f"({progress.strip()})")

    t1 = time.time()
    page.locator("#qwen35_fit_start").click()
    browser.wait_text(page, "qwen35_fit_message", r"^Done\.", timeout_ms=900_000)
    report = browser.text_of(page, "qwen35_fit_report")
    assert "overall" in report and "strength 1.0 + calibration" in report
    assert f"{total} from the cache" in report, report        # the 4B pass was not run again
    assert f"rotation_{FIT_NAME}.safetensors" in report
    session.log("fit resumed to the end", time.time() - t1)

    browser.fill_text(page, "qwen35_cmp_prompt", PROMPT)
    assert browser.dropdown_value(page, "qwen35_cmp_alignment_file") == f"rotation_{FIT_NAME}.safetensors"
    page.locator("#qwen35_cmp_run").click()
    readout = browser.wait_text(page, "qwen35_cmp_readout", r"aligned\s+-?\d\.\d{4}", timeout_ms=300_000, shown=True)
    assert re.search(r"raw \(no alignment\)\s+-?\d\.\d{4}", readout), readout
    assert f"Alignment rotation_{FIT_NAME}.safetensors at strength 1." in readout
    pictures = session.pictures()
    if pictures:
        page.locator("#qwen35_fit_report").first.scroll_into_view_if_needed()
        _picture(session, os.path.join(pictures, "ui-alignment-tab.png"), ["#tabs > .tab-nav", "#tab_qwen35_alignment_tab"])

    # the fitted file is offered in the accordion, and the status accepts it at once
    browser.tab(page, "txt2img")
    browser.set_checkbox(page, f"{ACC}_enabled-visible-checkbox", True)
    ui.open_accordion(page, f"{ACC}_enabled")
    page.locator(f"#{ACC}_refresh").click()
    time.sleep(2)
    browser.set_checkbox(page, f"{ACC}_use_alignment", True)
    browser.choose(page, f"{ACC}_alignment_file", f"rotation_{FIT_NAME}.safetensors")
    browser.wait_text(page, f"{ACC}_status", rf"^On: the next generation encodes with qwen35_4b\.safetensors .*alignment 1 \(rotation_{FIT_NAME}\.safetensors\)")
    if pictures:
        _picture(session, os.path.join(pictures, "ui-accordion.png"), [f"#{ACC}_enabled"])
    session.log("alignment tab (fit, cancel, resume, compare)", time.time() - t0)


# ---- last: stock Forge without the extension --------------------------------------------------------------

def test_accordion_off_is_stock_forge_pixel_for_pixel(session):
    """The same request (its infotext) on a fresh server without the extension gives the same pixels."""
    stock = browser.need(session.stock, "the stock image")
    session.forge.stop()    # one server at a time
    plain = server.ForgeServer(session.setup, os.path.join(session.run_dir, "plain"), web_ui=False)
    try:
        started = plain.start()
        plain.select_anima()
        t0 = time.time()
        response = server.http("POST", plain.url + "/sdapi/v1/txt2img", _request_of(stock["infotext"]), timeout=1800)
        info = json.loads(response["info"])
        image = png.decode(base64.b64decode(response["images"][0].split(",", 1)[-1]))
        assert image.rgb == stock["image"].rgb, "the accordion-off image differs from stock Forge's"
        # the API's request model makes every number a float ("CFG scale: 6.0" where the UI writes "6")
        assert _whole_numbers(info["infotexts"][0]) == _whole_numbers(stock["infotext"])
        session.log("stock Forge without the extension", time.time() - t0, f"(start {started:.1f}s)")
    finally:
        plain.stop()


def _request_of(infotext: str) -> dict:
    """The txt2img API request that repeats a stock generation, from its infotext."""
    lines = infotext.strip().split("\n")
    fields = dict(item.split(": ", 1) for item in lines[-1].split(", "))
    negative = next((line[len("Negative prompt: "):] for line in lines if line.startswith("Negative prompt: ")), "")
    return {"prompt": lines[0], "negative_prompt": negative, "steps": int(fields["Steps"]),
            "sampler_name": fields["Sampler"], "scheduler": fields["Schedule type"], "cfg_scale": float(fields["CFG scale"]),
            "distilled_cfg_scale": float(fields["Shift"]), "seed": int(fields["Seed"]),
            "width": int(fields["Size"].split("x")[0]), "height": int(fields["Size"].split("x")[1]),
            "batch_size": 1, "n_iter": 1, "send_images": True, "save_images": False}


def _whole_numbers(infotext: str) -> str:
    """The infotext with "6.0" written "6", as the UI writes a whole-number slider value."""
    return re.sub(r"\b(\d+)\.0\b", r"\1", infotext)


def _picture(session, path: str, selectors: list[str]) -> None:
    """One README picture: the union of the elements' boxes, as a palette PNG of at most PICTURE_LIMIT bytes."""
    page = session.page
    boxes = [page.locator(sel).first.bounding_box() for sel in selectors]
    scroll = page.evaluate("() => [window.scrollX, window.scrollY]")
    x0, y0 = min(b["x"] for b in boxes) - 8, min(b["y"] for b in boxes) - 8
    x1, y1 = max(b["x"] + b["width"] for b in boxes) + 8, max(b["y"] + b["height"] for b in boxes) + 8
    clip = {"x": max(0, x0 + scroll[0]), "y": max(0, y0 + scroll[1]), "width": x1 - x0, "height": y1 - y0}
    browser.screenshot(page, path, clip=clip)
    size = picture.shrink(path, PICTURE_LIMIT, python=session.setup.python)   # Forge's Python has Pillow
    print(f"[browser e2e] picture {path}: {size // 1024} KiB", flush=True)
    assert size <= PICTURE_LIMIT, f"{path} is {size} bytes; keep README pictures <= {PICTURE_LIMIT}"
