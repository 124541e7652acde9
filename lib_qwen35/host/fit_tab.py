"""The "Qwen3.5 Alignment" tab's state: one fit at a time in a background thread, and compare with stock.

Fit: `FitTab.start(FitRequest)` checks the inputs at once (output name, 4B file, a stock encoder, the files it
will write: fit_files.py), then runs `lib_qwen35.alignment.run.run_fit` on the two encoders of fit_encoders.py
in a background thread. The UI polls `view()` / `watch()` (a generator) for the progress bar, and `cancel()`
sets the fit's cancel event. Starting again with the same name resumes: the embedding chunks are cached on disk.
Compare: cosine between the pooled 4B embedding of a prompt (raw / aligned / aligned + calibrated) and the
pooled stock 0.6B one, through `lib_qwen35.alignment.compare.compare_with_stock`; optionally for a second alignment
(and its calibration) side by side, each column with what its file was fitted on.

Nothing here raises into gradio: every public method turns errors into the text it returns.

About 400 lines: the fit's thread state and the compare table are the tab's two halves and share its view; the
encoders (fit_encoders.py) and the files (fit_files.py) already live apart.
"""

from __future__ import annotations

import dataclasses
import html
import os
import re
import threading
import time
import traceback

from lib_qwen35.alignment import provenance
from lib_qwen35.alignment.compare import compare_with_stock
from lib_qwen35.alignment.run import run_fit
from lib_qwen35.errors import FitCancelled, Qwen35Error
from lib_qwen35.model.output_stage import OutputStage

from . import ext_settings, file_locator, fit_encoders, fit_files, messages, selection
from . import placement as placement_mod
from .controller import get_controller
from .fit_encoders import STOCK_AUTOMATIC, OnDevice
from .params import AUTOMATIC
from .xyz_axes import NONE_FILE

TAB_TITLE = "Qwen3.5 Alignment"
DEVICE_CHOICES = ext_settings.DEVICE_CHOICES
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclasses.dataclass(frozen=True)
class FitRequest:
    name: str = "my_alignment"            # folder models/qwen35/<name>/ and the files' suffix
    limit: int = 0                        # prompts of the built-in corpus; 0 = all 41,277
    batch_size: int = 32
    device: str = "auto"                  # auto | gpu | cpu (4B encoder, and a 0.6B loaded from a file)
    encoder_file: str = AUTOMATIC         # the 4B weights, as in the accordion's picker
    stock_file: str = STOCK_AUTOMATIC     # the loaded model's stock encoder, or a Qwen3-0.6B file
    allow_underdetermined: bool = False   # fit with fewer prompts than dimensions (tests / previews)


@dataclasses.dataclass(frozen=True)
class CompareRequest:
    prompt: str = ""
    strength: float = 1.0
    use_calibration: bool = False
    alignment_file: str = AUTOMATIC
    calibration_file: str = AUTOMATIC
    encoder_file: str = AUTOMATIC
    stock_file: str = STOCK_AUTOMATIC
    device: str = "auto"
    alignment_file_b: str = NONE_FILE     # a second alignment, side by side; "None": one column, as before
    calibration_file_b: str = NONE_FILE   # its calibration (with use_calibration)


@dataclasses.dataclass
class FitView:
    """What the tab shows; `state` is idle | starting | running | cancelling | done | cancelled | error."""

    state: str = "idle"
    fraction: float = 0.0
    progress_text: str = ""
    message: str = ""
    report_md: str = ""
    alignment_name: str | None = None     # picker names of the files written, when done
    calibration_name: str | None = None

    @property
    def running(self) -> bool:
        return self.state in ("starting", "running", "cancelling")

    @property
    def progress_html(self) -> str:
        pct = max(0.0, min(1.0, self.fraction)) * 100.0
        text = html.escape(self.progress_text or self.state)
        return (f'<div class="qwen35-fit-progress"><progress value="{pct:.1f}" max="100" style="width:100%">'
                f'{pct:.0f}%</progress><div>{pct:5.1f}% &middot; {text}</div></div>')


@dataclasses.dataclass
class CompareColumn:
    """One alignment (and calibration) of the readout."""

    label: str                            # "rotation_a.safetensors (a1b2c3d4e5)"
    aligned: float | None = None
    calibrated: float | None = None
    provenance: list = dataclasses.field(default_factory=list)   # what its files were fitted on, vs the encoder


