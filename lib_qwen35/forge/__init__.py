"""Host adapter between lib_qwen35 and Stable Diffusion WebUI Forge Neo.

This package is the only place that knows Forge internals. Every Forge import is lazy (inside a
function, through `host.py`), so the package imports and its logic is testable without Forge.

Modules, one concept each:
    host               lazy access to Forge's modules (shared, memory_management, scripts, ...)
    params             the per-generation settings: API argument order, defaults, coercion, XYZ overrides
    ext_settings       the Settings-tab section: option keys, defaults, registration, reading
    file_locator       where weights / alignment / calibration files are searched and how names resolve
    model_detection    is the loaded model Anima? which engine to hook?
    text_recovery      Qwen3 token ids -> prompt text (the engine's own tokenizer, pad dropped)
    active_state       the module-level "armed run" that routes the hook
    hook               install / restore of the process_tokens instance attribute
    placement          device / dtype choice, moving weights to the GPU and back, OOM hint
    encoder_holder     loaded encoders and output stages, reused across generations
    replacement        what the hook computes: prompt texts -> Qwen3.5 -> output stage
    cond_cache         Forge conditioning-cache invalidation when our settings signature changes
    infotext           PNG-infotext keys, writing them, and paste (restore) functions
    xyz_axes           X/Y/Z plot axes registered into the real xyz_grid module
    preview            what the accordion's current controls will do at the next generation (status, first part)
    status             the accordion's status: the preview plus what the last generation did
    messages           user-facing error text (what happened, which file, the fix)
    controller         what the Script calls: process / process_batch / postprocess
"""

TITLE = "Qwen3.5-4B text encoder (Anima)"
LOG_PREFIX = "[Qwen3.5 TE]"
