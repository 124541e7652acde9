"""UnknownHost: an A1111-family WebUI this extension does not recognise (neither Forge Neo nor SD.Next).

It never guesses: every generation with the accordion ticked says, in the console and the status, that
this WebUI is not supported and that nothing was changed. Files are still listed (the pickers work), so
the message is the only difference a user sees.
"""

from __future__ import annotations

import os

import torch

from lib_qwen35.model.devices import gpu_or_cpu

from . import messages
from .interface import Located, WebUIHost


class UnknownHost(WebUIHost):
    name = "WebUI"
    stops_generations = False   # no known place to raise: the generation runs stock, the message says so

    def __init__(self, recognised=()):
        self.recognised = [cls.name for cls in recognised]
        self._error = None

    @classmethod
    def detect(cls) -> bool:
        return False  # never chosen by detection: selection falls back to it

    def version(self) -> str:
        return "unknown"

    def locate(self, sd_model):
        if sd_model is None:
            return Located("no_model", model="no model loaded")
        return Located("unsupported", model=type(sd_model).__name__)

    def install(self, located) -> bool:
        return False

    def restore_all(self) -> int:
        return 0

    def unsupported(self, located):
        return messages.unknown_webui(self.recognised)

    def sync_caches(self, p, signature) -> None:
        pass

    def arm_error(self, sd_model, error) -> None:
        self._error = error  # no known place to stop the generation: the console and status say it

    def error_pending(self):
        return self._error

    def disarm_error(self) -> None:
        self._error = None

    def compute_device(self, choice: str):
        return torch.device("cpu") if choice == "cpu" else gpu_or_cpu()

    def text_encoder_dirs(self) -> list[str]:
        return [os.path.join(self.models_path(), "text_encoder")]

    def stock_encoder(self, sd_model):
        raise self.unsupported(None)


