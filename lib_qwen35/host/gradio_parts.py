"""Gradio pieces for WebUIs without Forge's InputAccordion / PasteField (SD.Next, an unknown WebUI).

Written for gradio 3.43 (SD.Next) and 4.x alike; gradio is imported inside each function.
"""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def checkbox_accordion(value: bool, label: str, elem_id: str):
    """An accordion with an "Enable" checkbox inside: yields the checkbox (its value is "enabled"). SD.Next's
    own always-on scripts look like this (its ui_components.InputAccordion is marked unused there: its
    checkbox is hidden and only made usable by its start-up script), and it needs no javascript."""
    import gradio as gr

    with gr.Accordion(label=label, open=False, elem_id=elem_id):
        yield gr.Checkbox(label="Enable", value=bool(value), elem_id=f"{elem_id}_checkbox")


def update_paste_field(component, paste):
    """(component, fn) for Script.infotext_fields. The function returns gr.update(value=...) or None:
    SD.Next's paste converts plain values with type(component.value) (so "off" would tick a checkbox)
    and runs its skip-list check on the key, which fails for a function; updates bypass both."""
    import gradio as gr

    def restore(params):
        value = paste(params)
        return None if value is None else gr.update(value=value)

    restore.__name__ = getattr(paste, "__name__", "restore")
    return component, restore
