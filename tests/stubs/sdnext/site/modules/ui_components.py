"""Stand-in for SD.Next's modules/ui_components.py: ToolButton, and InputAccordion as SD.Next defines it
(marked unused there; its checkbox is hidden, made usable by SD.Next's start-up script)."""

import gradio as gr


class ToolButton(gr.Button):
    pass


class InputAccordion(gr.Checkbox):
    def __init__(self, value, **kwargs):
        self.accordion_id = kwargs.get("elem_id")
        super().__init__(value, **{**kwargs, "elem_id": f"{self.accordion_id}-checkbox", "visible": False})
        self.accordion = gr.Accordion(label=kwargs.get("label", "Accordion"), open=value, elem_id=self.accordion_id)

    def __enter__(self):
        self.accordion.__enter__()
        return self

    def __exit__(self, *exc):
        return self.accordion.__exit__(*exc)
