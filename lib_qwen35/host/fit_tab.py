"""The logic behind the "Qwen3.5 Alignment" tab: fit an alignment in the WebUI, and "compare with stock".

Fit: `FitTab.start(FitRequest)` checks the inputs at once (output name, 4B file, a stock encoder), then runs
`lib_qwen35.alignment.fit.run_fit` in a background thread. The UI polls `view()` / `watch()` (a generator) for the
progress bar, and `cancel()` sets the fit's cancel event. Starting again with the same name resumes: the
embedding chunks are cached on disk.
    stock encoder: the loaded Anima model's own Qwen3-0.6B (WebUIHost.stock_encoder), else a
                   qwen_3_06b_base.safetensors picked by the user (lib_qwen35.model.qwen3.load_qwen3_encoder)
    4B encoder:    the accordion's encoder (the controller's holder: one copy in RAM), kept on the fit's
                   device for every batch (a generation in between may move it back to RAM)
    output:        models/qwen35/<name>/rotation_<name>.safetensors, calibration_<name>.safetensors and the
                   report; the pickers search models/qwen35/ and list files by base name, so the names are
                   unique per fit. The embedding cache goes to models/qwen35_fit_cache/<name>/, outside the
                   pickers' folders (its chunk files would otherwise be offered as weights).
Compare: cosine between the pooled 4B embedding of a prompt (raw / aligned / aligned + calibrated) and the
pooled stock 0.6B one, through `lib_qwen35.alignment.fit.compare_with_stock`.

Nothing here raises into gradio: every public method turns errors into the text it returns.
"""

from __future__ import annotations

import dataclasses
import html
import inspect
import os
import re
import threading
import time
import traceback

from lib_qwen35.errors import Qwen35Error

from . import a1111, ext_settings, file_locator, messages, selection
from . import placement as placement_mod
from .params import AUTOMATIC

TAB_TITLE = "Qwen3.5 Alignment"
STOCK_AUTOMATIC = "Automatic (the loaded Anima model's encoder)"
PREFERRED_STOCK_FILE = "qwen_3_06b_base.safetensors"
STOCK_MARKER_SUFFIX = "layers.0.self_attn.q_norm.weight"  # plain Qwen3 (absent in Qwen3.5)
FIT_CACHE_FOLDER = "qwen35_fit_cache"                    # models/qwen35_fit_cache/<name>/
DEVICE_CHOICES = ext_settings.DEVICE_CHOICES
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class FitTabError(Qwen35Error):
    """A problem with the tab's inputs; the text says what to change."""


def _err(text: str) -> FitTabError:
    return FitTabError(f"{messages.PREFIX}: {text}")


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
                 "Cosine between the prompt's mean-pooled 4B and stock 0.6B embeddings; 1.0 = the adapter sees "
                 "the same average direction as with the stock encoder. The output scale does not change it."]
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)


