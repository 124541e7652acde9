"""What both browser tests (test_forge_neo_browser.py, test_sdnext_browser.py) do on a WebUI's page, as a user
clicks it (Debian's Chromium, headless), and the helpers their steps share.

Elements are found by the elem_ids the WebUI and the extension give them; gradio's own widgets (sliders,
dropdowns, checkboxes) are driven through their visible inputs, so every change goes through the same
browser events, gradio round trips and Python callbacks as a user's click. Opening an accordion and
waiting for a generation differ between the WebUIs' pages: forge_neo/ui.py, sdnext/ui.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import time

import pytest

from live import png

CHROMIUM = os.environ.get("FORGE_NEO_BROWSER", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
GENERATION_TIMEOUT_MS = 900_000   # a CPU generation with a model (re)load takes minutes on a busy machine
ACCORDION = "script_txt2img_qwen354b_text_encoder_anima"   # the txt2img accordion's elem_id prefix, in both WebUIs
try:
    import playwright.sync_api  # noqa: F401
    HAVE_PLAYWRIGHT = True
except ImportError:
    HAVE_PLAYWRIGHT = False
NEEDS = [   # a browser test's module adds these to its own pytestmark
    pytest.mark.skipif(not HAVE_PLAYWRIGHT, reason="needs Playwright for Python (pip install playwright; never `playwright install`)"),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium, or FORGE_NEO_BROWSER)"),
]


@contextlib.contextmanager
def browser_page(url: str, width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            open_page(page, url)
            yield page
        finally:
            browser.close()


def open_page(page, url: str) -> None:
    page.goto(url, timeout=180_000)
    page.wait_for_selector("#txt2img_generate", timeout=180_000)
    time.sleep(4)  # Forge Neo's page reloads itself once ~2 s after loading; click only after that
    page.wait_for_selector("#txt2img_generate", timeout=180_000)


def tab(page, name: str) -> None:
    """Switch to a top-level tab by its button text (txt2img, PNG Info, Settings, Qwen3.5 Alignment ...)."""
    page.locator("#tabs .tab-nav").first.locator("button", has_text=re.compile(rf"^\s*{re.escape(name)}\s*$")).first.click()
    time.sleep(0.5)


def fill_text(page, elem_id: str, text: str) -> None:
    box = page.locator(f"#{elem_id} textarea, #{elem_id} input[type=text]").first
    box.fill(text)
    box.press("Tab")  # blur: gradio sends the change


def set_number(page, elem_id: str, value) -> None:
    """A gradio Slider or Number: type into its number box and confirm."""
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")
    box.press("Tab")


def _checkbox(page, elem_id: str):
    return page.locator(f"input#{elem_id}, #{elem_id} input[type=checkbox]").first


def set_checkbox(page, elem_id: str, checked: bool) -> None:
    box = _checkbox(page, elem_id)
    if box.is_checked() != checked:
        box.click()


def checkbox_value(page, elem_id: str) -> bool:
    return _checkbox(page, elem_id).is_checked()


def choose(page, elem_id: str, value: str) -> None:
    """A gradio Dropdown: type to filter, then click the option (or confirm a custom value with Enter)."""
    box = page.locator(f"#{elem_id} input").first
    box.click()
    box.fill(value)
    time.sleep(0.3)
    option = page.locator("ul.options li", has_text=re.compile(rf"^\s*{re.escape(value)}\s*$"))
    if option.count():
        option.first.click()
    else:
        box.press("Enter")
    box.press("Tab")
    time.sleep(0.3)


def dropdown_value(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} input").first.input_value()


def dropdown_choices(page, elem_id: str) -> list[str]:
    """A Dropdown's options, read from its open list; its value is left as it was (a focus lists them all;
    typing, even clearing the box, would set a custom value on blur)."""
    box = page.locator(f"#{elem_id} input").first
    box.click()
    time.sleep(0.3)
    choices = [t.strip() for t in page.locator("ul.options li").all_inner_texts()]
    box.press("Escape")
    box.press("Tab")
    return choices


def multiselect(page, dropdown, values) -> None:
    """A gradio multiselect Dropdown (a locator): pick each value from its list."""
    box = dropdown.locator("input").first
    for value in values:
        box.click()
        time.sleep(0.5)
        page.locator("ul.options li", has_text=re.compile(rf"^\W*{re.escape(value)}\s*$")).first.click()
        time.sleep(0.3)
    box.press("Escape")
    box.press("Tab")


def text_of(page, elem_id: str) -> str:
    element = page.locator(f"#{elem_id}").first
    inputs = element.locator("textarea")
    return inputs.first.input_value() if inputs.count() else element.inner_text()


def wait_text(page, elem_id: str, pattern: str, timeout_ms: int = 60_000, shown: bool = False) -> str:
    """Wait until the element's text (or its textarea's value; with `shown`, only what is rendered)
    matches the regular expression."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            """([id, pattern, shown]) => { const e = document.getElementById(id); if (!e) return false;
                 const t = shown ? null : e.querySelector('textarea'); return new RegExp(pattern, 's').test(t ? t.value : e.innerText); }""",
            arg=[elem_id, pattern, shown], timeout=timeout_ms)
    except PlaywrightTimeout:
        now = page.locator(f"#{elem_id}").first.inner_text() if shown else text_of(page, elem_id)
        raise AssertionError(f"#{elem_id} did not match {pattern!r} within {timeout_ms / 1000:.0f}s; it shows:\n"
                             f"{now[:2000]}") from None
    return page.locator(f"#{elem_id}").first.inner_text() if shown else text_of(page, elem_id)


def gallery_images(page, tabname: str = "txt2img") -> list[str]:
    """The gallery's image URLs in order (the thumbnails, one per image)."""
    urls = page.evaluate("""(tab) => Array.from(document.querySelectorAll('#' + tab + '_gallery .thumbnails img, #' + tab + '_gallery .thumbnail-item img'))
                                  .map(i => i.src)""", tabname)
    if not urls:
        urls = page.evaluate("(tab) => Array.from(document.querySelectorAll('#' + tab + '_gallery img')).map(i => i.src)", tabname)
    seen, ordered = set(), []
    for url in urls:
        if url not in seen:
            seen.add(url)
            ordered.append(url)
    return ordered


