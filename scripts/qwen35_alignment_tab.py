"""Forge Neo and SD.Next: the "Qwen3.5 Alignment" tab. Fit a 4B -> 0.6B alignment against the loaded
stock encoder, and compare one prompt's 4B embedding (raw / aligned / aligned + calibrated) with the stock
0.6B one.

Only the UI lives here (gradio 3.43 in SD.Next, 4.40 in Forge Neo: only components and keywords both
have); lib_qwen35/host/fit_tab.py (with fit_encoders.py and fit_files.py) holds the logic (background fit,
progress, report, compare), testable without gradio.
"""

import gradio as gr

from modules import script_callbacks
from modules.ui_components import ToolButton

from lib_qwen35.host.fit_tab import DEVICE_CHOICES, STOCK_AUTOMATIC, TAB_TITLE, CompareRequest, FitRequest, get_fit_tab
from lib_qwen35.host.params import AUTOMATIC
from lib_qwen35.host.xyz_axes import NONE_FILE

INTRO = (
    "Fit the output-space alignment (rotation + means) and the calibration for **your** Qwen3.5-4B encoder "
    "against the stock Qwen3-0.6B encoder of the loaded Anima model, on the built-in prompt corpus. The files "
    "go to `models/qwen35/<name>/` and appear in the accordion's alignment and calibration pickers. "
    "A full fit (41,277 prompts) takes minutes on a GPU and hours on a CPU; Cancel keeps the finished chunks "
    "and Start with the same name resumes."
)


