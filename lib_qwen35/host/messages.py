"""User-facing error messages: what happened, which file, and the fix.

Every error the extension raises inside a generation is a `lib_qwen35.errors.Qwen35Error` subclass whose
text starts with the extension's name, so the WebUI's error box and the console both say who failed.
The functions take values (paths, folders, what a scan skipped) and import nothing of the host layer, so
every module may use them.
"""

from __future__ import annotations

import os

from lib_qwen35.errors import NonFiniteOutputError, OutputStageFileError, PromptError, Qwen35Error, WeightsFileError
from lib_qwen35.model.devices import dtype_name

PREFIX = "Qwen3.5-4B text encoder (Anima)"   # the extension's name: the accordion's title, the API's script name
LOG_PREFIX = "[Qwen3.5 TE]"                  # console lines
DISABLE_HINT = "or untick the 'Qwen3.5-4B text encoder (Anima)' accordion to generate with the stock encoder"


def _fmt(text: str) -> str:
    return f"{PREFIX}: {text}"


def _skipped(skipped, wanted: str = "") -> str:
    """The files in the searched folders that the scans could not use, as (path, reason) pairs
    (file_locator.skipped_in), with the reason: the likely culprit, the one named like the wanted file first."""
    found = sorted(skipped, key=lambda item: os.path.basename(item[0]) != os.path.basename(wanted))
    if not found:
        return ""
    shown = " ".join(f"[{reason}]" for _, reason in found[:3])
    more = f" and {len(found) - 3} more (see the console)" if len(found) > 3 else ""
    return f" Skipped as unusable: {shown}{more}."


def weights_not_found(name: str, searched: list[str], skipped=()) -> WeightsFileError:
    where = "; ".join(searched) or "(no folder)"
    wanted = "qwen35_4b.safetensors" if name == "Automatic" else name
    return WeightsFileError(_fmt(
        f"encoder weights file '{wanted}' not found. Searched: {where}.{_skipped(skipped, wanted)} "
        f"Fix: put {wanted} into models/qwen35/ (or the WebUI's text-encoder folder), press the refresh "
        f"button next to 'Encoder file' and pick it, {DISABLE_HINT}."
    ))


def weights_invalid(path: str, cause: BaseException) -> WeightsFileError:
    return WeightsFileError(_fmt(
        f"cannot use the encoder weights file {path}: {_strip(cause)} "
        f"Fix: pick the Qwen3.5-4B Anima encoder (qwen35_4b.safetensors, about 4.8 GB) in 'Encoder file'; "
        f"re-download it if it is truncated, {DISABLE_HINT}."
    ))


def output_stage_not_found(kind: str, name: str, searched: list[str], skipped=()) -> OutputStageFileError:
    where = "; ".join(searched) or "(no folder)"
    return OutputStageFileError(_fmt(
        f"{kind} file '{name}' not found. Searched: {where}.{_skipped(skipped, name.split(' (')[0])} "
        f"Fix: pick an existing {kind} file, put one into models/qwen35/, or untick 'Use {kind}'."
    ))


def output_stage_invalid(kind: str, path: str, cause: BaseException) -> OutputStageFileError:
    return OutputStageFileError(_fmt(
        f"cannot use the {kind} file {path}: {_strip(cause)} "
        f"Fix: pick another {kind} file (or re-create it with `python -m lib_qwen35 fit`), or untick 'Use {kind}'."
    ))


def out_of_memory(path: str, placement) -> Qwen35Error:
    return Qwen35Error(_fmt(
        f"out of memory while encoding with {os.path.basename(path)} on {placement.device}. "
        f"Fix: in Settings > {PREFIX}, untick 'Keep the Qwen3.5-4B weights on the GPU', or set the device to "
        f"'cpu' (slower, no VRAM needed); closing other GPU programs or a lower resolution also helps."
    ))


def output_stage_overflow(cause: BaseException) -> NonFiniteOutputError:
    """The library's output-stage check: its text names the step (alignment, calibration, scale) and the fix."""
    return NonFiniteOutputError(_fmt(f"{_strip(cause)} The WebUI keeps working; {DISABLE_HINT}."))


def non_finite(path: str, placement) -> NonFiniteOutputError:
    # Only fp16 overflows with sound weights; in bf16 or fp32 the file itself holds values no trained encoder has.

    if dtype_name(placement.dtype) == "fp16":
        fix = (f"set the compute dtype to bf16 or fp32 in Settings > {PREFIX} (fp16 can overflow); "
               f"if it persists, the weights file is damaged: re-download it.")
    else:
        fix = (f"{dtype_name(placement.dtype)} does not overflow with sound weights, so the weights file is damaged "
               f"or another model: re-download it.")
    return NonFiniteOutputError(_fmt(
        f"the encoder produced NaN/Inf with {os.path.basename(path)} in {placement.describe()}. Fix: {fix}"
    ))


