"""Playwright steps on Forge Neo's gradio 4 page that SD.Next's differs in (the common ones: live/browser.py)."""

from __future__ import annotations

import time

from live.browser import GENERATION_TIMEOUT_MS, gallery_images


def open_accordion(page, elem_id: str) -> None:
    """Open a (Input)Accordion by clicking its header beside the label, not its checkbox."""
    header = page.locator(f"#{elem_id} > .label-wrap").first
    if "open" in (header.get_attribute("class") or "").split():
        return
    box = header.bounding_box()
    page.mouse.click(box["x"] + box["width"] - 20, box["y"] + box["height"] / 2)
    time.sleep(0.5)


def generate(page, tabname: str = "txt2img", timeout_ms: int = GENERATION_TIMEOUT_MS) -> dict:
    """Press Generate and wait for this generation's end: a new "Time taken" under the gallery.

    Returns {"infotext", "log" (the message under the gallery, errors included), "images" (gallery URLs),
    "seconds"}."""
    page.evaluate("""(tab) => { for (const id of ['html_info_' + tab, 'html_log_' + tab]) {
                                 const e = document.getElementById(id); if (e) e.dataset.qwen35Before = e.innerText; } }""", tabname)
    t0 = time.time()
    page.locator(f"#{tabname}_generate").click()
    page.wait_for_function(
        """(tab) => { const log = document.getElementById('html_log_' + tab);
                      return log && log.innerText !== log.dataset.qwen35Before && /Time taken/.test(log.innerText); }""",
        arg=tabname, timeout=timeout_ms)
    time.sleep(1.0)  # the gallery and infotext arrive in the same update; let them render
    return {
        "infotext": page.locator(f"#html_info_{tabname}").inner_text().strip(),
        "log": page.locator(f"#html_log_{tabname}").inner_text().strip(),
        "images": gallery_images(page, tabname),
        "seconds": round(time.time() - t0, 1),
    }
