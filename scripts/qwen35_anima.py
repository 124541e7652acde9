"""Forge Neo and SD.Next: encode Anima prompts with the Qwen3.5-4B text encoder (the accordion and its wiring).

All behaviour lives in lib_qwen35/host/ (the host layer); this file only builds the UI and forwards the
WebUI's script callbacks. What differs between WebUIs (the accordion, paste fields) comes from the running
WebUI's package (lib_qwen35.host.selection). API: alwayson_scripts {"qwen3.5-4b text encoder (anima)":
{"args": [...]}} with the args in lib_qwen35.host.params.ARG_NAMES order (see the README).
"""

import gradio as gr

from modules import scripts
from modules.ui_components import ToolButton

from lib_qwen35.host import TITLE, infotext, selection
from lib_qwen35.host.controller import get_controller, paste_status, register_callbacks
from lib_qwen35.host.params import ARG_NAMES, AUTOMATIC, GenerationParams

DEFAULTS = GenerationParams()
register_callbacks()


class Qwen35AnimaTextEncoder(scripts.Script):
    sorting_priority = 12

    def title(self):
        return TITLE

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        ctl, webui = get_controller(), selection.current()
        with webui.enable_accordion(DEFAULTS.enabled, label=TITLE, elem_id=self.elem_id("enabled")) as enabled:
            with gr.Row():
                encoder_file = gr.Dropdown(label="Encoder file", choices=ctl.weight_choices(), value=AUTOMATIC,
                                           allow_custom_value=True, elem_id=self.elem_id("encoder_file"))
                # rescan weights / alignment / calibration folders
                refresh = ToolButton(value="\U0001f504", elem_id=self.elem_id("refresh"))
            with gr.Row():
                use_alignment = gr.Checkbox(label="Use alignment", value=DEFAULTS.use_alignment,
                                            elem_id=self.elem_id("use_alignment"))
                alignment_strength = gr.Slider(label="Alignment strength", minimum=0.0, maximum=1.0, step=0.05,
                                               value=DEFAULTS.alignment_strength,
                                               elem_id=self.elem_id("alignment_strength"))
            alignment_file = gr.Dropdown(label="Alignment file", choices=ctl.alignment_choices(), value=AUTOMATIC,
                                         allow_custom_value=True, elem_id=self.elem_id("alignment_file"))
            with gr.Row():
                use_calibration = gr.Checkbox(label="Use calibration", value=DEFAULTS.use_calibration,
                                              elem_id=self.elem_id("use_calibration"))
                calibration_file = gr.Dropdown(label="Calibration file", choices=ctl.calibration_choices(),
                                               value=AUTOMATIC, allow_custom_value=True,
                                               elem_id=self.elem_id("calibration_file"))
            output_scale = gr.Slider(label="Output scale", minimum=0.0, maximum=3.0, step=0.05,
                                     value=DEFAULTS.output_scale, elem_id=self.elem_id("output_scale"))
            # Several lines, so the whole text (file, hash, device, or an error with its fix) stays readable.
            status = gr.Textbox(label="Status", value=ctl.status_text(*DEFAULTS.as_args()), interactive=False, lines=2,
                                max_lines=12, elem_id=self.elem_id("status"))

        controls = dict(enabled=enabled, encoder_file=encoder_file, use_alignment=use_alignment,
                        alignment_strength=alignment_strength, alignment_file=alignment_file,
                        use_calibration=use_calibration, calibration_file=calibration_file, output_scale=output_scale)
        values = [controls[name] for name in ARG_NAMES]

        def refresh_all(*args):
            return (
                gr.update(choices=ctl.weight_choices()),
                gr.update(choices=ctl.alignment_choices()),
                gr.update(choices=ctl.calibration_choices()),
                ctl.status_text(*args),
            )

        refresh.click(fn=refresh_all, inputs=values, outputs=[encoder_file, alignment_file, calibration_file, status],
                      show_progress=False)
        # The status follows the controls at once (a tick, a file, the alignment), and a PNG Info paste too.
        for control in values:
            control.change(fn=ctl.status_text, inputs=values, outputs=[status], show_progress=False)
        # The generation-info box changes when a generation ends: after_component() makes the status follow it.
        self._status_wiring = ("img2img" if is_img2img else "txt2img", values, status)

        self.infotext_fields = [webui.paste_field(controls[name], infotext.PASTE_FUNCTIONS[name]) for name in ARG_NAMES]
        # A ninth field sets the status itself: a paste that keeps a picker's value (same name, other contents) fires
        # no change event, and the status must still say what the paste found.
        self.infotext_fields.append(webui.paste_field(status, paste_status))
        # "Send to img2img/txt2img" matches fields by their paste target: our paste functions.
        self.paste_field_names = [field[1] for field in self.infotext_fields]
        return values

    def after_component(self, component, **kwargs):
        """Every A1111-family WebUI calls this for each component it builds (the output panel comes after ui())."""
        wiring = getattr(self, "_status_wiring", None)
        elem_id = kwargs.get("elem_id") or getattr(component, "elem_id", None)
        if wiring is not None and elem_id == f"html_info_{wiring[0]}":
            _tab, values, status = wiring
            component.change(fn=get_controller().status_text, inputs=values, outputs=[status], show_progress=False)

    def process(self, p, *args):
        get_controller().process(p, *args)

    def process_batch(self, p, *args, **kwargs):
        get_controller().process_batch(p, *args, **kwargs)

    def postprocess(self, p, processed, *args):
        get_controller().postprocess(p, *args)
