"""X/Y/Z plot axes, registered into the WebUI's own `scripts/xyz_grid.py` with its own AxisOption class.

The xyz module is found through `modules.scripts.scripts_data` (Forge Neo and SD.Next load it under the
module name "xyz_grid.py"; older layouts use "scripts.xyz_grid"). Its `axis_options` list is extended in
place (SD.Next's xyz_grid.py imports the list from scripts/xyz/xyz_grid_classes.py: the same object).
`AxisOption(label, type, apply, choices=..., confirm=...)` is called with positional type and apply: SD.Next names
those `tipe` and `fmt`; `choices` and `confirm` are the same keywords in both. Plain `AxisOption`s show in both
txt2img and img2img. New axes are appended, so the API indexes of the earlier ones do not move.
Each cell runs `apply(pc, value, values)` on a shallow copy of p: we set a *new* override dict on it
(never mutate the shared one) and `Script.process()` merges it over the accordion's values.
The file axes turn their stage on for their cells ("None" turns it off); their `confirm(p, values)`, which both
grids call before the first cell, stops a grid with a file that is not here before anything is generated.
"""

from __future__ import annotations

import os

from . import a1111, messages
from .params import AUTOMATIC, OVERRIDE_ATTR, parse_bool

LABEL_PREFIX = "[Qwen3.5 TE] "
ON_OFF = ["Off", "On"]
NONE_FILE = "None"   # a file axis' value for "this stage off"


def find_xyz_module():
    scripts = a1111.scripts_module()
    for data in list(getattr(scripts, "scripts_data", None) or []):
        module_name = getattr(getattr(data, "script_class", None), "__module__", "")
        if (module_name in ("xyz_grid.py", "scripts.xyz_grid", "xyz_grid")
                or os.path.basename(getattr(data, "path", "") or "") == "xyz_grid.py"):
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


def file_setter(kind: str):
    """A file axis' apply: the file for its cell with its stage on, or the stage off for "None"."""
    use, field = f"use_{kind}", f"{kind}_file"

    def apply(p, value, values):
        current = dict(getattr(p, OVERRIDE_ATTR, None) or {})  # copy: XYZ cells share the parent's dict
        if str(value).strip().lower() == NONE_FILE.lower():
            current[use] = False
        else:
            current.update({use: True, field: str(value)})
        setattr(p, OVERRIDE_ATTR, current)

    return apply


def _with_none(choices):
    return lambda: [NONE_FILE] + list(choices())


def files_confirmed(kind: str, choices, file_found):
    """Before the first cell: every value is None or a file found here (file_found(kind, value))."""
    def confirm(p, values):
        missing = [str(v) for v in values
                   if str(v).strip().lower() != NONE_FILE.lower() and not file_found(kind, str(v))]
        if missing:
            raise messages.xyz_files_not_found(kind, missing, list(choices()))

    return confirm


def axis_specs(weight_choices, alignment_choices=list, calibration_choices=list, file_found=None):
    """(label, type, apply, choices or None, confirm or None); `*_choices()` list the files found;
    `file_found(kind, value)` says whether a file axis' value names one."""
    found = file_found or (lambda kind, value: True)
    alignments, calibrations = _with_none(alignment_choices), _with_none(calibration_choices)
    return [
        (LABEL_PREFIX + "On/Off", str, override_setter("enabled", _on_off), lambda: list(ON_OFF), None),
        (LABEL_PREFIX + "Alignment strength", float, override_setter("alignment_strength", float), None, None),
        (LABEL_PREFIX + "Use alignment", str, override_setter("use_alignment", _on_off), lambda: list(ON_OFF), None),
        (LABEL_PREFIX + "Use calibration", str, override_setter("use_calibration", _on_off), lambda: list(ON_OFF),
         None),
        (LABEL_PREFIX + "Output scale", float, override_setter("output_scale", float), None, None),
        (LABEL_PREFIX + "Encoder file", str, override_setter("encoder_file", str),
         lambda: [AUTOMATIC] + list(weight_choices()), None),
        (LABEL_PREFIX + "Alignment file", str, file_setter("alignment"), alignments,
         files_confirmed("alignment", alignments, found)),
        (LABEL_PREFIX + "Calibration file", str, file_setter("calibration"), calibrations,
         files_confirmed("calibration", calibrations, found)),
    ]


def register(weight_choices, xyz_module=None, alignment_choices=list, calibration_choices=list, file_found=None) -> int:
    """Add our axes once; returns how many were added (0 when present already or no xyz script)."""
    module = xyz_module or find_xyz_module()
    if module is None:
        return 0
    existing = {getattr(opt, "label", None) for opt in module.axis_options}
    added = 0
    for label, kind, apply, choices, confirm in axis_specs(weight_choices, alignment_choices, calibration_choices,
                                                           file_found):
        if label in existing:
            continue
        kwargs = {key: value for key, value in (("choices", choices), ("confirm", confirm)) if value is not None}
        module.axis_options.append(module.AxisOption(label, kind, apply, **kwargs))
        added += 1
    return added