class FitTab:
    def __init__(self, controller=None, stock_file_loader=None, on_progress=None):
        self._controller = controller
        self._load_stock_file = stock_file_loader or _default_stock_file_loader
        self._on_progress = on_progress   # observer (tests): called with every FitProgress
        self._lock = threading.Lock()
        self._view = FitView(message="Pick the settings and press Start.")
        self._thread: threading.Thread | None = None
        self._starting = False
        self._cancel = threading.Event()

    @property
    def controller(self):
        if self._controller is None:
            from .controller import get_controller

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
        return [STOCK_AUTOMATIC] + [f.name for f in _safe(lambda: list_stock_files(_extra_dirs()), [])]

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
            raise _err(f"output name {request.name!r} cannot be used as a folder name. Fix: use letters, digits, "
                       f"'.', '_' or '-' (no slashes), for example 'my_alignment'.")
        try:
            limit, batch_size = int(float(request.limit or 0)), int(float(request.batch_size or 0))
        except (TypeError, ValueError):
            limit, batch_size = -1, 0
        if limit < 0 or batch_size < 1:
            raise _err(f"prompt count {request.limit!r} / batch size {request.batch_size!r}: use a count >= 0 "
                       f"(0 = all) and a batch size >= 1.")
        settings = dataclasses.replace(ext_settings.read(), device=_device_choice(request.device))
        placement = placement_mod.resolve(settings)
        weights_path = self._weights_path(request.encoder_file, settings)
        stock = self._stock_source(request.stock_file, settings)
        out_dir = os.path.join(file_locator.dedicated_dir(), name)
        cache_dir = os.path.join(selection.current().models_path(), FIT_CACHE_FOLDER, name)
        for folder in (out_dir, cache_dir):
            _check_writable(folder)
        _check_outputs(out_dir, name, weights_path, batch_size, limit or None)
        return dict(request=request, name=name, out_dir=out_dir, cache_dir=cache_dir, limit=limit or None,
                    batch_size=batch_size, settings=settings, placement=placement, weights_path=weights_path,
                    stock=stock)

    def _run(self, plan: dict) -> None:
        request, placement = plan["request"], plan["placement"]
        encoder = None
        try:
            encoder = self._load_4b(plan["weights_path"], plan["settings"], placement)
            e4 = OnDevice(encoder, placement, plan["weights_path"])
            e6 = self._load_stock(plan["stock"], placement)
            from lib_qwen35.alignment.run import run_fit

            result = run_fit(e4, e6, plan["out_dir"], limit=plan["limit"], batch_size=plan["batch_size"],
                             cache_dir=plan["cache_dir"], progress=self._progress, cancel=self._cancel,
                             allow_underdetermined=request.allow_underdetermined,
                             extra_metadata={"made_by": f"{selection.current().name} tab (sd-qwen35-anima)"})
            names = _publish(result, plan["name"])
            self._set(FitView(state="done", fraction=1.0, progress_text="done", alignment_name=names[0],
                              calibration_name=names[1], report_md=_report_md(result, names, plan["cache_dir"]),
                              message=f"Done. Pick {names[0]} and {names[1]} in the alignment and calibration "
                                      f"pickers (press the refresh button there)."))
        except Qwen35Error as error:
            from lib_qwen35.errors import FitCancelled

            if isinstance(error, FitCancelled):
                view = self.view()
                self._set(FitView(state="cancelled", fraction=view.fraction, progress_text=view.progress_text,
                                  message=f"Cancelled: {error} Press Start with the same output name to resume."))
            else:
                self._set(FitView(state="error", message=_prefixed(str(error))))
        except BaseException as error:  # the thread must always end in a final state
            if placement_mod.is_oom(error):
                message = str(messages.out_of_memory(plan["weights_path"], placement))
            else:
                traceback.print_exc()
                message = str(messages.unexpected(error))
            self._set(FitView(state="error", message=message))
        finally:
            if encoder is not None and not placement.keep_resident:
                with selection.current().generation_lock():
                    _safe(lambda: placement_mod.release(encoder), None)

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

    # ---- resolving encoders ---------------------------------------------------------------------

    def _weights_path(self, name: str, settings) -> str:
        extra = settings.search_dirs
        path = file_locator.resolve(name or AUTOMATIC, file_locator.list_weights(extra), file_locator.PREFERRED_WEIGHTS)
        if path is None:
            raise messages.weights_not_found(name or AUTOMATIC, [d for d, _ in file_locator.weights_search_dirs(extra)])
        return path

    def _stock_source(self, choice: str, settings):
        """The loaded model's stock encoder (WebUIHost.stock_encoder), or the path of a Qwen3-0.6B file to
        load; raises with the fix."""
        choice = choice or STOCK_AUTOMATIC
        files = list_stock_files(settings.search_dirs)
        if choice == STOCK_AUTOMATIC:
            loaded = selection.current().stock_encoder(a1111.sd_model())
            if loaded is not None:
                return loaded
            path = file_locator.resolve(AUTOMATIC, files, PREFERRED_STOCK_FILE)
            if path is None:
                raise _err("no Anima model is loaded and no Qwen3-0.6B file was chosen, so there is no stock "
                           "encoder to fit against. Fix: load an Anima checkpoint in the checkpoint picker, or "
                           f"put {PREFERRED_STOCK_FILE} into {_text_encoder_folder()}, press the refresh button and "
                           "pick it under 'Stock encoder'.")
            return path
        path = file_locator.resolve(choice, files, PREFERRED_STOCK_FILE)
        if path is None:
            where = "; ".join(stock_search_dirs(settings.search_dirs))
            raise _err(f"stock encoder file '{choice}' not found. Searched: {where}. Fix: pick "
                       f"'{STOCK_AUTOMATIC}' with an Anima model loaded, or a Qwen3-0.6B file from the list.")
        return path

    def _load_stock(self, source, placement):
        if not isinstance(source, str):
            return source
        try:
            return self._load_stock_file(source, placement)
        except Qwen35Error as error:
            raise _err(f"cannot use the stock encoder file {source}: {error} Fix: pick the Qwen3-0.6B file "
                       f"Anima uses ({PREFERRED_STOCK_FILE}).") from error

    def _load_4b(self, path: str, settings, placement):
        try:
            return self.controller.holder.encoder(path, placement.dtype, placement.device.type == "cpu",
                                                  settings.encoder_cache_size, settings.embedding_cache_size)
        except Exception as error:
            raise messages.weights_invalid(path, error) from error

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
        from lib_qwen35.alignment.compare import compare_with_stock
        from lib_qwen35.model.output_stage import OutputStage

        settings = dataclasses.replace(ext_settings.read(), device=_device_choice(request.device))
        placement = placement_mod.resolve(settings)
        weights_path = self._weights_path(request.encoder_file, settings)
        e6 = self._load_stock(self._stock_source(request.stock_file, settings), placement)
        extra = settings.search_dirs
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
        encoder = self._load_4b(weights_path, settings, placement)
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
                    result.calibrated = compare_with_stock(text, e4, e6, OutputStage(alignment, strength=strength, calibration=calibration))
                    result.notes.append(f"Calibration {os.path.basename(calibration_path)} (fitted for strength 1.0).")
        finally:
            if not placement.keep_resident:
                with selection.current().generation_lock():
                    placement_mod.release(encoder)
        return result

    def _stage_file(self, kind: str, path: str | None):
        if path is None:
            return None
        try:
            return self.controller.holder.stage_file(kind, path)
        except Exception as error:
            raise messages.output_stage_invalid(kind, path, error) from error


