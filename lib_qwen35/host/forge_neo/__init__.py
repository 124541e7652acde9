"""Forge Neo (Stable Diffusion WebUI Forge "Neo"): the WebUI package behind interface.WebUIHost.

Only this package knows Forge internals; every Forge import is lazy.

Modules, one concept each:
    webui              ForgeNeoHost: the interface, put together from the modules below
    detection          is the loaded model Anima? which text engine (and generation) holds the seam?
    engines/           one adapter per generation of Forge's Anima text engine (legacy, qwen06)
    seam               install / restore of our patch on the engine seam's instance attribute
    text_recovery      Qwen3 token ids -> prompt text (the engine's own tokenizer, pad dropped)
    conditioning_cache Forge's conditioning-cache invalidation when our settings signature changes
    stop               stop a generation with our error (Forge swallows Script-hook exceptions)
    memory             backend.memory_management: devices, making room, giving memory back
    stock_encoder      the loaded engine's stock Qwen3-0.6B for the alignment tab
"""

from .webui import ForgeNeoHost

__all__ = ["ForgeNeoHost"]
