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

import dataclasses
import itertools
import os
import traceback

from lib_qwen35.alignment import provenance
from lib_qwen35.errors import Qwen35Error
from lib_qwen35.files.checkpoint import encoder_hash, file_identity, is_synthetic_checkpoint

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
        self._encoders_seen: dict[str, provenance.EncoderFacts] = {}   # file identity -> its hash and mark
        self._warned: set[tuple] = set()   # provenance warnings already said in the console (once per file)

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
            run = self.prepare(params, settings)
            if not settings.keep_resident:
                self.holder.release_resident()  # "keep resident" was just turned off
            signature = run.signature()
        except Qwen35Error as error:
            self._arm_error(p, error)
            return None
        except Exception as error:  # noqa: BLE001 - the WebUI would swallow it and silently use the stock encoder
            traceback.print_exc()
            self._arm_error(p, messages.unexpected(error))
            return None

        active_state.arm(make_encode(run, self.holder))
        webui.sync_caches(p, signature)
        infotext.write(p, run)
        status.set_armed(run, located)
        self._warn_once(run)
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

    def prepare(self, params: GenerationParams, settings) -> EncodeRun:
        """plan(), then load the output-stage files and check their provenance against the encoder file: the run
        carries their hashes and verdicts. Raises Qwen35Error (with the fix) for what must stop the generation: a
        broken file, or a synthetic demo fit with a real encoder."""
        run = self.plan(params, settings)
        alignment, calibration = self._load_output_stage(run)
        encoder = self.encoder_facts(run.weights_path, run.weights_identity)
        facts = {kind: provenance.FileFacts.of(loaded) if loaded is not None else None
                 for kind, loaded in (("alignment", alignment), ("calibration", calibration))}
        verdicts = provenance.check(encoder, facts["alignment"], facts["calibration"], run.alignment_strength)
        for verdict in verdicts:
            if verdict.level == "stop":
                raise messages.synthetic_fit_with_real_encoder(verdict.file.kind, verdict.file.path, encoder)
        return dataclasses.replace(run, alignment_hash=facts["alignment"] and facts["alignment"].hash,
                                   calibration_hash=facts["calibration"] and facts["calibration"].hash,
                                   provenance=tuple(verdicts))

    def encoder_facts(self, path: str, identity: str | None = None) -> provenance.EncoderFacts:
        """The weights file's name, hash and synthetic mark, read once per file identity (3 MiB and the header)."""
        identity = identity or file_identity(path)
        if identity not in self._encoders_seen:
            self._encoders_seen[identity] = provenance.EncoderFacts(os.path.basename(path), encoder_hash(path),
                                                                    is_synthetic_checkpoint(path))
        return self._encoders_seen[identity]

    def _warn_once(self, run: EncodeRun) -> None:
        """Each provenance warning once per file and encoder in the console (an X/Y/Z grid says it once)."""
        encoder = self.encoder_facts(run.weights_path, run.weights_identity)
        for verdict in run.warnings:
            key = (verdict.file.kind, verdict.file.hash, encoder.hash, verdict.code)
            if key not in self._warned:
                self._warned.add(key)
                messages.console(messages.provenance_line(verdict, encoder))

    def plan(self, params: GenerationParams, settings) -> EncodeRun:
        """Resolve the picked files and the placement; raises Qwen35Error with the fix."""
        extra = settings.search_dirs
        weights_path = file_locator.weights_path(params.encoder_file, extra)
        alignment_path = (file_locator.output_stage_path("alignment", params.alignment_file, extra)
                          if params.use_alignment else None)
        calibration_path = (file_locator.output_stage_path("calibration", params.calibration_file, extra)
                            if params.use_calibration else None)
        try:
            identity = file_identity(weights_path)
            weights_hash = self.encoder_facts(weights_path, identity).hash
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

    def _load_output_stage(self, run: EncodeRun) -> tuple:
        """(alignment, calibration), each loaded (and so validated) now for an early, precise error, or None."""
        return tuple(self.stage_file(kind, path) if path is not None else None
                     for kind, path in (("alignment", run.alignment_path), ("calibration", run.calibration_path)))

    def stage_file(self, kind: str, path: str):
        """A loaded alignment or calibration file; its problem as our error naming the file and the fix."""
        try:
            return self.holder.stage_file(kind, path)
        except Exception as error:
            raise messages.output_stage_invalid(kind, path, error) from error

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

    def stage_file_found(self, kind: str, value: str) -> bool:
        """Whether an alignment / calibration picker value names a file here (X/Y/Z checks its values first)."""
        extra = ext_settings.read().search_dirs
        preferred = file_locator.PREFERRED_ALIGNMENT if kind == "alignment" else file_locator.PREFERRED_CALIBRATION
        return file_locator.resolve(value, file_locator.list_output_stage(kind, extra), preferred, kind) is not None

    def status_text(self, *args) -> str:
        """The accordion's status box for its current controls (`args` in ARG_NAMES order)."""
        return status.panel(preview.describe(self, args))

    def register_xyz_axes(self) -> int:
        return xyz_axes.register(lambda: self.weight_choices()[1:],
                                 alignment_choices=lambda: self.alignment_choices()[1:],
                                 calibration_choices=lambda: self.calibration_choices()[1:],
                                 file_found=self.stage_file_found)


def paste_status(params: dict) -> str:
    """The status box after a paste (PNG Info -> Send to, the paste button): what the pasted controls will do,
    with the paste's notes. One function for both tabs: "Send to" matches fields by it."""
    return get_controller().status_text(*infotext.params_from_infotext(params).as_args())


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