@dataclasses.dataclass
class CompareResult:
    prompt_text: str = ""                 # the text the 4B encoder sees (emphasis syntax removed)
    raw: float | None = None
    aligned: float | None = None          # column A's (the first alignment)
    calibrated: float | None = None
    notes: list = dataclasses.field(default_factory=list)
    error: str | None = None
    columns: list = dataclasses.field(default_factory=list)   # CompareColumn per alignment compared

    def markdown(self) -> str:
        if self.error:
            return f"**Error:** {self.error}"
        explain = ("Cosine between the prompt's mean-pooled 4B and stock 0.6B embeddings; 1.0 = the adapter sees "
                   "the same average direction as with the stock encoder. The output scale does not change it.")
        if len(self.columns) < 2:
            lines = ["| 4B output | cosine with stock 0.6B |", "|---|---:|",
                     f"| raw (no alignment) | {_cell(self.raw)} |",
                     f"| aligned | {_cell(self.aligned)} |",
                     f"| aligned + calibrated | {_cell(self.calibrated)} |", "", explain]
            return "\n".join(lines + [f"- {n}" for n in self.notes])
        names = [f"{chr(65 + i)}: {c.label}" for i, c in enumerate(self.columns)]
        lines = ["| 4B output | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names),
                 "| raw (no alignment) | " + " | ".join(_cell(self.raw) for _ in self.columns) + " |",
                 "| aligned | " + " | ".join(_cell(c.aligned) for c in self.columns) + " |",
                 "| aligned + calibrated | " + " | ".join(_cell(c.calibrated) for c in self.columns) + " |",
                 "", explain]
        lines += [f"- {n}" for n in self.notes]
        lines += [f"- {chr(65 + i)}: {line}" for i, c in enumerate(self.columns) for line in c.provenance]
        return "\n".join(lines)


def _cell(v) -> str:
    return "–" if v is None else f"{v:.4f}"


