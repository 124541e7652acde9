"""The "Qwen3.5 Alignment" tab's state: one fit at a time in a background thread, and compare with stock.

Fit: `FitTab.start(FitRequest)` checks the inputs at once (output name, 4B file, a stock encoder, the files it
will write: fit_files.py), then runs `lib_qwen35.alignment.run.run_fit` on the two encoders of fit_encoders.py
in a background thread. The UI polls `view()` / `watch()` (a generator) for the progress bar, and `cancel()`
sets the fit's cancel event. Starting again with the same name resumes: the embedding chunks are cached on disk.
Compare: cosine between the pooled 4B embedding of a prompt (raw / aligned / aligned + calibrated) and the
pooled stock 0.6B one, through `lib_qwen35.alignment.compare.compare_with_stock`.

Nothing here raises into gradio: every public method turns errors into the text it returns.
"""

from __future__ import annotations

import dataclasses
import html
import os
import re
import threading
import time
import traceback

from lib_qwen35.alignment.compare import compare_with_stock
from lib_qwen35.alignment.run import run_fit
from lib_qwen35.errors import FitCancelled, Qwen35Error
from lib_qwen35.model.output_stage import OutputStage

from . import ext_settings, file_locator, fit_encoders, fit_files, messages, selection
from . import placement as placement_mod
from .controller import get_controller
from .fit_encoders import STOCK_AUTOMATIC, OnDevice
from .params import AUTOMATIC

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
class CompareResult:
    prompt_text: str = ""                 # the text the 4B encoder sees (emphasis syntax removed)
    raw: float | None = None
    aligned: float | None = None
    calibrated: float | None = None
    notes: list = dataclasses.field(default_factory=list)
    error: str | None = None

    def markdown(self) -> str:
        if self.error:
            return f"**Error:** {self.error}"

        def cell(v):
            return "–" if v is None else f"{v:.4f}"

        lines = ["| 4B output | cosine with stock 0.6B |", "|---|---:|",
                 f"| raw (no alignment) | {cell(self.raw)} |",
                 f"| aligned | {cell(self.aligned)} |",
                 f"| aligned + calibrated | {cell(self.calibrated)} |", "",
                 ("Cosine between the prompt's mean-pooled 4B and stock 0.6B embeddings; 1.0 = the adapter sees "
                  "the same average direction as with the stock encoder. The output scale does not change it.")]
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)


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
            except Exception as error:  # never into gradio
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
            self._set(FitView(state="done", fraction=1.0, progress_text="done", alignment_name=names[0],
                              calibration_name=names[1], report_md=fit_files.report(result, names, plan["cache_dir"]),
                              message=f"Done. Pick {names[0]} and {names[1]} in the alignment and calibration "
                                      f"pickers (press the refresh button there)."))
        except FitCancelled as error:
            view = self.view()
            self._set(FitView(state="cancelled", fraction=view.fraction, progress_text=view.progress_text,
                              message=f"Cancelled: {error} Press Start with the same output name to resume."))
        except Qwen35Error as error:
            self._set(FitView(state="error", message=_prefixed(str(error))))
        except BaseException as error:  # the thread must always end in a final state
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
        except Exception as error:
            if placement_mod.is_oom(error):
                return CompareResult(error="out of memory; set the device to cpu and try again.")
            traceback.print_exc()
            return CompareResult(error=str(messages.unexpected(error)))

    def _compare(self, request: CompareRequest) -> CompareResult:
        settings = dataclasses.replace(ext_settings.read(), device=_device_choice(request.device))
        placement = placement_mod.resolve(settings)
        extra = settings.search_dirs
        weights_path = file_locator.weights_path(request.encoder_file or AUTOMATIC, extra)
        e6 = fit_encoders.load_stock(fit_encoders.stock_source(request.stock_file, extra), placement, self._load_stock_file)
        result = CompareResult()
        alignment_path = file_locator.resolve(request.alignment_file or AUTOMATIC, file_locator.list_alignments(extra),
                                              file_locator.PREFERRED_ALIGNMENT)
        calibration_path = None
        if request.use_calibration:
            calibration_path = file_locator.resolve(request.calibration_file or AUTOMATIC,
                                                    file_locator.list_calibrations(extra),
                                                    file_locator.PREFERRED_CALIBRATION)
        alignment = self._stage_file("alignment", alignment_path)
        calibration = self._stage_file("calibration", calibration_path)
        strength = min(1.0, max(0.0, float(request.strength)))
        text = request.prompt or ""
        if callable(getattr(e6, "generation_text", None)):   # the loaded model's encoder (not a file)
            text = e6.generation_text(text)   # what a generation hands the 4B encoder
        result.prompt_text = text
        encoder = fit_encoders.load_4b(self.controller.holder, weights_path, settings, placement)
        e4 = OnDevice(encoder, placement, weights_path)
        try:
            result.raw = compare_with_stock(text, e4, e6, None)
            if alignment is None:
                result.notes.append("No alignment file found: fit one above, or put one into models/qwen35/.")
            else:
                result.aligned = compare_with_stock(text, e4, e6, OutputStage(alignment, strength=strength))
                result.notes.append(f"Alignment {os.path.basename(alignment_path)} at strength {strength:g}.")
            if request.use_calibration:
                if calibration is None:
                    result.notes.append("No calibration file found.")
                elif alignment is not None:
                    stage = OutputStage(alignment, strength=strength, calibration=calibration)
                    result.calibrated = compare_with_stock(text, e4, e6, stage)
                    result.notes.append(f"Calibration {os.path.basename(calibration_path)} (fitted for strength 1.0).")
        finally:
            fit_encoders.release(encoder, placement)
        return result

    def _stage_file(self, kind: str, path: str | None):
        if path is None:
            return None
        try:
            return self.controller.holder.stage_file(kind, path)
        except Exception as error:
            raise messages.output_stage_invalid(kind, path, error) from error


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
    except Exception:
        return default


_tab: FitTab | None = None


def get_fit_tab() -> FitTab:
    """One per process: a running fit survives "Reload UI" (the script file is executed again)."""
    global _tab
    if _tab is None:
        _tab = FitTab()
    return _tab