def encode_failed(path: str, cause: BaseException) -> Qwen35Error:
    if isinstance(cause, Qwen35Error) and str(cause).startswith(PREFIX):
        return cause
    kind = PromptError if isinstance(cause, PromptError) else Qwen35Error
    return kind(_fmt(
        f"encoding failed with {os.path.basename(path)}: {type(cause).__name__}: {_strip(cause)} "
        f"Fix: check the console for details; {DISABLE_HINT}. The WebUI keeps working."
    ))


class FitTabError(Qwen35Error):
    """A problem with the alignment tab's inputs; the text says what to change."""


def fit_tab_error(text: str) -> FitTabError:
    return FitTabError(_fmt(text))


def invalid_setting(cause: BaseException) -> Qwen35Error:
    return Qwen35Error(_fmt(
        f"invalid setting: {_strip(cause)} Fix: alignment_strength takes 0 to 1, output_scale a number >= 0, "
        "enabled / use_alignment / use_calibration true or false (accordion, API args or X/Y/Z values), "
        f"{DISABLE_HINT}."
    ))


def unexpected(cause: BaseException) -> Qwen35Error:
    return Qwen35Error(_fmt(
        f"unexpected error while preparing the encoder: {type(cause).__name__}: {_strip(cause)} "
        f"Fix: see the traceback in the console (please report it); {DISABLE_HINT}."
    ))


def unsupported_seam(webui: str, version: str, what: str, supported: str) -> Qwen35Error:
    """An Anima model whose text seam no adapter of this WebUI's package knows (the WebUI changed it).
    `what` names the class and method found (or what is missing), `supported` what this extension knows."""
    return Qwen35Error(_fmt(
        f"this {webui} ({version}) loads Anima in a way this extension does not know, so it cannot "
        f"replace the text encoder: {what}. {supported}. Nothing was generated, so you do not get a stock "
        f"image by mistake. Fix: update the extension (Extensions > Check for updates) and report the "
        f"{webui} version if it persists, {DISABLE_HINT}."
    ))


def unknown_webui(recognised: list[str]) -> Qwen35Error:
    """Neither Forge Neo nor SD.Next was recognised (selection.py)."""
    found = (f"more than one WebUI matched ({', '.join(recognised)})" if recognised
             else "neither Forge Neo nor SD.Next was recognised")
    return Qwen35Error(_fmt(
        f"this WebUI is not one this extension supports: {found} (Forge Neo: the modules_forge and backend "
        f"packages; SD.Next: modules.scripts_manager and modules.sd_hijack_te). Nothing is changed: prompts "
        f"are encoded by the WebUI's own text encoder. Fix: use the extension in Forge Neo or SD.Next, or "
        f"untick the accordion."
    ))


# ---- fit provenance (lib_qwen35.alignment.provenance verdicts) -------------------------------------------------

# What the status says for each provenance verdict (alignment.provenance's codes); the fields are provenance_line's.
PROVENANCE_LINES = {
    "fitted_on_this": "{Kind} {name}: fitted on {fitted_on}, {where}.",
    "pair_same_fit": "Calibration {name}: fitted after {other_name} (the same fit).",
    "other_encoder": ("Warning: {kind} {name} was fitted on {fitted_on}, not on {where}, {encoder}: it runs, but its "
                      "effect on this encoder was never measured. Fix: refit it for this file in the Qwen3.5 Alignment "
                      "tab."),
    "no_provenance": ("Warning: {kind} {name} has no fit provenance (it was not made by this extension's fit; the "
                      "files published for the earlier ComfyUI node are such files): which encoder it was fitted on "
                      "cannot be checked. Fix: prefer a file fitted here (Qwen3.5 Alignment tab)."),
    "encoder_unknown": ("Warning: {kind} {name} does not record which encoder file it was fitted on: it cannot be "
                        "checked against {encoder}."),
    "changed_after_fit": ("Warning: {kind} {name} was changed after its fit (the fit recorded {recorded}): what it "
                          "says about its fit does not describe these numbers."),
    "pair_other_alignment": ("Warning: calibration {name} was fitted after another alignment than {other}: a "
                             "calibration belongs to the alignment of its own fit. Fix: pick the calibration file of "
                             "the same fit."),
    "calibration_without_alignment": ("Note: calibration {name} was fitted on the output of an alignment at strength "
                                      "1; here no alignment is used."),
    "calibration_strength": "Note: calibration {name} was fitted for alignment strength 1; the strength here is not 1.",
    "synthetic_with_real": ("Warning: {kind} {name} is a SYNTHETIC DEMO fit (random weights): with {encoder}, a real "
                            "encoder, its numbers mean nothing."),
}


