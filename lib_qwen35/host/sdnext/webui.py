"""SDNextHost: the WebUIHost of SD.Next (vladmandic/sdnext).

    seam         AnimaTextToImagePipeline._encode_prompt, patched on the class (seam.py)
    detection    detection.py: Anima by its LLM adapter, the seam by `_encode_prompt`'s parameters
    caches       modules/sd_hijack_te's prompt cache, bypassed while armed (conditioning_cache.py)
    stopping     SD.Next swallows Script-hook and encode exceptions: raised from the pipeline's
                 __call__ instead (stop.py)
    memory       modules.devices and the offload modes (memory.py)
    alignment    the loaded pipeline's stock Qwen3-0.6B (stock_encoder.py)
    UI           gradio 3.43: WebUIHost's defaults (a plain accordion with an "Enable" checkbox; paste
                 fields that return updates)
"""

from __future__ import annotations

import importlib.util
import os

from .. import a1111
from ..interface import WebUIHost
from ..stock_encoder import of_loaded_model
from . import conditioning_cache, detection, memory, seam, stock_encoder, stop
from .version import version

TEXT_ENCODER_FOLDER = "Text-encoder"   # SD.Next's default `te_dir`: <models>/Text-encoder


class SDNextHost(WebUIHost):
    name = "SD.Next"

    @classmethod
    def detect(cls) -> bool:
        """SD.Next's own modules: scripts_manager (its script runner) and sd_hijack_te (its prompt-encode
        hijack). Neither exists in A1111 or Forge."""
        try:
            return all(importlib.util.find_spec(name) is not None
                       for name in ("modules.scripts_manager", "modules.sd_hijack_te"))
        except (ImportError, ValueError):
            return False

    def version(self) -> str:
        return version()

    # ---- the loaded model and its seam ------------------------------------------------------------

    def locate(self, sd_model):
        return detection.locate(sd_model)

    def install(self, located) -> bool:
        conditioning_cache.install()
        return seam.install(located)

    def restore_all(self) -> int:
        restored = seam.restore_all() + stop.restore_all()
        return restored + int(conditioning_cache.restore())

    def unsupported(self, located):
        return detection.unsupported(getattr(located, "found", "")
                                     or f"{located.model} is not a pipeline this extension knows")

    # ---- one generation -----------------------------------------------------------------------------

    def sync_caches(self, p, signature: tuple) -> None:
        conditioning_cache.sync(signature)

    def arm_error(self, sd_model, error: BaseException) -> None:
        stop.arm(sd_model, error)

    def follow_model(self, sd_model) -> None:
        stop.follow(sd_model)

    def error_pending(self):
        return stop.pending()

    def disarm_error(self) -> None:
        stop.disarm()

    # ---- device and memory --------------------------------------------------------------------------

    def compute_device(self, choice: str):
        return memory.compute_device(choice)

    def default_dtype(self, device):
        return memory.default_dtype(device)

    def make_room(self, device, nbytes: int) -> None:
        memory.make_room(device, nbytes)

    def empty_cache(self) -> None:
        memory.empty_cache()

    # ---- files --------------------------------------------------------------------------------------

    def text_encoder_dirs(self) -> list[str]:
        """SD.Next's "Text encoder" folder setting (`te_dir`, also --te-dir), models/Text-encoder by default."""
        try:
            configured = getattr(a1111.opts(), "te_dir", None)
        except Exception:  # noqa: BLE001 - no readable setting: the default folder
            configured = None
        default = os.path.join(self.models_path(), TEXT_ENCODER_FOLDER)
        return list(dict.fromkeys(([str(configured)] if configured else []) + [default]))

    # ---- the alignment tab --------------------------------------------------------------------------

    def stock_encoder(self, sd_model):
        return of_loaded_model(self, sd_model, stock_encoder.wrapper)