class OnDevice:
    """The 4B encoder kept on the compute device for every call (a generation in between may have moved
    it back to RAM), each call under the WebUI's generation lock. Exposes what `run_fit` reads: tokenize,
    encode_batch, identity, device (the compute device: part of the cache key), dtype, path, short_hash."""

    def __init__(self, encoder, placement, weights_path: str):
        self.encoder, self.placement, self.weights_path = encoder, placement, weights_path
        self.identity = getattr(encoder, "identity", None)
        self.path = getattr(encoder, "path", weights_path)
        self.dtype = getattr(encoder, "dtype", placement.dtype)
        self.device = placement.device

    @property
    def short_hash(self):
        return getattr(self.encoder, "short_hash", None)

    def tokenize(self, text: str) -> list[int]:
        return self.encoder.tokenize(text)

    def encode_batch(self, batch, use_cache=None, max_batch=None):
        options = {}
        try:
            accepted = inspect.signature(self.encoder.encode_batch).parameters
        except (TypeError, ValueError):
            accepted = {}
        if use_cache is not None and "use_cache" in accepted:
            options["use_cache"] = use_cache
        if max_batch is not None and "max_batch" in accepted:
            options["max_batch"] = max_batch
        with selection.current().generation_lock():
            if placement_mod._device_of(self.encoder) != self.device:
                if self.device.type != "cpu":
                    placement_mod._make_room(self.device, placement_mod.required_bytes(self.weights_path))
                self.encoder.to(self.device)
            return self.encoder.encode_batch(batch, **options)


# ---- files ------------------------------------------------------------------------------------------

def stock_search_dirs(extra_dirs=()) -> list[str]:
    return list(dict.fromkeys(selection.current().text_encoder_dirs() + [file_locator.dedicated_dir()] + list(extra_dirs)))


