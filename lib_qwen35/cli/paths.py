"""File arguments of the command lines: a relative models/... path means the WebUI's models folder
(files/webui_paths.py), from the WebUI folder and from the extension folder alike."""

from __future__ import annotations

import os
import sys

from ..files.webui_paths import starts_with_models, user_path, webui_dir

# Arguments that name files: a relative models/... path means the WebUI's models folder (webui_paths.py).
PATH_ARGUMENTS = ("file", "weights", "alignment", "calibration", "prompts", "save", "json", "weights_4b", "weights_06b",
                  "out", "cache_dir", "manifest")


def resolve_paths(args) -> None:
    """models/... paths against the WebUI folder (said once on stderr when that is not the current folder)."""
    told = False
    for name in PATH_ARGUMENTS:
        value = getattr(args, name, None)
        if isinstance(value, str) and value:
            resolved = user_path(value)
            if starts_with_models(value) and not told and webui_dir() not in (None, os.path.abspath(os.getcwd())):
                print(f"note: models/ is the WebUI's models folder, {os.path.join(webui_dir(), 'models')}",
                      file=sys.stderr)
                told = True
            setattr(args, name, resolved)
