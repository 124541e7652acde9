"""PNG infotext: the keys we write, and the functions that restore the accordion from them.

Keys are namespaced "Qwen35 TE ..." (Forge Neo's and SD.Next's infotext regexes allow letters, digits and
spaces). SD.Next's parser turns digit-only values into numbers, so every paste function accepts numbers
and gives file names back as strings.
Nothing is written when the extension is off, so stock infotexts stay byte-identical; an infotext
without "Qwen35 TE" pastes as "off". The alignment and calibration files' content hashes are written beside
their names, so a paste finds the file an image was made with (paste_lookup.py); an infotext of an earlier
version, without them, pastes as before.

    Qwen35 TE: on
    Qwen35 TE file: qwen35_4b.safetensors        Qwen35 TE hash: 0123456789
    Qwen35 TE alignment: 1.0 | off               Qwen35 TE alignment file: rotation_matrix.safetensors
    Qwen35 TE alignment hash: a1b2c3d4e5         (only with the alignment on)
    Qwen35 TE calibration: <file name> | off     Qwen35 TE calibration hash: 0f1e2d3c4b (only with it on)
    Qwen35 TE scale: 1.0
"""

from __future__ import annotations

import os

from . import paste_lookup
from .params import AUTOMATIC, GenerationParams

KEY_ENABLED = "Qwen35 TE"
KEY_FILE = "Qwen35 TE file"
KEY_HASH = "Qwen35 TE hash"
KEY_ALIGNMENT = "Qwen35 TE alignment"
KEY_ALIGNMENT_FILE = "Qwen35 TE alignment file"
KEY_ALIGNMENT_HASH = "Qwen35 TE alignment hash"
KEY_CALIBRATION = "Qwen35 TE calibration"
KEY_CALIBRATION_HASH = "Qwen35 TE calibration hash"
KEY_SCALE = "Qwen35 TE scale"
ALL_KEYS = (KEY_ENABLED, KEY_FILE, KEY_HASH, KEY_ALIGNMENT, KEY_ALIGNMENT_FILE, KEY_ALIGNMENT_HASH, KEY_CALIBRATION,
            KEY_CALIBRATION_HASH, KEY_SCALE)
OFF = "off"


def entries(run) -> dict:
    """What one generation records (run: replacement.EncodeRun)."""
    out = {
        KEY_ENABLED: "on",
        KEY_FILE: run.weights_name,
        KEY_HASH: run.weights_hash,
        KEY_ALIGNMENT: f"{run.alignment_strength:g}" if run.alignment_path else OFF,
    }
    if run.alignment_path:
        out[KEY_ALIGNMENT_FILE] = os.path.basename(run.alignment_path)
        if run.alignment_hash:
            out[KEY_ALIGNMENT_HASH] = run.alignment_hash
    out[KEY_CALIBRATION] = os.path.basename(run.calibration_path) if run.calibration_path else OFF
    if run.calibration_path and run.calibration_hash:
        out[KEY_CALIBRATION_HASH] = run.calibration_hash
    out[KEY_SCALE] = f"{run.output_scale:g}"
    return out


def write(p, run) -> None:
    remove(p)
    p.extra_generation_params.update(entries(run))


def remove(p) -> None:
    """XYZ cells share one extra_generation_params dict (shallow copies of p): clear ours per cell."""
    params = getattr(p, "extra_generation_params", None)
    if isinstance(params, dict):
        for key in ALL_KEYS:
            params.pop(key, None)


# ---- paste: each returns the value for one accordion control, or None to leave it unchanged --------


def paste_enabled(params: dict):
    return str(params.get(KEY_ENABLED, OFF)).strip().lower() == "on"


def _text(value):
    return None if value is None else str(value)


def paste_encoder_file(params: dict):
    return _text(params.get(KEY_FILE)) if paste_enabled(params) else None


def _paste_switch(params: dict, key: str):
    """A stage's tick box from its key: on unless the key says "off" (None when ours was off)."""
    if not paste_enabled(params):
        return None
    return str(params.get(key, OFF)).strip().lower() != OFF


def paste_use_alignment(params: dict):
    return _paste_switch(params, KEY_ALIGNMENT)


def paste_alignment_strength(params: dict):
    value = params.get(KEY_ALIGNMENT)
    if not paste_enabled(params) or value is None or str(value).strip().lower() == OFF:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def pasted_file(params: dict, kind: str) -> paste_lookup.PastedFile | None:
    """The alignment or calibration file (`kind`) an infotext names, looked up by name and hash; None when that
    stage was off (or ours was)."""
    if kind == "alignment":
        used, name, wanted = paste_use_alignment(params), params.get(KEY_ALIGNMENT_FILE), params.get(KEY_ALIGNMENT_HASH)
    else:
        used, name, wanted = (paste_use_calibration(params), params.get(KEY_CALIBRATION),
                              params.get(KEY_CALIBRATION_HASH))
    if not used:
        return None
    return paste_lookup.resolve(kind, _text(name), paste_lookup.normalise_hash(wanted))


def _paste_file(params: dict, kind: str):
    """The picker value, and the note the status shows while the picker holds it."""
    result = pasted_file(params, kind)
    if result is None:
        paste_lookup.forget(kind)
        return None
    paste_lookup.record(result)
    return result.value


def paste_alignment_file(params: dict):
    return _paste_file(params, "alignment")


def paste_use_calibration(params: dict):
    return _paste_switch(params, KEY_CALIBRATION)


def paste_calibration_file(params: dict):
    return _paste_file(params, "calibration")


def paste_output_scale(params: dict):
    if not paste_enabled(params):
        return None
    try:
        return float(params.get(KEY_SCALE, 1.0))
    except (TypeError, ValueError):
        return None


# In ARG_NAMES order, for Script.infotext_fields (wrapped in PasteField by the script).
PASTE_FUNCTIONS = {
    "enabled": paste_enabled,
    "encoder_file": paste_encoder_file,
    "use_alignment": paste_use_alignment,
    "alignment_strength": paste_alignment_strength,
    "alignment_file": paste_alignment_file,
    "use_calibration": paste_use_calibration,
    "calibration_file": paste_calibration_file,
    "output_scale": paste_output_scale,
}


def params_from_infotext(params: dict):
    """The GenerationParams an infotext describes (the status after a paste, scripting, tests); records no note."""
    quiet = {"alignment_file": lambda p: _value(pasted_file(p, "alignment")),
             "calibration_file": lambda p: _value(pasted_file(p, "calibration"))}
    values = {}
    for name, fn in PASTE_FUNCTIONS.items():
        value = quiet.get(name, fn)(params)
        if value is not None:
            values[name] = value
    values.setdefault("encoder_file", AUTOMATIC)
    return GenerationParams.from_mapping(values)


def _value(result):
    return None if result is None else result.value
