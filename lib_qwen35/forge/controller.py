"""What the Script calls. One module-level Controller survives "Reload UI", so loaded weights do too.

Order inside Forge's `process_images` (modules/processing.py):
    before_process -> model (re)load -> Script.process -> per batch: model reload check ->
    Script.process_batch -> p.setup_conds() (-> our hook) -> sampling (hires conds) -> Script.postprocess

Forge catches exceptions raised by Script.process/process_batch and carries on, so errors found there
are *armed* (error_guard): they are raised when the conditioning is computed, which stops that
generation with the message in the UI and console. The cond cache is invalidated for that, so it cannot
be skipped. Which engine generation is live (engines/) matters only to model_detection and the hook.
"""

from __future__ import annotations

import itertools
import traceback

from lib_qwen35.checkpoint import file_identity, short_hash
from lib_qwen35.errors import Qwen35Error

from . import active_state, cond_cache, error_guard, ext_settings, file_locator, host, hook, infotext, messages, model_detection, preview, status, xyz_axes
from . import placement as placement_mod
from .encoder_holder import EncoderHolder
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
        active_state.disarm()
        error_guard.disarm()
        infotext.remove(p)
        overrides = getattr(p, OVERRIDE_ATTR, None)
        try:
            params, invalid = GenerationParams.from_args(args).with_overrides(overrides), None
        except InvalidSetting as error:   # reported below, inside the generation, if the encoder is wanted
            params, invalid = None, error
        if not (params.enabled if params is not None else GenerationParams.requested_enabled(args, overrides)):
            cond_cache.sync(p, cond_cache.OFF)
            status.set_off()
            return None

        sd_model = host.sd_model()
        located = model_detection.locate(sd_model)
        if located.kind in ("not_anima", "no_model"):
            cond_cache.sync(p, cond_cache.OFF)
            status.set_not_anima(located.model)
            messages.console(f"enabled, but the loaded model is not Anima ({located.model}): nothing changed.")
            return None
        if located.kind == "unsupported":   # Anima, but an engine we cannot hook: never silently stock
            self._arm_error(p, messages.unsupported_engine(located))
            return None
        hook.install(located.engine, located.generation)

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
        except Exception as error:  # Forge would swallow it and silently generate with the stock encoder
            traceback.print_exc()
            self._arm_error(p, messages.unexpected(error))
            return None

        active_state.arm(make_encode(run, self.holder), label=run.weights_name)
        cond_cache.sync(p, signature)
        infotext.write(p, run)
        status.set_armed(run, located)
        return run

    def process_batch(self, p, *args, **kwargs) -> None:
        """Forge may reload the model between process() and this batch's setup_conds: follow it."""
        if error_guard.pending() is not None:
            error_guard.follow(host.sd_model())
        if not active_state.is_armed():
            return
        located = model_detection.locate(host.sd_model())
        if located.is_anima:
            hook.install(located.engine, located.generation)
        elif located.kind == "unsupported":
            active_state.disarm()
            self._arm_error(p, messages.unsupported_engine(located))

    def postprocess(self, p, *args) -> None:
        active_state.disarm()
        error_guard.disarm()

    # ---- host callbacks -------------------------------------------------------------------------

    def on_model_loaded(self, sd_model) -> None:
        located = model_detection.locate(sd_model)
        if located.is_anima:
            hook.install(located.engine, located.generation)  # harmless while disarmed: the stock method runs
        elif located.kind == "unsupported":
            messages.console(f"warning: {messages.unsupported_engine(located)}")

    def on_script_unloaded(self) -> None:
        active_state.disarm()
        error_guard.disarm()
        hook.restore_all()

    # ---- planning -------------------------------------------------------------------------------

    def plan(self, params: GenerationParams, settings) -> EncodeRun:
        """Resolve the picked files and the placement; raises Qwen35Error with the fix."""
        extra = settings.search_dirs
        weights_path = file_locator.resolve(params.encoder_file, file_locator.list_weights(extra), file_locator.PREFERRED_WEIGHTS)
        if weights_path is None:
            raise messages.weights_not_found(params.encoder_file, [d for d, _ in file_locator.weights_search_dirs(extra)])
        alignment_path = self._stage_path("alignment", params.use_alignment, params.alignment_file, file_locator.list_alignments(extra), file_locator.PREFERRED_ALIGNMENT, extra)
        calibration_path = self._stage_path("calibration", params.use_calibration, params.calibration_file, file_locator.list_calibrations(extra), file_locator.PREFERRED_CALIBRATION, extra)
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

    @staticmethod
    def _stage_path(kind, wanted, name, candidates, preferred, extra):
        if not wanted:
            return None
        path = file_locator.resolve(name, candidates, preferred)
        if path is None:
            shown = f"{preferred} (Automatic)" if name == AUTOMATIC else name
            raise messages.output_stage_not_found(kind, shown, file_locator.output_stage_search_dirs(extra))
        return path

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
        error_guard.arm(host.sd_model(), error)
        cond_cache.sync(p, ("error", next(self._error_ids)))  # never served from Forge's cache
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
    """Called when the script file is loaded (Forge clears callbacks before each load)."""
    controller = controller or get_controller()
    callbacks = host.script_callbacks()
    if callbacks is None:
        return
    callbacks.on_ui_settings(ext_settings.register)
    callbacks.on_before_ui(controller.register_xyz_axes)
    callbacks.on_model_loaded(controller.on_model_loaded)
    callbacks.on_script_unloaded(controller.on_script_unloaded)
    controller.register_xyz_axes()  # xyz_grid.py (webui/scripts) is loaded before extensions
