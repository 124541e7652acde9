"""Playwright steps on SD.Next's gradio 3.43 page (standard theme) that Forge Neo's differs in (the common ones,
such as filling a text box or a slider: live/browser.py).

gradio 3.43 gives an elem_id to both a component's wrapper and its inner element, so locators take `.first`.
Extensions' always-on scripts sit in the "Extensions" accordion, each in its own accordion.
"""

from __future__ import annotations

import time

from live.browser import GENERATION_TIMEOUT_MS, gallery_images


def open_accordion(page, elem_id: str) -> None:
    header = page.locator(f"#{elem_id} > .label-wrap").first
    if "open" in (header.get_attribute("class") or "").split():
        return
    header.scroll_into_view_if_needed()
    header.click()
    time.sleep(0.5)


def reveal(page, elem_id: str) -> None:
    """Open every closed accordion around an element (SD.Next keeps Seed, Extensions, ... collapsed)."""
    for _ in range(5):
        opened = page.evaluate("""(id) => { const e = document.getElementById(id); if (!e) return false;
            for (let n = e.parentElement; n; n = n.parentElement) {
                if (!n.classList.contains('gradio-accordion')) continue;
                const wrap = n.querySelector(':scope > .label-wrap');
                if (wrap && !wrap.classList.contains('open')) { wrap.click(); return true; } }
            return false; }""", elem_id)
        if not opened:
            return
        time.sleep(0.5)


def html(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").first.inner_text().strip()


def generate(page, tabname: str = "txt2img", timeout_ms: int = GENERATION_TIMEOUT_MS) -> dict:
    """Press Generate and wait for this generation's end: new images in the gallery (SD.Next saves each
    under a new numbered name), or an error box under it.

    Returns {"infotext", "log" (SD.Next's message under the gallery, an error box included), "images",
    "seconds"}."""
    before = gallery_images(page, tabname)
    # An error box left by the previous generation stays in the log while the next one starts (its text changes to
    # "processing | ..."): mark it old, and wait for an error box this generation made.
    page.evaluate("""(tab) => { const e = document.getElementById('html_log_' + tab);
                      if (e) e.querySelectorAll('.error').forEach(x => x.dataset.qwen35Old = '1'); }""", tabname)
    t0 = time.time()
    page.locator(f"#{tabname}_generate").first.click()
    page.wait_for_function(
        """([tab, before]) => { const log = document.getElementById('html_log_' + tab);
                      if (log && log.querySelector('.error:not([data-qwen35-old])')) return true;
                      const urls = Array.from(document.querySelectorAll('#' + tab + '_gallery img')).map(i => i.src);
                      return urls.length > 0 && urls.some(u => !before.includes(u)); }""",
        arg=[tabname, before], timeout=timeout_ms)
    time.sleep(1.5)   # the gallery arrives in the same update; let it render
    return {"infotext": html(page, f"html_info_{tabname}"), "log": html(page, f"html_log_{tabname}"),
            "images": gallery_images(page, tabname), "seconds": round(time.time() - t0, 1)}
