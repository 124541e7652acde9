"""SD.Next (vladmandic/sdnext): the WebUI package behind interface.WebUIHost.

SD.Next runs Anima through its own diffusers pipeline (pipelines/anima/pipeline.py). Only this package
knows SD.Next internals; every SD.Next import is lazy.

Modules, one concept each:
    webui              SDNextHost: the interface, put together from the modules below
    detection          is the loaded pipeline Anima, and is its `_encode_prompt` the one we know?
    seam               our class-level patch of that `_encode_prompt`
    conditioning_cache SD.Next's prompt cache (modules/sd_hijack_te): bypassed while armed, emptied on change
    stop               stop a generation with our error (SD.Next swallows Script-hook and encode exceptions)
    memory             modules.devices and the offload modes: device, dtype, making room, giving memory back
    stock_encoder      the loaded pipeline's stock Qwen3-0.6B for the alignment tab
    version            SD.Next's version as its installer recorded it, for messages
"""

from .webui import SDNextHost

__all__ = ["SDNextHost"]
