"""The per-generation settings of the extension: one dataclass, the API argument order, coercion.

The accordion's controls are returned by `Script.ui()` in ARG_NAMES order, so the same order is what
`alwayson_scripts: {"<title>": {"args": [...]}}` takes. Missing trailing args keep their defaults.
The X/Y/Z plot overrides fields by setting a dict on the processing object (OVERRIDE_ATTR).
"""

from __future__ import annotations

import dataclasses
import math

AUTOMATIC = "Automatic"  # file pickers: let the extension choose (qwen35_4b.safetensors, bundled files)

# Attribute that XYZ apply functions set on a copy of `p` (a fresh dict each time: XYZ copies p shallowly).
OVERRIDE_ATTR = "qwen35_te_overrides"

ARG_NAMES = (
    "enabled",  # bool: the accordion checkbox
    "encoder_file",  # str: file name shown in the dropdown, or "Automatic"
    "use_alignment",  # bool
    "alignment_strength",  # float 0..1
    "alignment_file",  # str: file name, or "Automatic" (bundled alignment_data/rotation_matrix.safetensors)
    "use_calibration",  # bool
    "calibration_file",  # str: file name, or "Automatic" (bundled alignment_data/calibration_params.safetensors)
    "output_scale",  # float >= 0
)

# Alignment strength 1.0 is the fitted map itself: R (x - mean_4b) + mean_06b. Lower values keep part of
# the 4B mean (the rotation is applied in full either way); sweep 0, 0.5, 1 in XYZ to see the effect.
DEFAULT_ALIGNMENT_STRENGTH = 1.0


@dataclasses.dataclass(frozen=True)
class GenerationParams:
    enabled: bool = False
    encoder_file: str = AUTOMATIC
    use_alignment: bool = False
    alignment_strength: float = DEFAULT_ALIGNMENT_STRENGTH
    alignment_file: str = AUTOMATIC
    use_calibration: bool = False
    calibration_file: str = AUTOMATIC
    output_scale: float = 1.0

    @classmethod
    def from_args(cls, args) -> "GenerationParams":
        """From Script.process(*args) (UI or API values: bools may arrive as strings, numbers as str)."""
        values = {}
        for name, value in zip(ARG_NAMES, list(args or ())):
            if value is not None:
                values[name] = value
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: dict) -> "GenerationParams":
        defaults = cls()
        out = {}
        for field in dataclasses.fields(cls):
            raw = values.get(field.name, getattr(defaults, field.name))
            try:
                out[field.name] = _COERCE[field.name](raw, getattr(defaults, field.name))
            except InvalidSetting as error:
                raise InvalidSetting(f"{field.name}: {error}") from None
        return cls(**out)

    @staticmethod
    def requested_enabled(args, overrides: dict | None) -> bool:
        """Whether the user asked for the encoder, even when another setting is invalid (an 'enabled'
        that is not on/off counts as asked: its error is then reported, not silently ignored)."""
        enabled = _requested(list(args)[0]) if args else False
        if overrides and "enabled" in overrides:
            enabled = _requested(overrides["enabled"])
        return enabled

    def with_overrides(self, overrides: dict | None) -> "GenerationParams":
        if not overrides:
            return self
        merged = dataclasses.asdict(self)
        merged.update({k: v for k, v in overrides.items() if k in merged})
        return GenerationParams.from_mapping(merged)

    def as_args(self) -> list:
        return [getattr(self, name) for name in ARG_NAMES]


def parse_bool(value, default: bool = False) -> bool:
    """Lenient: text that is neither on nor off gives `default` (X/Y/Z choices, already checked by the grid)."""
    try:
        return _parse_flag(value, default)
    except InvalidSetting:
        return default


def _parse_flag(value, default: bool) -> bool:
    """An on/off setting from the UI, the API or X/Y/Z: unknown text is an error, never a silent default."""
    if value is None:
        return default
    if isinstance(value, (bool, int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "on", "yes", "1", "enabled"):
        return True
    if text in ("false", "off", "no", "0", "disabled", "", "none"):
        return False
    raise InvalidSetting(f"{value!r} is not on/off (use true or false)")


def _requested(value) -> bool:
    try:
        return _parse_flag(value, False)
    except InvalidSetting:
        return True


class InvalidSetting(ValueError):
    """A numeric setting that is not a number or is out of its range (API and XYZ values)."""


def _parse_float(value, default: float, low: float | None = None, high: float | None = None) -> float:
    """Numbers may arrive as strings (API, XYZ). Out of range or not a number is an error, never clamped:
    a silently changed value would produce a different image than the one asked for."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidSetting(f"{value!r} is not a number") from None
    if not math.isfinite(number) or (low is not None and number < low) or (high is not None and number > high):
        bounds = f"from {low:g} to {high:g}" if high is not None else f">= {low:g}"
        raise InvalidSetting(f"{value!r} is out of range (allowed: {bounds})")
    return number


def _parse_file(value, default: str) -> str:
    text = str(value).strip() if value is not None else ""
    if text == "" or text.lower() == AUTOMATIC.lower():
        return AUTOMATIC
    return text


_COERCE = {
    "enabled": _parse_flag,
    "encoder_file": _parse_file,
    "use_alignment": _parse_flag,
    "alignment_strength": lambda v, d: _parse_float(v, d, 0.0, 1.0),
    "alignment_file": _parse_file,
    "use_calibration": _parse_flag,
    "calibration_file": _parse_file,
    "output_scale": lambda v, d: _parse_float(v, d, 0.0, None),
}
