"""The host layer: lib_qwen35 inside an A1111-family WebUI (Forge Neo, SD.Next).

This package is the only place that knows a WebUI. What every A1111-family WebUI shares (the Script glue,
settings, infotext, X/Y/Z axes, file pickers, status, the alignment tab) is written once here; what differs
between WebUIs lives in one package per WebUI behind one interface (interface.WebUIHost), picked at run time
by what is importable (selection.py). Every WebUI import is lazy, so the package imports and its logic is
testable without any WebUI.

Modules, one concept each, in three tiers: a module imports its own tier and those above it in this list,
never one below (so there are no import circles, not even inside functions).

  Shared pieces that need no WebUIHost (the WebUI packages build on some of them):
    interface          WebUIHost: what each WebUI package implements; Located: where a model's text seam is
    a1111              lazy access to what every A1111-family WebUI has (shared, opts, scripts, callbacks, paths)
    messages           user-facing error text (what happened, which file, the fix); takes values only
    active_state       the module-level "armed" run that routes an installed seam patch
    stock_encoder      the loaded stock Qwen3-0.6B behind the fit's interface (each WebUI package subclasses it)
    stock_identity     telling loaded stock encoders apart (the key of the fit's disk cache)
    gradio_parts       the accordion and paste fields for WebUIs without Forge Neo's own
    params             the per-generation settings: API argument order, defaults, coercion, XYZ overrides
    ext_settings       the Settings-tab section: option keys, defaults, registration, reading
    xyz_axes           X/Y/Z plot axes registered into the WebUI's own xyz_grid module
    status             the accordion's status: the preview plus what the last generation did

  One package per WebUI (each implements WebUIHost; see its own docstring):
    forge_neo/         Forge Neo: its Anima text engines (engines/ adapters), conditioning cache, memory manager
    sdnext/            SD.Next: its diffusers Anima pipeline, prompt cache, devices and offload modes
    unknown            UnknownHost: a WebUI that neither package recognises (said loudly; nothing changes)

  What works through the running WebUI's host:
    selection          which WebUI is running us (by importable modules, never a version string)
    file_locator       where weights / alignment / calibration / stock files are searched and how names resolve
    paste_lookup       which alignment / calibration file a pasted infotext means (by name and content hash)
    infotext           PNG-infotext keys, writing them, and paste (restore) functions
    placement          device / dtype choice, moving weights to the compute device and back, OOM hint
    encoder_holder     loaded encoders and output stages, reused across generations
    replacement        what a seam patch computes: prompt texts -> Qwen3.5 -> output stage
    preview            what the accordion's current controls will do at the next generation (status, first part)
    controller         what the Script calls: process / process_batch / postprocess
    fit_tab            the "Qwen3.5 Alignment" tab's state: the background fit, progress, cancel, compare
    fit_encoders       the tab's two encoders: where the stock 0.6B comes from, the 4B kept on the device
    fit_files          where a fit from the tab writes, the checks before, publishing after, the report

A third WebUI is one more package and one more entry in selection.hosts().
"""

from .messages import PREFIX as TITLE  # the accordion's title and the API's script name

__all__ = ["TITLE"]