class FitTab:
    def __init__(self, controller=None, stock_file_loader=None, on_progress=None):
        self._controller = controller
        self._load_stock_file = stock_file_loader or fit_encoders.load_stock_file
        self._on_progress = on_progress   # observer (tests): called with every FitProgress
        self._lock = threading.Lock()
        self._view = FitView(message="Pick the settings and press Start.")
        self._thread: threading.Thread | None = None
        self._starting = False
        self._cancel = threading.Event()

    @property
    def controller(self):
        if self._controller is None:
            self._controller = get_controller()
        return self._controller

    # ---- pickers ----------------------------------------------------------------------------------

    def weight_choices(self) -> list[str]:
        return _safe(self.controller.weight_choices, [AUTOMATIC])

    def alignment_choices(self) -> list[str]:
        return _safe(self.controller.alignment_choices, [AUTOMATIC])

    def calibration_choices(self) -> list[str]:
        return _safe(self.controller.calibration_choices, [AUTOMATIC])

    def stock_choices(self) -> list[str]:
        return [STOCK_AUTOMATIC] + [f.name for f in _safe(lambda: file_locator.list_stock_encoders(_extra_dirs()), [])]

    # ---- fit --------------------------------------------------------------------------------------

    def view(self) -> FitView:
        with self._lock:
            return dataclasses.replace(self._view)

    def start(self, request: FitRequest) -> FitView:
        """Check the inputs and start the fit in the background; a problem comes back as the message."""
        with self._lock:
            if self._starting or (self._thread is not None and self._thread.is_alive()):
                self._view.message = "A fit is already running; cancel it first."
                return dataclasses.replace(self._view)
            self._starting = True          # planning is slow: a second Start must not slip in meanwhile
        try:
            try:
                plan = self._plan_fit(request)
            except Qwen35Error as error:
                return self._set(FitView(state="error", message=str(error)))
            except Exception as error:  # noqa: BLE001 - never into gradio
                traceback.print_exc()
                return self._set(FitView(state="error", message=str(messages.unexpected(error))))
            self._cancel = threading.Event()
            self._set(FitView(state="starting", progress_text="loading the encoders",
                              message=f"Fitting into {plan['out_dir']} ..."))
            self._thread = threading.Thread(target=self._run, args=(plan,), name="qwen35-fit", daemon=True)
            self._thread.start()
            return self.view()
        finally:
            with self._lock:
                self._starting = False

    def cancel(self) -> FitView:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._view.message = "No fit is running."
                return dataclasses.replace(self._view)
            self._cancel.set()
            self._view.state = "cancelling"
            self._view.message = "Cancelling after the current batch ..."
            return dataclasses.replace(self._view)

    def wait(self, timeout: float | None = None) -> FitView:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.view()

    def watch(self, interval: float = 0.5):
        """Yield the view until the fit stops (the Start button's generator); at least once."""
        while True:
            view = self.view()
            yield view
            if not view.running:
                return
            time.sleep(interval)

    def _plan_fit(self, request: FitRequest) -> dict:
        name = (request.name or "").strip()
        if not _NAME_RE.match(name) or ".." in name:
            raise messages.fit_tab_error(f"output name {request.name!r} cannot be used as a folder name. Fix: use "
                                         f"letters, digits, '.', '_' or '-' (no slashes), for example 'my_alignment'.")
        try:
            limit, batch_size = int(float(request.limit or 0)), int(float(request.batch_size or 0))
        except (TypeError, ValueError):
            limit, batch_size = -1, 0
        if limit < 0 or batch_size < 1:
            raise messages.fit_tab_error(f"prompt count {request.limit!r} / batch size {request.batch_size!r}: use a "
                                         f"count >= 0 (0 = all) and a batch size >= 1.")
        settings = dataclasses.replace(ext_settings.read(), device=_device_choice(request.device))
        placement = placement_mod.resolve(settings)
        weights_path = file_locator.weights_path(request.encoder_file or AUTOMATIC, settings.search_dirs)
        stock = fit_encoders.stock_source(request.stock_file, settings.search_dirs)
        out_dir, cache_dir = fit_files.folders(name)
        for folder in (out_dir, cache_dir):
            fit_files.check_writable(folder)
        fit_files.check_outputs(out_dir, name, weights_path, batch_size, limit or None)
        return {"request": request, "name": name, "out_dir": out_dir, "cache_dir": cache_dir, "limit": limit or None,
                "batch_size": batch_size, "settings": settings, "placement": placement, "weights_path": weights_path,
                "stock": stock}

    def _run(self, plan: dict) -> None:
        request, placement = plan["request"], plan["placement"]
        encoder = None
        try:
            encoder = fit_encoders.load_4b(self.controller.holder, plan["weights_path"], plan["settings"], placement)
            e4 = OnDevice(encoder, placement, plan["weights_path"])
            e6 = fit_encoders.load_stock(plan["stock"], placement, self._load_stock_file)
            result = run_fit(e4, e6, plan["out_dir"], limit=plan["limit"], batch_size=plan["batch_size"],
                             cache_dir=plan["cache_dir"], progress=self._progress, cancel=self._cancel,
                             allow_underdetermined=request.allow_underdetermined,
                             extra_metadata={"made_by": f"{selection.current().name} tab (sd-qwen35-anima)"})
            names = fit_files.publish(result, plan["name"])
            meta = result.report.get("meta", {})
            self._set(FitView(state="done", fraction=1.0, progress_text="done", alignment_name=names[0],
                              calibration_name=names[1], report_md=fit_files.report(result, names, plan["cache_dir"]),
                              message=f"Done. Pick {names[0]} ({meta.get('alignment_hash')}) and {names[1]} "
                                      f"({meta.get('calibration_hash')}) in the alignment and calibration pickers "
                                      f"(press the refresh button there)."))
        except FitCancelled as error:
            view = self.view()
            self._set(FitView(state="cancelled", fraction=view.fraction, progress_text=view.progress_text,
                              message=f"Cancelled: {error} Press Start with the same output name to resume."))
        except Qwen35Error as error:
            self._set(FitView(state="error", message=_prefixed(str(error))))
        except BaseException as error:  # noqa: BLE001 - the thread must always end in a final state
            if placement_mod.is_oom(error):
                message = str(messages.out_of_memory(plan["weights_path"], placement))
            else:
                traceback.print_exc()
                message = str(messages.unexpected(error))
            self._set(FitView(state="error", message=message))
        finally:
            if encoder is not None:
                _safe(lambda: fit_encoders.release(encoder, placement), None)

    def _progress(self, p) -> None:
        with self._lock:
            if self._view.state in ("starting", "running"):
                self._view.state = "running"
            self._view.fraction = p.fraction
            self._view.progress_text = p.message
        if self._on_progress is not None:
            self._on_progress(p)

    def _set(self, view: FitView) -> FitView:
        with self._lock:
            self._view = view
            return dataclasses.replace(view)

    # ---- compare with stock -----------------------------------------------------------------------

    def compare(self, request: CompareRequest) -> CompareResult:
        """Cosines for one prompt with the given settings; errors come back in `.error`."""
        try:
            return self._compare(request)
        except Qwen35Error as error:
            return CompareResult(error=_prefixed(str(error)))
        except Exception as error:  # noqa: BLE001 - shown in the tab, never raised into gradio
            if placement_mod.is_oom(error):
                return CompareResult(error="out of memory; set the device to cpu and try again.")
            traceback.print_exc()
            return CompareResult(error=str(messages.unexpected(error)))

    def _compare(self, request: CompareRequest) -> CompareResult:
        settings = dataclasses.replace(ext_settings.read(), device=_device_choice(request.device))
        placement = placement_mod.resolve(settings)
        extra = settings.search_dirs
        weights_path = file_locator.weights_path(request.encoder_file or AUTOMATIC, extra)
        e6 = fit_encoders.load_stock(fit_encoders.stock_source(request.stock_file, extra), placement,
                                     self._load_stock_file)
        pairs = [(request.alignment_file or AUTOMATIC, request.calibration_file or AUTOMATIC)]
        if str(request.alignment_file_b or NONE_FILE) != NONE_FILE:
            pairs.append((request.alignment_file_b, request.calibration_file_b or NONE_FILE))
        files = [self._compare_files(a, c if request.use_calibration else None, extra) for a, c in pairs]
        strength = min(1.0, max(0.0, float(request.strength)))
        encoder_facts = self.controller.encoder_facts(weights_path)
        result = CompareResult()
        text = request.prompt or ""
        if callable(getattr(e6, "generation_text", None)):   # the loaded model's encoder (not a file)
            text = e6.generation_text(text)   # what a generation hands the 4B encoder
        result.prompt_text = text
        encoder = fit_encoders.load_4b(self.controller.holder, weights_path, settings, placement)
        e4 = OnDevice(encoder, placement, weights_path)
        try:
            result.raw = compare_with_stock(text, e4, e6, None)   # the raw embedding is shared by the columns
            for (alignment, calibration), (alignment_path, calibration_path) in files:
                column = self._column(text, e4, e6, alignment, calibration, strength, encoder_facts)
                result.columns.append(column)
                if len(result.columns) > 1:
                    continue
                result.aligned, result.calibrated = column.aligned, column.calibrated   # column A, as before
                if alignment is None:
                    result.notes.append("No alignment file found: fit one above, or put one into models/qwen35/.")
                else:
                    result.notes.append(f"Alignment {os.path.basename(alignment_path)} at strength {strength:g}.")
                if request.use_calibration and calibration is None:
                    result.notes.append("No calibration file found.")
                elif calibration is not None and alignment is not None:
                    result.notes.append(f"Calibration {os.path.basename(calibration_path)} (fitted for strength 1.0).")
            if len(result.columns) == 1:
                result.notes += result.columns[0].provenance
        finally:
            fit_encoders.release(encoder, placement)
        return result

    def _compare_files(self, alignment_file, calibration_file, extra):
        """((alignment, calibration), (their paths)) for one column; a calibration of None is not used."""
        alignment_path = file_locator.resolve(alignment_file, file_locator.list_alignments(extra),
                                              file_locator.PREFERRED_ALIGNMENT, "alignment")
        calibration_path = None
        if calibration_file is not None and calibration_file != NONE_FILE:
            calibration_path = file_locator.resolve(calibration_file, file_locator.list_calibrations(extra),
                                                    file_locator.PREFERRED_CALIBRATION, "calibration")
        loaded = tuple(self.controller.stage_file(kind, path) if path is not None else None
                       for kind, path in (("alignment", alignment_path), ("calibration", calibration_path)))
        return loaded, (alignment_path, calibration_path)

    @staticmethod
    def _column(text, e4, e6, alignment, calibration, strength, encoder_facts) -> CompareColumn:
        """The cosines of one alignment (and its calibration), and what its files were fitted on. A synthetic demo
        fit is only warned about here: the panel generates nothing."""
        facts = [provenance.FileFacts.of(f) if f is not None else None for f in (alignment, calibration)]
        label = facts[0].describe() if facts[0] is not None else "no alignment file"
        column = CompareColumn(label)
        if alignment is not None:
            column.aligned = compare_with_stock(text, e4, e6, OutputStage(alignment, strength=strength))
            if calibration is not None:
                stage = OutputStage(alignment, strength=strength, calibration=calibration)
                column.calibrated = compare_with_stock(text, e4, e6, stage)
        verdicts = provenance.check(encoder_facts, facts[0], facts[1], strength) if alignment is not None else []
        column.provenance = [messages.provenance_line(v, encoder_facts, "the encoder file picked above")
                             for v in verdicts]
        return column


def _device_choice(device: str) -> str:
    device = str(device or "auto").lower()
    return device if device in DEVICE_CHOICES else "auto"


def _extra_dirs():
    return ext_settings.read().search_dirs


def _prefixed(text: str) -> str:
    return text if text.startswith(messages.PREFIX) else f"{messages.PREFIX}: {text}"


def _safe(fn, default):
    try:
        return fn()
    except Exception:  # noqa: BLE001 - the pickers and the clean-up fall back rather than break the tab
        return default


_tab: FitTab | None = None


def get_fit_tab() -> FitTab:
    """One per process: a running fit survives "Reload UI" (the script file is executed again)."""
    global _tab
    if _tab is None:
        _tab = FitTab()
    return _tab