def download(page, url: str) -> bytes:
    response = page.request.get(url)
    assert response.ok, f"{url}: HTTP {response.status}"
    return response.body()


def screenshot(page, path: str, selector: str | None = None, clip: dict | None = None, padding: int = 8) -> str:
    """A picture of one element (plus a margin) or a clip of the page, as PNG."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if selector is not None:
        element = page.locator(selector).first
        element.scroll_into_view_if_needed()
        box = element.bounding_box()
        scroll = page.evaluate("() => [window.scrollX, window.scrollY]")
        clip = {"x": max(0, box["x"] + scroll[0] - padding), "y": max(0, box["y"] + scroll[1] - padding),
                "width": box["width"] + 2 * padding, "height": box["height"] + 2 * padding}
    page.screenshot(path=path, clip=clip, full_page=True, animations="disabled", caret="hide")
    return path


# ---- what the tests' steps share ------------------------------------------------------------------------

def image(page, result, index=0) -> dict:
    """Image `index` of a generation's gallery: {"png": bytes, "image": png.Image, "infotext"}."""
    data = download(page, result["images"][index])
    return {"png": data, "image": png.decode(data), "infotext": result["infotext"]}


def status(page) -> str:
    """The txt2img accordion's status box."""
    return text_of(page, f"{ACCORDION}_status")


def need(value, what):
    """`value`, made by an earlier step of the module, or a skip: the steps build on each other."""
    if value is None:
        pytest.skip(f"needs {what} from an earlier step of this module")
    return value


def picture(page, run_dir: str, name: str) -> None:
    """The page after a step, in the run folder: what a failure looked like."""
    try:
        page.screenshot(path=os.path.join(run_dir, f"{name}.png"), full_page=True)
    except Exception as error:  # noqa: BLE001 - the page may be gone (a server stopped): the test's own result counts
        print(f"[browser e2e] no picture after {name}: {error}")