def on_ui_tabs():
    tab = get_fit_tab()
    view = tab.view()
    with gr.Blocks(analytics_enabled=False) as block:
        gr.Markdown(INTRO)
        with gr.Row():
            encoder_file = gr.Dropdown(label="Qwen3.5-4B encoder file", choices=tab.weight_choices(), value=AUTOMATIC,
                                       allow_custom_value=True, elem_id="qwen35_fit_encoder_file")
            stock_file = gr.Dropdown(label="Stock encoder (Qwen3-0.6B)", choices=tab.stock_choices(),
                                     value=STOCK_AUTOMATIC, allow_custom_value=True, elem_id="qwen35_fit_stock_file")
            refresh = ToolButton(value="\U0001f504", elem_id="qwen35_fit_refresh")
        with gr.Row():
            limit = gr.Slider(label="Prompts (0 = the whole built-in corpus of 41,277)", minimum=0, maximum=41277,
                              step=1, value=0, elem_id="qwen35_fit_limit")
            batch_size = gr.Slider(label="Batch size", minimum=1, maximum=256, step=1, value=32,
                                   elem_id="qwen35_fit_batch_size")
            device = gr.Radio(label="Device", choices=list(DEVICE_CHOICES), value="auto",
                              elem_id="qwen35_fit_device")
        with gr.Row():
            name = gr.Textbox(label="Output name (folder models/qwen35/<name>/)", value="my_alignment",
                              elem_id="qwen35_fit_name")
            allow_underdetermined = gr.Checkbox(
                label="Fit even with fewer than 1,139 prompts (preview only: the rotation is then undetermined)",
                value=False, elem_id="qwen35_fit_allow_underdetermined")
        with gr.Row():
            start = gr.Button(value="Start", variant="primary", elem_id="qwen35_fit_start")
            cancel = gr.Button(value="Cancel", elem_id="qwen35_fit_cancel")
            show = gr.Button(value="Show progress", elem_id="qwen35_fit_show")
        progress = gr.HTML(value=view.progress_html, elem_id="qwen35_fit_progress")
        message = gr.Markdown(value=view.message, elem_id="qwen35_fit_message")
        report = gr.Markdown(value=view.report_md, elem_id="qwen35_fit_report")

        with gr.Accordion(label="Compare with stock", open=True):
            prompt = gr.Textbox(label="Prompt", lines=2, elem_id="qwen35_cmp_prompt")
            with gr.Row():
                strength = gr.Slider(label="Alignment strength", minimum=0.0, maximum=1.0, step=0.05, value=1.0,
                                     elem_id="qwen35_cmp_strength")
                use_calibration = gr.Checkbox(label="Use calibration", value=False,
                                              elem_id="qwen35_cmp_use_calibration")
            with gr.Row():
                alignment_file = gr.Dropdown(label="Alignment file", choices=tab.alignment_choices(), value=AUTOMATIC,
                                             allow_custom_value=True, elem_id="qwen35_cmp_alignment_file")
                calibration_file = gr.Dropdown(label="Calibration file", choices=tab.calibration_choices(),
                                               value=AUTOMATIC, allow_custom_value=True,
                                               elem_id="qwen35_cmp_calibration_file")
            with gr.Row():  # a second fit side by side (e.g. a downloaded one against yours)
                alignment_file_b = gr.Dropdown(label="Second alignment file (side by side)",
                                               choices=[NONE_FILE] + tab.alignment_choices()[1:], value=NONE_FILE,
                                               allow_custom_value=True, elem_id="qwen35_cmp_alignment_file_b")
                calibration_file_b = gr.Dropdown(label="Its calibration file",
                                                 choices=[NONE_FILE] + tab.calibration_choices()[1:], value=NONE_FILE,
                                                 allow_custom_value=True, elem_id="qwen35_cmp_calibration_file_b")
            compare = gr.Button(value="Compare with stock", elem_id="qwen35_cmp_run")
            readout = gr.Markdown(value="", elem_id="qwen35_cmp_readout")

        fit_outputs = [progress, message, report, alignment_file, calibration_file]

        def shown(v):
            if v.state == "done":  # offer the new files and select them for the comparison
                pickers = (gr.update(choices=tab.alignment_choices(), value=v.alignment_name),
                           gr.update(choices=tab.calibration_choices(), value=v.calibration_name))
            else:
                pickers = (gr.update(), gr.update())
            return (v.progress_html, v.message, v.report_md) + pickers

        def start_fit(name_, limit_, batch_size_, device_, encoder_file_, stock_file_, allow_):
            request = FitRequest(name=name_, limit=limit_, batch_size=batch_size_, device=device_,
                                 encoder_file=encoder_file_, stock_file=stock_file_, allow_underdetermined=allow_)
            first = tab.start(request)
            yield shown(first)
            if first.running:
                for v in tab.watch():
                    yield shown(v)

        def follow():
            for v in tab.watch():
                yield shown(v)

        def cancel_fit():
            return shown(tab.cancel())

        def refresh_all():
            return (gr.update(choices=tab.weight_choices()), gr.update(choices=tab.stock_choices()),
                    gr.update(choices=tab.alignment_choices()), gr.update(choices=tab.calibration_choices()),
                    gr.update(choices=[NONE_FILE] + tab.alignment_choices()[1:]),
                    gr.update(choices=[NONE_FILE] + tab.calibration_choices()[1:]))

        def run_compare(prompt_, strength_, use_calibration_, alignment_file_, calibration_file_, encoder_file_,
                        stock_file_, device_, alignment_file_b_, calibration_file_b_):
            request = CompareRequest(prompt=prompt_, strength=strength_, use_calibration=use_calibration_,
                                     alignment_file=alignment_file_, calibration_file=calibration_file_,
                                     encoder_file=encoder_file_, stock_file=stock_file_, device=device_,
                                     alignment_file_b=alignment_file_b_, calibration_file_b=calibration_file_b_)
            return tab.compare(request).markdown()

        start.click(fn=start_fit,
                    inputs=[name, limit, batch_size, device, encoder_file, stock_file, allow_underdetermined],
                    outputs=fit_outputs, show_progress="hidden")
        show.click(fn=follow, inputs=[], outputs=fit_outputs, show_progress="hidden")
        cancel.click(fn=cancel_fit, inputs=[], outputs=fit_outputs, show_progress="hidden")
        refresh.click(fn=refresh_all, inputs=[], outputs=[encoder_file, stock_file, alignment_file, calibration_file,
                                                          alignment_file_b, calibration_file_b], show_progress=False)
        compare.click(fn=run_compare, inputs=[prompt, strength, use_calibration, alignment_file, calibration_file,
                                              encoder_file, stock_file, device, alignment_file_b, calibration_file_b],
                      outputs=[readout])
    return [(block, TAB_TITLE, "qwen35_alignment_tab")]


script_callbacks.on_ui_tabs(on_ui_tabs)