def list_stock_files(extra_dirs=()) -> list:
    """Qwen3-0.6B files (plain Qwen3 layout, recognised by their tensors) in the text-encoder folders,
    models/qwen35/ and the extra folders."""
    found, seen = [], set()
    for folder in stock_search_dirs(extra_dirs):
        for path in file_locator._walk(folder):
            name = os.path.basename(path)
            if not name.endswith(".safetensors") or name in seen:
                continue
            names = file_locator._tensor_names(path) or frozenset()
            if any(n.endswith(STOCK_MARKER_SUFFIX) for n in names) and not any(n.endswith(file_locator.QWEN35_MARKER_SUFFIX) for n in names):
                seen.add(name)
                found.append(file_locator.FoundFile(name, path))
    return found


def output_names(name: str) -> tuple[str, str]:
    """Picker names of a fit's two files: unique per fit, because the pickers list files by base name."""
    return f"rotation_{name}.safetensors", f"calibration_{name}.safetensors"


def _check_outputs(out_dir: str, name: str, weights_path: str, batch_size: int, limit) -> None:
    """Before the fit: every file it will write may be written (none is the weights file, none is a file
    this tool did not write), and its numbers are valid."""
    from lib_qwen35.alignment.run import check_request
    from lib_qwen35.files.checkpoint import written_by_us
    from lib_qwen35.files.safe_io import check_output

    try:
        check_request(out_dir, batch_size=batch_size, limit=limit, inputs=[("4B weights file", weights_path)])
        for file_name in output_names(name):
            check_output(os.path.join(out_dir, file_name), "alignment file", ours=written_by_us,
                         inputs=[("4B weights file", weights_path)])
    except Qwen35Error as error:
        raise _err(f"{error} (output name {name!r}; choosing another name also fixes it)") from error


def _publish(result, name: str) -> tuple[str, str]:
    """Rename run_fit's fixed file names to the per-fit names the pickers can tell apart (checked again:
    the fit took a while)."""
    from lib_qwen35.files.checkpoint import written_by_us
    from lib_qwen35.files.safe_io import check_output

    names = output_names(name)
    for source, file_name in zip((result.rotation_path, result.calibration_path), names):
        target = check_output(os.path.join(result.out_dir, file_name), "alignment file", ours=written_by_us)
        os.replace(source, target)
    return names


def _report_md(result, names, cache_dir) -> str:
    from lib_qwen35.alignment.report import report_markdown

    meta = result.report.get("meta", {})
    speed = meta.get("encodings_per_second")
    lines = [report_markdown(result.report), "",
             f"Files in `{result.out_dir}`: `{names[0]}`, `{names[1]}`, `{os.path.basename(result.report_md)}`, "
             f"`{os.path.basename(result.report_json)}`.",
             f"Embedding time {meta.get('embed_seconds')} s ({meta.get('encodings_computed')} prompt encodings computed"
             + (f", {speed}/s" if speed else "") + f", {meta.get('encodings_from_cache')} from the cache).",
             f"The embedding cache `{cache_dir}` lets a later run resume or refit; delete it when you are done."]
    return "\n".join(lines)


def _check_writable(folder: str) -> None:
    from lib_qwen35.files.safe_io import check_writable_folder

    try:
        os.makedirs(folder, exist_ok=True)
        check_writable_folder(folder, "fit's files")
    except (OSError, Qwen35Error) as error:
        raise _err(f"cannot write to the output folder {folder}: {getattr(error, 'strerror', None) or error}. Fix: "
                   f"check the folder's permissions and free disk space, or choose another output name.") from error


def _default_stock_file_loader(path: str, placement):
    from lib_qwen35.model.qwen3 import load_qwen3_encoder

    return load_qwen3_encoder(path, device=placement.device, dtype=placement.dtype)


def _device_choice(device: str) -> str:
    device = str(device or "auto").lower()
    return device if device in DEVICE_CHOICES else "auto"


def _text_encoder_folder() -> str:
    dirs = selection.current().text_encoder_dirs()
    return dirs[0] if dirs else "the WebUI's text-encoder folder"


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
