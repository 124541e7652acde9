"""What the accordion's controls will do at the next generation: the status's first line, then one line per
alignment / calibration file (which encoder file it was fitted on, and whether that is the one picked now), then
what a paste picked (paste_lookup's notes).

The accordion calls this on every change of its controls, so the status follows a tick, a picked file or
the alignment settings at once instead of after the next generation. It resolves the files and loads
the small alignment / calibration files exactly as a generation would (the same code, the same error
texts), but never loads the encoder weights: a preview must stay instant.
"""

from __future__ import annotations

import os
import traceback

from lib_qwen35.errors import Qwen35Error

from . import a1111, ext_settings, messages, paste_lookup, selection
from .params import GenerationParams, InvalidSetting

OFF = ("Off: prompts are encoded by the stock Qwen3-0.6B encoder, exactly as in stock {webui}. "
       "Tick the accordion's checkbox to use Qwen3.5-4B (Anima models only).")


def describe(controller, args) -> str:
    """One line for the accordion's current values (`args` in params.ARG_NAMES order)."""
    webui = selection.current()
    off = OFF.format(webui=webui.name)
    try:
        params = GenerationParams.from_args(args)
    except InvalidSetting as error:
        if not GenerationParams.requested_enabled(args, None):
            return off
        return f"On, but the next generation will stop: {messages.invalid_setting(error)}"
    if not params.enabled:
        return off
    sd_model = a1111.sd_model()
    if webui.is_placeholder(sd_model):
        sd_model = None
    located = webui.locate(sd_model) if sd_model is not None else None
    if located is not None and located.kind == "unsupported":
        outcome = "the next generation will stop" if webui.stops_generations else "inactive"
        return f"On, but {outcome}: {webui.unsupported(located)}"
    if located is not None and not located.is_anima:
        return (f"On, but inactive: the loaded model is not Anima ({located.model}); "
                f"generations use it unchanged.")
    notes = paste_lookup.notes_for({"alignment": params.alignment_file if params.use_alignment else None,
                                    "calibration": params.calibration_file if params.use_calibration else None})
    try:
        run = controller.prepare(params, ext_settings.read())
    except Qwen35Error as error:
        return "\n".join([f"On, but the next generation will stop: {error}"] + notes)
    except Exception as error:  # noqa: BLE001 - a preview must never break the UI
        traceback.print_exc()
        return f"On, but the next generation will stop: {messages.unexpected(error)}"
    parts = [f"{run.weights_name} ({run.weights_hash}) on {run.placement.describe()}"]
    if run.alignment_path:
        parts.append(f"alignment {run.alignment_strength:g} ({os.path.basename(run.alignment_path)})")
    if run.calibration_path:
        parts.append(f"calibration ({os.path.basename(run.calibration_path)})")
    if run.output_scale != 1.0:
        parts.append(f"scale {run.output_scale:g}")
    loaded = "" if sd_model is not None else " (no model is loaded yet; it must be an Anima model)"
    encoder = controller.encoder_facts(run.weights_path, run.weights_identity)
    lines = [f"On: the next generation encodes with {', '.join(parts)}{loaded}."]
    lines += [messages.provenance_line(verdict, encoder) for verdict in run.provenance]
    return "\n".join(lines + notes)
