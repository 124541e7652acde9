"""ForgeNeoHost: the WebUIHost of Stable Diffusion WebUI Forge Neo.

    seam         the text engine's method that returns the Qwen3 states (engines/: one adapter per
                 generation of Forge's Anima text engine), patched on the instance (seam.py)
    detection    detection.py: the engine is found by what it carries, not by its attribute's name
    caches       Forge's class-level cond cache (conditioning_cache.py)
    stopping     Forge swallows Script-hook exceptions: the error is raised from the model's
                 get_learned_conditioning instead (stop.py)
    memory       backend.memory_management (memory.py)
    alignment    the loaded engine's stock Qwen3-0.6B (stock_encoder.py)
"""

from __future__ import annotations

import importlib.util
import os

from .. import a1111, messages
from ..interface import WebUIHost
from ..stock_encoder import of_loaded_model
from . import conditioning_cache, detection, engines, memory, seam, stock_encoder, stop

PLACEHOLDER_MODEL = "FakeInitialModel"  # modules/sd_models.py: Forge's stand-in until the first model load


class ForgeNeoHost(WebUIHost):
    name = "Forge Neo"

    @classmethod
    def detect(cls) -> bool:
        """Forge's own packages: modules_forge (its WebUI additions) and backend (its model runtime)."""
        try:
            return all(importlib.util.find_spec(name) is not None for name in ("modules_forge", "backend"))
        except (ImportError, ValueError):
            return False

    def version(self) -> str:
        """modules_forge.forge_version as "neo 2.29.2", or "unknown" where it cannot be read."""
        module = a1111.optional("modules_forge.forge_version")
        parts = ([str(getattr(module, name)) for name in ("version", "release") if getattr(module, name, None)]
                 if module else [])
        return " ".join(parts) or "unknown"

    # ---- the loaded model and its seam ------------------------------------------------------------

    def locate(self, sd_model):
        return detection.locate(sd_model)

    def is_placeholder(self, sd_model) -> bool:
        return type(sd_model).__name__ == PLACEHOLDER_MODEL

    def install(self, located) -> bool:
        return seam.install(located.engine, located.generation)

    def restore_all(self) -> int:
        return seam.restore_all()

    def unsupported(self, located):
        engine = located.engine
        if engine is not None:
            what = (f"its text engine is {type(engine).__name__} (module {type(engine).__module__}) at "
                    f"sd_model.{located.attribute}")
        else:
            seen = ", ".join(located.attributes_seen) or "none"
            what = f"no text engine was found on it (text_processing_engine* attributes: {seen})"
        return messages.unsupported_seam(self.name, self.version(), what, f"Supported engines: {engines.supported()}")

    # ---- one generation -----------------------------------------------------------------------------

    def sync_caches(self, p, signature: tuple) -> None:
        conditioning_cache.sync(p, signature)

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

    def make_room(self, device, nbytes: int) -> None:
        memory.make_room(device, nbytes)

    def empty_cache(self) -> None:
        memory.empty_cache()

    # ---- files --------------------------------------------------------------------------------------

    def text_encoder_dirs(self) -> list[str]:
        """models/text_encoder plus every --text-encoder-dirs, as Forge's module list scans them."""
        dirs = [os.path.join(self.models_path(), "text_encoder")]
        dirs += list(getattr(a1111.cmd_opts(), "text_encoder_dirs", None) or [])
        return dirs

    # ---- the alignment tab --------------------------------------------------------------------------

    def stock_encoder(self, sd_model):
        return of_loaded_model(self, sd_model, stock_encoder.wrapper)

    # ---- UI pieces that differ ----------------------------------------------------------------------

    def enable_accordion(self, value: bool, label: str, elem_id: str):
        """Forge's InputAccordion: the checkbox sits in the accordion's header, its value is 'enabled'."""
        from modules.ui_components import InputAccordion

        return InputAccordion(value, label=label, elem_id=elem_id)

    def paste_field(self, component, paste):
        from modules.infotext_utils import PasteField

        return PasteField(component, paste, api=None)
