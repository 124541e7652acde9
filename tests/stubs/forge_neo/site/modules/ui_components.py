"""Stand-in for modules/ui_components.py: InputAccordion (a hidden checkbox that owns an Accordion; its
value is the checkbox value) and ToolButton."""

import gradio as gr


class InputAccordionImpl(gr.Checkbox):
    global_index = 0

    def __init__(self, value=None, setup=False, **kwargs):
        if not setup:
            super().__init__(value=value, **kwargs)
            return
        self.accordion_id = kwargs.get("elem_id") or f"input-accordion-{InputAccordionImpl.global_index}"
        InputAccordionImpl.global_index += 1
        super().__init__(value=value, **{**kwargs, "elem_id": f"{self.accordion_id}-checkbox", "visible": False})
        self.accordion = gr.Accordion(**{**kwargs, "elem_id": self.accordion_id, "label": kwargs.get("label", "Accordion"), "open": value})

    def __enter__(self):
        self.accordion.__enter__()
        return self

    def __exit__(self, *exc):
        return self.accordion.__exit__(*exc)


def InputAccordion(value=None, **kwargs):  # noqa: N802 - Forge's name
    return InputAccordionImpl(value=value, setup=True, **kwargs)


class ToolButton(gr.Button):
    def __init__(self, value="", *args, elem_classes=None, **kwargs):
        super().__init__(value, *args, elem_classes=["tool", *(elem_classes or [])], **kwargs)
