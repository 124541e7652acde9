"""X/Y/Z plot axes, registered into the WebUI's own `scripts/xyz_grid.py` with its own AxisOption class.

The xyz module is found through `modules.scripts.scripts_data` (Forge Neo and SD.Next load it under the
module name "xyz_grid.py"; older layouts use "scripts.xyz_grid"). Its `axis_options` list is extended in
place (SD.Next's xyz_grid.py imports the list from scripts/xyz/xyz_grid_classes.py: the same object).
`AxisOption(label, type, apply, choices=...)` is called with positional type and apply: SD.Next names those
keywords `tipe` and `fmt`. Plain `AxisOption`s show in both txt2img and img2img.
Each cell runs `apply(pc, value, values)` on a shallow copy of p: we set a *new* override dict on it
(never mutate the shared one) and `Script.process()` merges it over the accordion's values.
"""

from __future__ import annotations

import os

from . import a1111
from .params import AUTOMATIC, OVERRIDE_ATTR, parse_bool

LABEL_PREFIX = "[Qwen3.5 TE] "
ON_OFF = ["Off", "On"]


def find_xyz_module():
    scripts = a1111.scripts_module()
    for data in list(getattr(scripts, "scripts_data", None) or []):
        module_name = getattr(getattr(data, "script_class", None), "__module__", "")
        if module_name in ("xyz_grid.py", "scripts.xyz_grid", "xyz_grid") or os.path.basename(getattr(data, "path", "") or "") == "xyz_grid.py":
            module = getattr(data, "module", None)
            if module is not None and hasattr(module, "AxisOption") and hasattr(module, "axis_options"):
                return module
    return None


def override_setter(field: str, convert):
    def apply(p, value, values):
        current = dict(getattr(p, OVERRIDE_ATTR, None) or {})  # copy: XYZ cells share the parent's dict
        current[field] = convert(value)
        setattr(p, OVERRIDE_ATTR, current)

    return apply


def _on_off(value) -> bool:
    return parse_bool(value, default=False)


def axis_specs(weight_choices):
    """(label, type, apply, choices or None); `weight_choices()` lists the encoder files."""
    return [
        (LABEL_PREFIX + "On/Off", str, override_setter("enabled", _on_off), lambda: list(ON_OFF)),
        (LABEL_PREFIX + "Alignment strength", float, override_setter("alignment_strength", float), None),
        (LABEL_PREFIX + "Use alignment", str, override_setter("use_alignment", _on_off), lambda: list(ON_OFF)),
        (LABEL_PREFIX + "Use calibration", str, override_setter("use_calibration", _on_off), lambda: list(ON_OFF)),
        (LABEL_PREFIX + "Output scale", float, override_setter("output_scale", float), None),
        (LABEL_PREFIX + "Encoder file", str, override_setter("encoder_file", str), lambda: [AUTOMATIC] + list(weight_choices())),
    ]


def register(weight_choices, xyz_module=None) -> int:
    """Add our axes once; returns how many were added (0 when present already or no xyz script)."""
    module = xyz_module or find_xyz_module()
    if module is None:
        return 0
    existing = {getattr(opt, "label", None) for opt in module.axis_options}
    added = 0
    for label, kind, apply, choices in axis_specs(weight_choices):
        if label in existing:
            continue
        kwargs = {"choices": choices} if choices is not None else {}
        module.axis_options.append(module.AxisOption(label, kind, apply, **kwargs))
        added += 1
    return added

