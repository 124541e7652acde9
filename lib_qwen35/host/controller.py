"""What the Script calls. One module-level Controller survives "Reload UI", so loaded weights do too.

Order inside an A1111-family `process_images` (Forge Neo and SD.Next alike):
    before_process -> model (re)load -> Script.process -> per batch: model reload check ->
    Script.process_batch -> the conditioning (-> the seam we patched) -> sampling (hires) -> Script.postprocess

WebUIs catch exceptions raised by Script.process/process_batch and carry on, so errors found there are
*armed* (WebUIHost.arm_error): the running WebUI's package raises them where it cannot swallow them,
which stops that generation with the message in the UI and console. The WebUI's conditioning caches are
synced for that, so they cannot skip it. Everything that differs between WebUIs is asked of
`selection.current()`; which seam is live matters only to the WebUI's package.
"""

from __future__ import annotations

import itertools
import traceback

from lib_qwen35.errors import Qwen35Error
from lib_qwen35.files.checkpoint import file_identity, short_hash

from . import a1111, active_state, ext_settings, file_locator, infotext, messages, preview, selection, status, xyz_axes
from . import placement as placement_mod
from .encoder_holder import EncoderHolder
from .interface import OFF_SIGNATURE
from .params import AUTOMATIC, OVERRIDE_ATTR, GenerationParams, InvalidSetting
from .replacement import EncodeRun, make_encode


