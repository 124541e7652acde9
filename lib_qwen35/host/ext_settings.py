"""The extension's section in the WebUI's Settings tab: keys, defaults, registration and reading.

Registered from an `on_ui_settings` callback with `shared.opts.add_option(key, shared.OptionInfo(...))`.
Read through `read()`, which falls back to the defaults when a key is absent (tests, API-only start).
"""

from __future__ import annotations

import dataclasses

from . import a1111

SECTION = ("qwen35_te", "Qwen3.5-4B text encoder (Anima)")

DEVICE_CHOICES = ("auto", "gpu", "cpu")
DTYPE_CHOICES = ("auto", "bf16", "fp16", "fp32")

KEY_SEARCH_DIRS = "qwen35_te_search_dirs"
KEY_DEVICE = "qwen35_te_device"
KEY_DTYPE = "qwen35_te_dtype"
KEY_KEEP_RESIDENT = "qwen35_te_keep_resident"
KEY_EMBEDDING_CACHE = "qwen35_te_embedding_cache_size"
KEY_ENCODER_CACHE = "qwen35_te_encoder_cache_size"


@dataclasses.dataclass(frozen=True)
class ExtensionSettings:
    search_dirs: tuple[str, ...] = ()  # extra folders for weights / alignment / calibration files
    device: str = "auto"  # auto = Forge's text-encoder device
    dtype: str = "auto"  # auto = bf16 on a GPU that supports it, else fp16; fp32 on the CPU
    keep_resident: bool = False  # keep the 4B weights on the GPU between generations
    embedding_cache_size: int = 256  # prompts whose raw head output is kept (output-stage sweeps reuse it)
    encoder_cache_size: int = 1  # encoder files kept loaded in RAM


DEFAULTS = ExtensionSettings()

_LABELS = {
    KEY_SEARCH_DIRS: "Extra folders to search for Qwen3.5-4B weights and alignment/calibration files (separate with ;)",
    KEY_DEVICE: "Device for the Qwen3.5-4B encoder (auto = Forge's text-encoder device)",
    KEY_DTYPE: "Compute dtype (auto = bf16 on GPUs that support it, else fp16; fp32 on CPU)",
    KEY_KEEP_RESIDENT: "Keep the Qwen3.5-4B weights on the GPU between generations (faster; uses ~5 GB of VRAM)",
    KEY_EMBEDDING_CACHE: "Prompts kept in the raw-embedding cache (alignment/calibration/scale changes reuse them)",
    KEY_ENCODER_CACHE: "Encoder files kept loaded in RAM",
}


def register() -> None:
    """on_ui_settings callback: add our section to the Settings tab."""
    import gradio as gr

    shared = a1111.shared()
    info = shared.OptionInfo
    add = shared.opts.add_option
    add(KEY_SEARCH_DIRS, info("", _LABELS[KEY_SEARCH_DIRS], gr.Textbox, section=SECTION))
    add(KEY_DEVICE, info(DEFAULTS.device, _LABELS[KEY_DEVICE], gr.Radio, {"choices": list(DEVICE_CHOICES)},
                         section=SECTION))
    add(KEY_DTYPE, info(DEFAULTS.dtype, _LABELS[KEY_DTYPE], gr.Radio, {"choices": list(DTYPE_CHOICES)},
                        section=SECTION))
    add(KEY_KEEP_RESIDENT, info(DEFAULTS.keep_resident, _LABELS[KEY_KEEP_RESIDENT], gr.Checkbox, section=SECTION))
    add(KEY_EMBEDDING_CACHE, info(DEFAULTS.embedding_cache_size, _LABELS[KEY_EMBEDDING_CACHE], gr.Slider,
                                  {"minimum": 0, "maximum": 4096, "step": 16}, section=SECTION))
    add(KEY_ENCODER_CACHE, info(DEFAULTS.encoder_cache_size, _LABELS[KEY_ENCODER_CACHE], gr.Slider,
                                {"minimum": 1, "maximum": 4, "step": 1}, section=SECTION))


def read(opts=None) -> ExtensionSettings:
    """Current settings; any missing or malformed value falls back to its default."""
    if opts is None:
        try:
            opts = a1111.opts()
        except ImportError:
            opts = None

    def get(key, default):
        value = getattr(opts, key, None) if opts is not None else None
        if value is None:
            data = getattr(opts, "data", None)
            value = data.get(key) if isinstance(data, dict) else None
        return default if value is None else value

    dirs_text = str(get(KEY_SEARCH_DIRS, "") or "")
    dirs = tuple(d.strip() for d in dirs_text.replace("\n", ";").split(";") if d.strip())
    device = str(get(KEY_DEVICE, DEFAULTS.device)).lower()
    dtype = str(get(KEY_DTYPE, DEFAULTS.dtype)).lower()
    return ExtensionSettings(
        search_dirs=dirs,
        device=device if device in DEVICE_CHOICES else DEFAULTS.device,
        dtype=dtype if dtype in DTYPE_CHOICES else DEFAULTS.dtype,
        keep_resident=bool(get(KEY_KEEP_RESIDENT, DEFAULTS.keep_resident)),
        embedding_cache_size=_as_int(get(KEY_EMBEDDING_CACHE, DEFAULTS.embedding_cache_size),
                                     DEFAULTS.embedding_cache_size, 0),
        encoder_cache_size=_as_int(get(KEY_ENCODER_CACHE, DEFAULTS.encoder_cache_size), DEFAULTS.encoder_cache_size, 1),
    )


def _as_int(value, default: int, low: int) -> int:
    try:
        return max(low, int(float(value)))
    except (TypeError, ValueError):
        return default