def provenance_line(verdict, encoder, where: str = "the encoder file picked now") -> str:
    """One line of the status for a verdict (`verdict.file` the alignment or calibration, `encoder` the picked
    EncoderFacts); `where` names the encoder as the panel shows it."""
    f, other = verdict.file, verdict.other
    fields = {"kind": f.kind, "Kind": f.kind.capitalize(), "name": f.describe(), "fitted_on": f.provenance.fitted_on(),
              "where": where, "encoder": encoder.describe(), "recorded": f.provenance.content_hash,
              "other": other.describe() if other else "?", "other_name": other.name if other else "?"}
    return PROVENANCE_LINES.get(verdict.code, "{Kind} {name}: " + verdict.code + ".").format(**fields)


def provenance_label(verdict) -> str:
    """The short form of a warning, for "Last generation: ..."."""
    f = verdict.file
    return {
        "other_encoder": f"{f.kind} {f.name} fitted on another encoder file",
        "no_provenance": f"{f.kind} {f.name} without fit provenance",
        "encoder_unknown": f"{f.kind} {f.name} without its encoder file",
        "changed_after_fit": f"{f.kind} {f.name} changed after its fit",
        "pair_other_alignment":
            f"calibration {f.name} from another fit than {verdict.other.name if verdict.other else '?'}",
    }.get(verdict.code, f"{f.kind} {f.name}: {verdict.code}")


def synthetic_fit_with_real_encoder(kind: str, path: str, encoder) -> OutputStageFileError:
    """The one provenance verdict that stops a generation: a demo fit on random weights with a real encoder."""
    return OutputStageFileError(_fmt(
        f"the {kind} file {path} is a SYNTHETIC DEMO fit (made on a synthetic checkpoint with random weights), and "
        f"the encoder {encoder.describe()} is a real one: the demo would only scramble its output. Nothing was "
        f"generated. Fix: fit {'an alignment' if kind == 'alignment' else 'a calibration'} for this encoder in the "
        f"Qwen3.5 Alignment tab (or `python -m lib_qwen35 fit --weights-4b ... --weights-06b ...`), pick another "
        f"{kind} file, or untick 'Use {kind}'."
    ))


def paste_note(pasted) -> str:
    """What the status says after a paste (paste_lookup.PastedFile); "" for a plain match."""
    kind, name, wanted, outcome = pasted.kind, pasted.name, pasted.wanted, pasted.outcome
    if outcome == "match":
        return ""
    made = f"the image was made with {kind} file {name} ({wanted})"
    if outcome == "unchecked":
        return (f"Pasted: {kind} file {name} picked by name; the infotext has no hash to check its contents (it was "
                f"made by an earlier version of the extension).")
    if outcome == "by_hash":
        here = f"here that name holds other contents ({pasted.here})" if pasted.here else "that name is not here"
        return f"Pasted: {made}; {here}, so {pasted.value}, which has those contents, was picked by its hash."
    if outcome == "differs":
        return (f"Pasted: {made}, but no {kind} file here has those contents; {name} here holds others "
                f"({pasted.here}), so the image will differ (a refit under the same name?). Fix: get the file the "
                f"image was made with from its author, or accept the difference.")
    return (f"Pasted: {made}, which is not here (no file has that name or those contents): the next generation "
            f"will stop. Fix: put the file into models/qwen35/ and press the refresh button, or untick 'Use {kind}' "
            f"(the image will then differ).")


def xyz_files_not_found(kind: str, missing: list[str], offered: list[str]) -> OutputStageFileError:
    return OutputStageFileError(_fmt(
        f"X/Y/Z: {kind} file(s) {', '.join(repr(m) for m in missing)} not found, so no cell was generated. Offered: "
        f"{', '.join(offered) or '(none)'}. Fix: pick the values from the axis' list (press its refresh button "
        f"after adding files), or None."
    ))


def console(text: str) -> None:
    print(f"{LOG_PREFIX} {text}", flush=True)


def _strip(cause: BaseException) -> str:
    text = str(cause).strip() or type(cause).__name__
    return text if text.endswith((".", "!", "?")) else text + "."