class Controller:
    def __init__(self, encoder_loader=None):
        self.holder = EncoderHolder(encoder_loader)
        self._error_ids = itertools.count(1)
        self._hashes: dict[str, str] = {}

    # ---- Script callbacks -----------------------------------------------------------------------

    def process(self, p, *args) -> EncodeRun | None:
        """Arm (or not) the replacement for this generation; returns the run when armed."""
        webui = selection.current()
        active_state.disarm()
        webui.disarm_error()
        infotext.remove(p)
        overrides = getattr(p, OVERRIDE_ATTR, None)
        try:
            params, invalid = GenerationParams.from_args(args).with_overrides(overrides), None
        except InvalidSetting as error:   # reported below, inside the generation, if the encoder is wanted
            params, invalid = None, error
        if not (params.enabled if params is not None else GenerationParams.requested_enabled(args, overrides)):
            webui.sync_caches(p, OFF_SIGNATURE)
            status.set_off()
            return None

        located = webui.locate(a1111.sd_model())
        if located.kind in ("not_anima", "no_model"):
            webui.sync_caches(p, OFF_SIGNATURE)
            status.set_not_anima(located.model)
            messages.console(f"enabled, but the loaded model is not Anima ({located.model}): nothing changed.")
            return None
        if located.kind == "unsupported":   # Anima, but a seam we cannot patch: never silently stock
            self._arm_error(p, webui.unsupported(located))
            return None
        webui.install(located)

        try:
            if invalid is not None:
                raise messages.invalid_setting(invalid)
            settings = ext_settings.read()
            run = self.plan(params, settings)
            self._load_output_stage(run)
            if not settings.keep_resident:
                self.holder.release_resident()  # "keep resident" was just turned off
            signature = run.signature()
        except Qwen35Error as error:
            self._arm_error(p, error)
            return None
        except Exception as error:  # the WebUI would swallow it and silently generate with the stock encoder
            traceback.print_exc()
            self._arm_error(p, messages.unexpected(error))
            return None

        active_state.arm(make_encode(run, self.holder))
        webui.sync_caches(p, signature)
        infotext.write(p, run)
        status.set_armed(run, located)
        return run

    def process_batch(self, p, *args, **kwargs) -> None:
        """The WebUI may reload or switch the model between process() and this batch's conditioning: follow it."""
        webui = selection.current()
        if webui.error_pending() is not None:
            webui.follow_model(a1111.sd_model())
        if not active_state.is_armed():
            return
        located = webui.locate(a1111.sd_model())
        if located.is_anima:
            webui.install(located)
        elif located.kind == "unsupported":
            active_state.disarm()
            self._arm_error(p, webui.unsupported(located))

    def postprocess(self, p, *args) -> None:
        self.after_process(p)

    def after_process(self, p=None) -> None:
        """The generation ended (postprocess, or the WebUI's after-process callback, which also runs when
        a generation was interrupted or failed and postprocess was skipped)."""
        active_state.disarm()
        selection.current().disarm_error()

    # ---- WebUI callbacks ------------------------------------------------------------------------

    def on_model_loaded(self, sd_model) -> None:
        webui = selection.current()
        located = webui.locate(sd_model)
        if located.is_anima:
            webui.install(located)  # harmless while disarmed: the stock method runs
        elif located.kind == "unsupported":
            messages.console(f"warning: {webui.unsupported(located)}")

    def on_script_unloaded(self) -> None:
        webui = selection.current()
        active_state.disarm()
        webui.disarm_error()
        webui.restore_all()

    # ---- planning -------------------------------------------------------------------------------

    def plan(self, params: GenerationParams, settings) -> EncodeRun:
        """Resolve the picked files and the placement; raises Qwen35Error with the fix."""
        extra = settings.search_dirs
        weights_path = file_locator.weights_path(params.encoder_file, extra)
        alignment_path = file_locator.output_stage_path("alignment", params.alignment_file, extra) if params.use_alignment else None
        calibration_path = (file_locator.output_stage_path("calibration", params.calibration_file, extra)
                            if params.use_calibration else None)
        try:
            identity = file_identity(weights_path)
            weights_hash = self._short_hash(weights_path, identity)
        except OSError as error:
            raise messages.weights_invalid(weights_path, error) from error
        return EncodeRun(
            weights_path=weights_path,
            weights_identity=identity,
            weights_hash=weights_hash,
            alignment_path=alignment_path,
            alignment_strength=params.alignment_strength,
            calibration_path=calibration_path,
            output_scale=params.output_scale,
            placement=placement_mod.resolve(settings),
            encoder_cache_size=settings.encoder_cache_size,
            embedding_cache_size=settings.embedding_cache_size,
        )

    def _load_output_stage(self, run: EncodeRun) -> None:
        """Load (and so validate) the alignment / calibration files now, for an early, precise error."""
        for kind, path in (("alignment", run.alignment_path), ("calibration", run.calibration_path)):
            if path is None:
                continue
            try:
                self.holder.stage_file(kind, path)
            except Exception as error:
                raise messages.output_stage_invalid(kind, path, error) from error

    def _short_hash(self, path: str, identity: str) -> str:
        if identity not in self._hashes:
            self._hashes[identity] = short_hash(path)
        return self._hashes[identity]

    def _arm_error(self, p, error: Qwen35Error) -> None:
        webui = selection.current()
        webui.arm_error(a1111.sd_model(), error)
        webui.sync_caches(p, ("error", next(self._error_ids)))  # never served from the WebUI's cache
        status.set_error(str(error))
        messages.console(str(error))

    # ---- UI helpers -----------------------------------------------------------------------------

    def weight_choices(self) -> list[str]:
        return [AUTOMATIC] + [f.name for f in file_locator.list_weights(ext_settings.read().search_dirs)]

    def alignment_choices(self) -> list[str]:
        return [AUTOMATIC] + [f.name for f in file_locator.list_alignments(ext_settings.read().search_dirs)]

    def calibration_choices(self) -> list[str]:
        return [AUTOMATIC] + [f.name for f in file_locator.list_calibrations(ext_settings.read().search_dirs)]

    def status_text(self, *args) -> str:
        """The accordion's status box for its current controls (`args` in ARG_NAMES order)."""
        return status.panel(preview.describe(self, args))

    def register_xyz_axes(self) -> int:
        return xyz_axes.register(lambda: self.weight_choices()[1:])


_controller: Controller | None = None


def get_controller() -> Controller:
    global _controller
    if _controller is None:
        _controller = Controller()
    return _controller


def register_callbacks(controller: Controller | None = None) -> None:
    """Called when the script file is loaded (the WebUI clears callbacks before each load)."""
    controller = controller or get_controller()
    selection.current()  # pick the WebUI now: an unrecognised one is reported at start-up
    callbacks = a1111.script_callbacks()
    if callbacks is None:
        return
    callbacks.on_ui_settings(ext_settings.register)
    callbacks.on_before_ui(controller.register_xyz_axes)
    callbacks.on_model_loaded(controller.on_model_loaded)
    callbacks.on_script_unloaded(controller.on_script_unloaded)
    if callable(getattr(callbacks, "on_after_process", None)):  # SD.Next: runs even when postprocess is skipped
        callbacks.on_after_process(controller.after_process)
    controller.register_xyz_axes()  # xyz_grid.py (the WebUI's scripts) is loaded before extensions
