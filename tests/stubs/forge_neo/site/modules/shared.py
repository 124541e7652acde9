"""Stand-in for modules/shared.py: opts, cmd_opts, sd_model, OptionInfo, models_path."""

import types

from modules import paths
from modules.options import OptionInfo, Options  # noqa: F401 - re-exported like Forge

cmd_opts = types.SimpleNamespace(cpu=False, text_encoder_dirs=[], api=True, nowebui=True)
opts = Options({
    "emphasis": OptionInfo("Original", "Emphasis mode"),
    "persistent_cond_cache": OptionInfo(True, "Persistent cond cache"),
})
sd_model = None
models_path = paths.models_path
